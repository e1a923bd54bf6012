"""The counterfactual explainer (Major et al. 2020): the smallest smooth region whose
replacement by inpainted healthy tissue makes the classifier change its mind.

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
quarter of the breast. l2 = l3 = 30, p clipped from below at 0.25 (``score_floor``: a hinge,
so the shape terms shrink the mask once the decision has flipped), lr 0.3, 8 px cells at 256
rows and a refill every 10 steps were chosen by grid search on the validation split
(``docs/explain.md``); :func:`paper_settings` gives the paper's setting.

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

import math

import numpy as np
import tensorflow as tf

from tfsal.explain.base import Batch, Explainer, resize_maps
from tfsal.explain.explanation import Explanation
from tfsal.explain.infill import Infiller
from tfsal.metrics import DECISION_THRESHOLD as DECISION

__all__ = ["CounterfactualExplainer", "default_cell", "dilate_cross", "grow_until_flipped", "paper_cell",
           "paper_settings"]

EPS = 1e-6
AREAS = ("dice", "mean")
INITS = ("lattice", "keep")


def default_cell(height: int) -> int:
    """tfsal's mask cell: a 32nd of the working height (8 px at 256 rows, 18 px at 576).

    Chosen on the validation split (``docs/explain.md``): the paper's resolution, 8 px at 576
    rows (:func:`paper_cell`), gave more scattered masks with tfsal's classifier.
    """
    return max(1, round(height / 32))


def paper_cell(height: int) -> int:
    """The paper's 8 px mask resolution at 576 rows, scaled to ``height`` (4 px at 256)."""
    return max(1, round(8 * height / 576))


def paper_settings(height: int) -> dict:
    """The paper's setting as far as it is given: lambdas 1, 0.1, 0.1, psi unbounded, 8 px cells
    at 576 rows. Its lr 2e-3 belongs to a parameterisation it does not give (with sigmoid logits
    it leaves the mask where it starts), so lr, steps and in-fill stay tfsal's."""
    return {"l1": 1.0, "l2": 0.1, "l3": 0.1, "score_floor": 0.0, "cell": paper_cell(height)}


def _log_odds(p):
    return tf.math.log(p) - tf.math.log1p(-p)


def _adam(theta, gradient, m, v, step, lr, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """One Adam update (Kingma & Ba 2015) with its state as tensors; ``step`` counts from 1."""
    m = beta1 * m + (1.0 - beta1) * gradient
    v = beta2 * v + (1.0 - beta2) * tf.square(gradient)
    m_hat = m / (1.0 - tf.pow(beta1, step))
    v_hat = v / (1.0 - tf.pow(beta2, step))
    return theta - lr * m_hat / (tf.sqrt(v_hat) + epsilon), m, v


def dilate_cross(mask, iterations: int):
    """Binary dilation of float 0/1 ``[B, H, W, 1]`` masks with the 4-connected cross, ``iterations``
    times (SciPy's ``binary_dilation`` default), zero outside the image."""
    kernel = tf.constant([[0, 1, 0], [1, 1, 1], [0, 1, 0]], tf.float32)[:, :, None, None]
    for _ in range(iterations):
        mask = tf.cast(tf.nn.conv2d(mask, kernel, 1, "SAME") > 0.5, tf.float32)
    return mask


def grow_until_flipped(score, result, organ, before, after, counterfactual, step: int, times: int):
    """Dilate the result masks that leave a positive decision (``before`` >= 0.5) standing
    (``after`` >= 0.5) by ``step`` pixels at a time, up to ``times`` times, inside the organ, and
    keep the first mask whose counterfactual flips it; the others stay as they were.

    Runs eagerly (stopping early once nothing is pending) and in graphs (the export).

    Args:
        score: ``(masks [B, H, W, 1], pending bool [B]) -> (counterfactuals [B, H, W, 1], p(target) [B])``;
            only the pending rows' values are used, so it may leave the others uncomputed.
        result, organ, counterfactual: float ``[B, H, W, 1]``; before, after: ``[B]``.

    Returns:
        ``(result, counterfactual, after)`` updated where a grown mask flipped the decision.
    """
    pending = (before >= DECISION) & (after >= DECISION) & (tf.reduce_max(result, axis=[1, 2, 3]) > 0)
    grown = result
    for _ in range(times):
        if tf.executing_eagerly() and not bool(tf.reduce_any(pending)):
            break
        grown = tf.where(pending[:, None, None, None], dilate_cross(grown, step) * organ, grown)
        trial, trial_after = score(grown, pending)
        flipped = pending & (trial_after < DECISION)
        result = tf.where(flipped[:, None, None, None], grown, result)
        counterfactual = tf.where(flipped[:, None, None, None], trial, counterfactual)
        after = tf.where(flipped, trial_after, after)
        pending = pending & ~flipped
    return result, counterfactual, after


class CounterfactualExplainer(Explainer):
    """Counterfactual impact analysis: see the module docstring for the method.

    Args:
        model: the classifier, any Keras model or callable (see
            :class:`~tfsal.explain.classifier_adapter.ClassifierAdapter`).
        inpainter: a Keras inpainter ``{"image", "mask"} -> prediction``, a ``.keras`` path, or
            None for the shipped one.
        steps: Adam steps.
        lr: Adam's learning rate on the mask logits.
        l1, l2, l3: weights of (phi + psi), tv and ar.
        area: ``dice`` or ``mean`` (see the module docstring).
        cell: mask cell side in working-size pixels; None is :func:`default_cell`.
        init: ``lattice`` (the paper's regular grid: every ``lattice_step``-th cell in each
            direction starts as a hole) or ``keep`` (every cell starts kept).
        init_logit: |theta| at the start (kept cells +, hole cells -).
        lattice_step: spacing of the initial holes in cells.
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
        seed: picks the offsets of the initial lattice and of the fill blocks.
        batch_size, logits, activation, preprocess, input_size: as
            :class:`~tfsal.explain.base.Explainer`.
    """

    method = "counterfactual"

    def __init__(self, model, inpainter=None, steps: int = 100, lr: float = 0.3, l1: float = 1.0,
                 l2: float = 30.0, l3: float = 30.0, area: str = "dice", cell: int | None = None,
                 init: str = "lattice", init_logit: float = 2.0, lattice_step: int = 3, threshold: float = 0.5,
                 fill_block: int | None = None, refill_every: int = 10, straight_through: bool = True,
                 score_floor: float = 0.25, grow_steps: int = 8, stop_patience: int = 0, seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        if area not in AREAS:
            raise ValueError(f"area must be one of {AREAS}. Received: area={area!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}. Received: init={init!r}")
        for name, value in (("steps", steps), ("lattice_step", lattice_step), ("refill_every", refill_every + 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")
        for name, value in (("cell", cell), ("fill_block", fill_block)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None. Received: {name}={value!r}")
        if not (lr > 0 and init_logit >= 0 and 0 < threshold < 1 and min(l1, l2, l3) >= 0):
            raise ValueError(f"need lr > 0, init_logit >= 0, 0 < threshold < 1 and non-negative lambdas. Received: "
                             f"lr={lr}, init_logit={init_logit}, threshold={threshold}, lambdas={(l1, l2, l3)}")
        if inpainter is None or isinstance(inpainter, str) or hasattr(inpainter, "__fspath__"):
            from tfsal.models.inpainter import load_default_inpainter, load_inpainter

            inpainter = load_default_inpainter() if inpainter is None else load_inpainter(inpainter)
        self.infiller = Infiller(inpainter)
        self.steps, self.lr, self.lambdas, self.area = steps, float(lr), (float(l1), float(l2), float(l3)), area
        self.cell, self.init, self.init_logit, self.lattice_step = cell, init, float(init_logit), lattice_step
        self.threshold, self.fill_block, self.refill_every = float(threshold), fill_block, refill_every
        self.seed, self.straight_through = int(seed), bool(straight_through)
        if not 0 <= score_floor < 1:
            raise ValueError(f"score_floor must be in [0, 1). Received: score_floor={score_floor}")
        self.score_floor = float(score_floor)
        if isinstance(grow_steps, bool) or not isinstance(grow_steps, int) or grow_steps < 0:
            raise ValueError(f"grow_steps must be an int >= 0. Received: grow_steps={grow_steps!r}")
        self.grow_steps = grow_steps
        if isinstance(stop_patience, bool) or not isinstance(stop_patience, int) or stop_patience < 0:
            raise ValueError(f"stop_patience must be an int >= 0. Received: stop_patience={stop_patience!r}")
        self.stop_patience = stop_patience
        self._optimise = tf.function(self._optimise_eager, reduce_retracing=True)

    # -- set-up of one batch (numpy / eager) -------------------------------------------------
    def _offsets(self, period: int) -> tuple[int, int]:
        rng = np.random.default_rng(self.seed)
        return int(rng.integers(period)), int(rng.integers(period))

    def _grid(self, size):
        cell = self.cell or default_cell(size[0])
        return cell, math.ceil(size[0] / cell), math.ceil(size[1] / cell)

    def _organ_grid(self, organ, size):
        """The organ's share of each mask cell, ``[B, grid_h, grid_w, 1]``."""
        cell, grid_h, grid_w = self._grid(size)
        padded = tf.pad(organ, [[0, 0], [0, grid_h * cell - size[0]], [0, grid_w * cell - size[1]], [0, 0]])
        return tf.image.resize(padded, [grid_h, grid_w], "area")

    def _initial_theta(self, organ_grid):
        """Logits +init_logit (keep), and -init_logit on the lattice's organ cells for ``init="lattice"``."""
        theta = tf.fill(tf.shape(organ_grid), self.init_logit)
        if self.init != "lattice":
            return theta
        dy, dx = self._offsets(self.lattice_step)
        shape = tf.shape(organ_grid)
        rows = tf.equal(tf.range(shape[1]) % self.lattice_step, dy)[None, :, None, None]
        cols = tf.equal(tf.range(shape[2]) % self.lattice_step, dx)[None, None, :, None]
        return tf.where(rows & cols & (organ_grid > 0.5), -self.init_logit, theta)

    def _precomputed_fill(self, images, organ):
        """Every organ pixel in-filled once: blocks in 4 shifted passes, each from the others' context."""
        size = tuple(images.shape[1:3])
        block = self.fill_block or max(1, size[0] // 8)
        dy, dx = self._offsets(2 * block)
        rows = ((np.arange(size[0]) + dy) // block) % 2
        cols = ((np.arange(size[1]) + dx) // block) % 2
        fill = images
        for py in (0, 1):
            for px in (0, 1):
                hole = (rows[:, None] == py) & (cols[None, :] == px)
                hole = tf.constant(hole[None, :, :, None], tf.float32) * organ
                fill = hole * self.infiller.fill(images, 1.0 - hole) + (1.0 - hole) * fill
        return fill

    # -- the optimisation (one tf.function) ---------------------------------------------------
    def _masks(self, theta, organ, organ_grid, cell):
        size = tf.shape(organ)[1:3]
        grid = 1.0 - organ_grid * (1.0 - tf.sigmoid(theta))
        up = tf.image.resize(tf.sigmoid(theta), tf.shape(theta)[1:3] * cell, "bilinear")[:, :size[0], :size[1]]
        return grid, 1.0 - organ * (1.0 - up)

    def _loss(self, theta, images, fill, organ, organ_grid, targets, log_odds_original, cell):
        grid, mask = self._masks(theta, organ, organ_grid, cell)
        seen = mask
        if self.straight_through:  # the classifier sees the binary mask's composite; the gradient is the soft one's
            seen = mask + tf.stop_gradient(tf.cast(mask >= self.threshold, tf.float32) - mask)
        counterfactual = seen * images + (1.0 - seen) * fill
        p = self.classifier.target_probability(self.classifier.probabilities(counterfactual), targets)
        p = tf.clip_by_value(p, max(EPS, self.score_floor), 1.0 - EPS)
        phi = -tf.math.log1p(-p)
        psi = _log_odds(p) - log_odds_original
        saliency = (1.0 - mask) * organ
        organ_area = tf.reduce_sum(organ, axis=[1, 2, 3])
        if self.area == "dice":
            area = 2.0 * tf.reduce_sum(saliency, axis=[1, 2, 3]) / (
                tf.reduce_sum(saliency, axis=[1, 2, 3]) + organ_area + EPS)
        else:
            area = tf.reduce_sum(saliency, axis=[1, 2, 3]) / (organ_area + EPS)
        tv = (tf.reduce_mean(tf.square(grid[:, 1:] - grid[:, :-1]), axis=[1, 2, 3])
              + tf.reduce_mean(tf.square(grid[:, :, 1:] - grid[:, :, :-1]), axis=[1, 2, 3]))
        l1, l2, l3 = self.lambdas
        return l1 * (phi + psi) + l2 * tv + l3 * area

    def _optimise_eager(self, theta, images, fill, organ, organ_grid, targets, scores, steps, cell):
        log_odds_original = _log_odds(tf.clip_by_value(scores, EPS, 1.0 - EPS))
        m, v = tf.zeros_like(theta), tf.zeros_like(theta)
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        holes = theta < _log_odds(self.threshold)  # the binary mask on the grid, for stop_patience
        unchanged = tf.constant(-1)  # steps without a change since the last one; -1 until the first
        for i in tf.range(steps):
            if self.stop_patience and unchanged >= self.stop_patience:
                break
            if self.refill_every > 0:
                fill = tf.cond(i % self.refill_every == 0,
                               lambda fill=fill, theta=theta: self._refill(theta, images, fill, organ, organ_grid,
                                                                          cell),
                               lambda fill=fill: fill)
            with tf.GradientTape() as tape:
                tape.watch(theta)
                loss = self._loss(theta, images, fill, organ, organ_grid, targets, log_odds_original, cell)
                total = tf.reduce_sum(loss)  # images are independent: each theta gets its own loss's gradient
            gradient = tape.gradient(total, theta)
            gradient = tf.where(tf.math.is_finite(gradient), gradient, 0.0)  # no NaN may reach the mask
            theta, m, v = _adam(theta, gradient, m, v, tf.cast(i + 1, tf.float32), self.lr)
            losses = losses.write(i, loss)
            if self.stop_patience:
                now = theta < _log_odds(self.threshold)
                unchanged = tf.where(tf.reduce_all(now == holes), tf.where(unchanged >= 0, unchanged + 1, -1), 0)
                holes = now
        return theta, tf.transpose(losses.stack())

    def _refill(self, theta, images, fill, organ, organ_grid, cell):
        _, mask = self._masks(theta, organ, organ_grid, cell)
        keep = tf.cast(mask >= self.threshold, tf.float32)
        return keep * fill + (1.0 - keep) * tf.stop_gradient(self.infiller.fill(images, keep))

    def _grow_until_flipped(self, batch, originals, organ, results, counterfactuals, scores, cell):
        """:func:`grow_until_flipped` at the image size (half a cell of the working size per step)."""
        step = max(1, round(cell / 2 * originals.shape[1] / batch.images.shape[1]))

        def score(masks, pending):  # the pending images only: growth is the explanation's costliest extra
            rows = np.flatnonzero(pending.numpy())
            part = Batch(tf.gather(batch.images, rows), tf.gather(batch.organ, rows), batch.targets[rows],
                         batch.scores[rows])
            images, after = self.counterfactuals(self.infiller, part, originals[rows],
                                                 masks.numpy()[rows, ..., 0] > 0.5)
            all_images, all_after = np.zeros(originals.shape[:3], np.float32), np.ones(len(originals), np.float32)
            all_images[rows], all_after[rows] = images, after
            return tf.constant(all_images[..., None]), tf.constant(all_after)

        result, counterfactual, after = grow_until_flipped(
            score, tf.constant(results[..., None], tf.float32), tf.constant(organ[..., None], tf.float32),
            tf.constant(batch.scores, tf.float32), tf.constant(scores, tf.float32),
            tf.constant(counterfactuals[..., None], tf.float32), step, self.grow_steps)
        return result.numpy()[..., 0] > 0.5, counterfactual.numpy()[..., 0], after.numpy()

    # -- one batch ----------------------------------------------------------------------------
    def _explain_batch(self, batch: Batch, originals: np.ndarray, organ: np.ndarray) -> list[Explanation]:
        size = tuple(batch.images.shape[1:3])
        cell = self._grid(size)[0]
        organ_grid = self._organ_grid(batch.organ, size)
        theta = self._initial_theta(organ_grid)
        fill = self._precomputed_fill(batch.images, batch.organ)
        theta, losses = self._optimise(theta, batch.images, fill, batch.organ, organ_grid,
                                       tf.constant(batch.targets), tf.constant(batch.scores, tf.float32),
                                       tf.constant(self.steps), tf.constant(cell))
        _, mask = self._masks(theta, batch.organ, organ_grid, cell)
        keep = np.clip(resize_maps(mask[..., 0], originals.shape[1:3]), 0.0, 1.0)
        keep = np.where(organ, keep, 1.0).astype(np.float32)
        results = (keep < self.threshold) & organ
        counterfactuals, scores = self.counterfactuals(self.infiller, batch, originals, results)
        if self.grow_steps:
            results, counterfactuals, scores = self._grow_until_flipped(batch, originals, organ, results,
                                                                        counterfactuals, scores, cell)
        return [Explanation(self.method, int(t), (1.0 - k).astype(np.float32), r, o, float(s0), float(s1), c,
                            loss.astype(np.float32))
                for t, k, r, o, s0, s1, c, loss in zip(batch.targets, keep, results, organ, batch.scores, scores,
                                                       counterfactuals, losses.numpy(), strict=True)]
