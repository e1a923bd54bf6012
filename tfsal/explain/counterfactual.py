"""The counterfactual explainer: the smallest smooth region whose replacement by inpainted
healthy tissue makes the classifier change its mind.

Reference: D. Major, D. Lenis, M. Wimmer, G. Sluiter, A. Berg, K. Bühler, "Interpreting medical
image classifiers by optimization based counterfactual impact analysis", IEEE International
Symposium on Biomedical Imaging (ISBI), 2020. The optimiser itself is :mod:`tfsal.explain.mask`.

Notation as ``../shared/design.md``: M in [0, 1] keeps a pixel at 1 and deletes it at 0; the
saliency map is S = 1 - M; the counterfactual C(M) = M * I + (1 - M) * F with F the in-fill.

Loss, as the paper intends. Its printed phi = -log p(c|pi(M)) and psi = logodds(I) -
logodds(pi(M)) would *raise* the class probability when minimised, which contradicts its own text
("the first term enforces the class probability to drop"); tfsal minimises

    phi = -log(1 - p(c|C))                        the counterfactual should look healthy
    psi = logodds(p(c|C)) - logodds(p(c|I))        the score should fall far
    L   = l1 (phi + psi) + l2 tv(M) + l3 ar(M)

Defaults differ from the paper's lambdas (1, 0.1, 0.1) and unbounded psi: with tv and ar
normalised per cell and per organ (so that lambdas do not depend on the image size) those
weights leave the shape terms a hundredth of the score terms, and the masks scatter over a
quarter of the breast. l2 = l3 = 30, p clipped from below at 0.4 (``score_floor``: a hinge,
so the shape terms shrink the mask once the decision has flipped), lr 0.3, 8 px cells at 256
rows and a refill every 10 steps were chosen by grid search on the validation split, and the
start from the tenth of the breast where the smoothed gradient is largest (``init="gradient"``)
by issue 16's screen of levers on the same split (``docs/explain.md``); :func:`paper_settings`
gives the paper's setting (its lattice start, unbounded psi).

with tv the mean squared difference of neighbouring mask cells (Dabkowski & Gal), ar the Dice
overlap of S with the organ (``area="dice"``, the paper's choice) or the mean of S inside it
(``"mean"``), probabilities clipped to [1e-6, 1 - 1e-6] before any log.

Optimisation: M = sigmoid(theta), theta on a grid of ``cell`` x ``cell`` pixel cells (a 32nd of
the working height: 8 px at 256 rows) upsampled bilinearly; outside the organ M is fixed to 1.
Adam with its state carried as tensors in one ``tf.function`` (``tf.range`` loop), batch-major:
B images optimised together, each with its own mask and target.

The in-fill. Partial convolutions renormalise by the mask's sum, so a soft mask fed to the
inpainter barely deletes anything; tfsal therefore holds the in-fill F fixed during a step (as
FIDO, Chang et al. 2019, does) and lets the gradient flow through the blend. F starts as a
precomputed healthy fill of the whole organ (blocks of ``fill_block`` px inpainted in four
shifted passes, so every pixel is filled from context that excludes it); with ``refill_every``
= N > 0, the holes of the current binary mask are re-inpainted every N steps (N = 1 is the
paper's pi(M) at every step). The result's counterfactual is always the inpainter's fill of the
final binary mask, and its score is what the classifier says about it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsal.explain.base import Batch, Explainer
from tfsal.explain.explanation import Explanation
from tfsal.explain.infill import as_infiller
from tfsal.explain.mask import AREAS, INITS, MaskOptimiser, MaskSettings, paper_cell
from tfsal.explain.registry import DEFAULT_STEPS
from tfsal.explain.verify import verified_explanations
from tfsal.util.checks import check_int, check_optional_int

__all__ = ["CounterfactualExplainer", "load_inpainter_argument", "paper_settings"]


def paper_settings(height: int) -> dict:
    """The paper's setting as far as it is given: lambdas 1, 0.1, 0.1, psi unbounded, 8 px cells
    at 576 rows. Its lr 2e-3 belongs to a parameterisation it does not give (with sigmoid logits
    it leaves the mask where it starts), so lr, steps and in-fill stay tfsal's."""
    return {"l1": 1.0, "l2": 0.1, "l3": 0.1, "score_floor": 0.0, "cell": paper_cell(height), "init": "lattice"}


def load_inpainter_argument(inpainter):
    """A Keras inpainter (or an :class:`~tfsal.explain.infill.Infiller`) as given, loaded from a
    ``.keras`` path, or the shipped one for None."""
    if inpainter is None or isinstance(inpainter, str) or hasattr(inpainter, "__fspath__"):
        from tfsal.models.inpainter import load_default_inpainter, load_inpainter

        return load_default_inpainter() if inpainter is None else load_inpainter(inpainter)
    return inpainter


class CounterfactualExplainer(Explainer):
    """Counterfactual impact analysis: see the module docstring for the method.

    Args:
        model: the classifier, any Keras model or callable (see
            :class:`~tfsal.explain.classifier_adapter.ClassifierAdapter`).
        inpainter: a Keras inpainter ``{"image", "mask"} -> prediction``, a ``.keras`` path, an
            :class:`~tfsal.explain.infill.Infiller`, or None for the shipped one.
        steps: Adam steps.
        lr: Adam's learning rate on the mask logits.
        l1, l2, l3: weights of (phi + psi), tv and ar.
        area: ``dice``, ``mean`` or ``budget`` (see :mod:`tfsal.explain.mask`: ``budget`` holds the
            mask at a share of the organ that grows through ``budgets`` until the decision flips).
        cell: mask cell side in working-size pixels; None is :func:`default_cell`.
        init: ``lattice`` (the paper's regular grid: every ``lattice_step``-th cell in each
            direction starts as a hole), ``keep`` (every cell starts kept) or ``gradient`` (the
            ``init_share`` of organ cells with the largest smoothed gradient magnitude start as holes).
        init_logit: |theta| at the start (kept cells +, hole cells -).
        lattice_step: spacing of the initial holes in cells.
        init_share: for ``init="gradient"``, the share of the organ's cells that start as holes.
        init_sigma: for ``init="gradient"``, the Gaussian (pixels) that smooths the gradient magnitude.
        threshold: the result mask is ``M < threshold``.
        fill_block: side of the blocks of the precomputed in-fill in pixels; None is an eighth of
            the working height (32 px at 256, a large mass).
        refill_every: re-inpaint the current mask's holes every this many steps; 0 never.
        straight_through: the classifier sees the composite of the binary mask (``M <
            threshold`` deleted) while the gradient is the soft mask's; without it, it sees the soft
            blend, which lets many half-deleted cells lower the score together (an adversarial
            path the binary result does not keep).
        score_floor: p(target | C) is clipped from below at this value before phi and psi, so
            they stop rewarding a score already that low and the shape terms shrink the mask
            (a hinge; 0 is the paper's unbounded psi).
        grow_steps: when the final mask's counterfactual does not bring a positive score (>= 0.5)
            below 0.5, dilate the mask by half a cell up to this many times and keep the first
            that does: the optimisation works with an approximate in-fill, and the real
            inpainting of a slightly larger region often completes the flip. 0 turns it off.
        stop_patience: stop the optimisation once no image's binary mask (its cells below
            ``threshold``) has changed for this many consecutive steps, counted from the first
            change (the start's logits take a few steps to cross); 0 always runs ``steps``.
            The loss history is then shorter than ``steps``.
        budgets: for ``area="budget"``, the rising shares of the organ the mask is held to.
        budget_every: for ``area="budget"``, steps between two moves to the next budget.
        seed: picks the offsets of the initial lattice and of the fill blocks.
        jit_compile: compile the optimisation loop with XLA (slower on CPUs: ``docs/benchmarks.md``).
        batch_size, logits, activation, preprocess, input_size: as
            :class:`~tfsal.explain.base.Explainer`.
    """

    method = "counterfactual"

    def __init__(self, model, inpainter=None, steps: int = DEFAULT_STEPS, lr: float = 0.3, l1: float = 1.0,
                 l2: float = 30.0, l3: float = 30.0, area: str = "dice", cell: int | None = None,
                 init: str = "gradient", init_logit: float = 2.0, lattice_step: int = 3, init_share: float = 0.1,
                 init_sigma: float = 16.0, threshold: float = 0.5,
                 fill_block: int | None = None, refill_every: int = 10, straight_through: bool = True,
                 score_floor: float = 0.4, grow_steps: int = 8, stop_patience: int = 0,
                 budgets=(0.005, 0.01, 0.02, 0.04, 0.08), budget_every: int = 20, seed: int = 0,
                 jit_compile: bool = False, **kwargs):
        super().__init__(model, **kwargs)
        if area not in AREAS:
            raise ValueError(f"area must be one of {AREAS}. Received: area={area!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}. Received: init={init!r}")
        self.steps = check_int("steps", steps)
        check_int("lattice_step", lattice_step)
        check_int("refill_every", refill_every, minimum=0)
        check_optional_int("cell", cell)
        check_optional_int("fill_block", fill_block)
        if not (lr > 0 and init_logit >= 0 and 0 < threshold < 1 and min(l1, l2, l3) >= 0):
            raise ValueError(f"need lr > 0, init_logit >= 0, 0 < threshold < 1 and non-negative lambdas. Received: "
                             f"lr={lr}, init_logit={init_logit}, threshold={threshold}, lambdas={(l1, l2, l3)}")
        if not (0 < init_share < 1 and init_sigma > 0):
            raise ValueError(f"need 0 < init_share < 1 and init_sigma > 0. Received: init_share={init_share}, "
                             f"init_sigma={init_sigma}")
        if not 0 <= score_floor < 1:
            raise ValueError(f"score_floor must be in [0, 1). Received: score_floor={score_floor}")
        budgets = tuple(float(b) for b in budgets)
        if not budgets or not all(0 < b < 1 for b in budgets) or list(budgets) != sorted(budgets):
            raise ValueError(f"budgets must be rising shares in (0, 1). Received: budgets={budgets}")
        check_int("budget_every", budget_every)
        self.grow_steps = check_int("grow_steps", grow_steps, minimum=0)
        check_int("stop_patience", stop_patience, minimum=0)
        self.infiller = as_infiller(load_inpainter_argument(inpainter))
        self.settings = MaskSettings(
            lr=float(lr), lambdas=(float(l1), float(l2), float(l3)), area=area, cell=cell, init=init,
            init_logit=float(init_logit), lattice_step=lattice_step, init_share=float(init_share),
            init_sigma=float(init_sigma), threshold=float(threshold), fill_block=fill_block,
            refill_every=refill_every, straight_through=bool(straight_through), score_floor=float(score_floor),
            stop_patience=stop_patience, seed=int(seed), budgets=budgets, budget_every=budget_every)
        self.optimiser = MaskOptimiser(self.classifier, self.infiller, self.settings, jit_compile=jit_compile)

    def explain_batch(self, batch: Batch, originals: np.ndarray, organ: np.ndarray) -> list[Explanation]:
        mask, losses, cell = self.optimiser.run(batch.images, batch.organ, tf.constant(batch.targets),
                                                tf.constant(batch.scores, tf.float32), self.steps)
        return verified_explanations(self, batch, originals, organ, mask.numpy(), losses.numpy(), cell,
                                     self.settings.threshold, self.grow_steps)
