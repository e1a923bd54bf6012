"""Issue 16's last three levers, as experiments for ``tune_explainer.py`` (a setting's ``"lever"``
key): each changes how the counterfactual explainer's optimiser runs, without adding options to
the library until one of them wins on the validation split (``docs/explain.md``).

- ``{"lever": "coarse_to_fine", "factor": 2, "coarse_share": 0.5}``: the first ``coarse_share`` of
  the steps on cells ``factor`` times the default side, then the rest on the default cells from
  the coarse logits repeated (a coarse-to-fine schedule, as in multi-resolution mask searches).
- ``{"lever": "marginalise", "mode": "alternate" | "average"}``: two in-fills instead of one (the
  usual one, refilled every ``refill_every`` steps, and a second precomputed one whose blocks
  are shifted by another seed and never refilled); each step's score is taken on one of them in
  turn (``alternate``, no extra cost) or averaged over both (``average``, twice the classifier
  passes), so the mask cannot exploit the artefacts of one in-fill (stochastic marginalisation,
  as FIDO, Chang et al. ICLR 2019, samples its in-fills).
- ``{"lever": "restarts", "shares": [0.05, 0.1, 0.2], "steps": 100}``: the optimisation run from
  several gradient starts (``init_share`` each), keeping per image the smallest result mask
  whose counterfactual flips the decision (the smallest of all when none flips).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import tensorflow as tf

from tfsal.evaluation.metrics import DECISION_THRESHOLD
from tfsal.explain.mask import MaskOptimiser


class CoarseToFine(MaskOptimiser):
    def __init__(self, classifier, infiller, settings, factor: int = 2, coarse_share: float = 0.5):
        super().__init__(classifier, infiller, settings)
        self.factor, self.coarse_share, self.coarse = factor, coarse_share, {}

    def run(self, images, organ, targets, scores, steps):
        size = tuple(images.shape[1:3])
        cell, grid_h, grid_w = self.grid(size)
        big = cell * self.factor
        if big not in self.coarse:
            self.coarse[big] = MaskOptimiser(self.classifier, self.infiller, replace(self.settings, cell=big))
        coarse = self.coarse[big]
        coarse_grid = coarse.organ_grid(organ, size)
        theta = coarse.initial_logits(coarse_grid, images, organ, targets)
        fill = self.precomputed_fill(images, organ)
        first = round(int(steps) * self.coarse_share)
        theta, early = coarse.optimise(theta, images, fill, organ, coarse_grid, targets, scores,
                                       tf.constant(first), tf.constant(big))
        theta = tf.repeat(tf.repeat(theta, self.factor, axis=1), self.factor, axis=2)[:, :grid_h, :grid_w]
        organ_grid = self.organ_grid(organ, size)
        theta, late = self.optimise(theta, images, fill, organ, organ_grid, targets, scores,
                                    tf.constant(int(steps) - first), tf.constant(cell))
        _, keep = self.masks(theta, organ, organ_grid, cell)
        return keep, tf.concat([early, late], axis=1), cell


class Marginalised(MaskOptimiser):
    def __init__(self, classifier, infiller, settings, mode: str = "alternate"):
        super().__init__(classifier, infiller, settings)
        self.mode = mode
        self.other = MaskOptimiser(classifier, infiller, replace(settings, seed=settings.seed + 1))

    def precomputed_fill(self, images, organ):
        return tf.concat([super().precomputed_fill(images, organ), self.other.precomputed_fill(images, organ)], -1)

    def loss(self, theta, images, fill, organ, organ_grid, targets, log_odds_original, cell, wanted=None, step=0):
        def on(k):
            return super(Marginalised, self).loss(theta, images, fill[..., k:k + 1], organ, organ_grid, targets,
                                                  log_odds_original, cell, wanted, step)
        if self.mode == "average":
            return 0.5 * (on(0) + on(1))
        return tf.cond(tf.cast(step, tf.int32) % 2 == 0, lambda: on(0), lambda: on(1))

    def refill(self, theta, images, fill, organ, organ_grid, cell):
        return tf.concat([super().refill(theta, images, fill[..., :1], organ, organ_grid, cell), fill[..., 1:]], -1)


def smallest_flipping(candidates):
    """Per image, of the candidates' explanations: the smallest mask that flips the decision,
    else the smallest mask."""
    chosen = []
    for options in zip(*candidates, strict=True):
        flipping = [e for e in options if e.score_counterfactual < DECISION_THRESHOLD <= e.score_original]
        chosen.append(min(flipping or options, key=lambda e: int(np.sum(e.mask))))
    return chosen


def apply(explainer, setting: dict):
    """The explainer changed as ``setting`` (its ``lever`` key and that lever's parameters) says."""
    lever = setting.get("lever")
    if lever is None:
        return explainer
    s = explainer.settings
    if lever == "coarse_to_fine":
        explainer.optimiser = CoarseToFine(explainer.classifier, explainer.infiller, s, setting.get("factor", 2),
                                           setting.get("coarse_share", 0.5))
    elif lever == "marginalise":
        explainer.optimiser = Marginalised(explainer.classifier, explainer.infiller, s,
                                           setting.get("mode", "alternate"))
    elif lever == "restarts":
        single = explainer.explain_batch
        runs = [MaskOptimiser(explainer.classifier, explainer.infiller, replace(s, init_share=float(share)))
                for share in setting.get("shares", (0.05, 0.1, 0.2))]
        explainer.steps = int(setting.get("steps", explainer.steps))

        def explain_batch(batch, originals, organ):
            candidates = []
            for optimiser in runs:
                explainer.optimiser = optimiser
                candidates.append(single(batch, originals, organ))
            return smallest_flipping(candidates)

        explainer.explain_batch = explain_batch
    else:
        raise ValueError(f"unknown lever {lever!r}")
    return explainer


LEVER_KEYS = ("lever", "factor", "coarse_share", "mode", "shares", "steps")
"""The setting keys this module reads (the rest go to the explainer); ``steps`` goes to both."""
