"""The mask optimiser of the counterfactual explainer, as public building blocks.

Reference: D. Major, D. Lenis, M. Wimmer, G. Sluiter, A. Berg, K. Bühler, "Interpreting medical
image classifiers by optimization based counterfactual impact analysis", IEEE International
Symposium on Biomedical Imaging (ISBI), 2020. The in-fill held fixed during a step follows
C.-H. Chang, E. Creager, A. Goldenberg, D. Duvenaud, "Explaining image classifiers by
counterfactual generation" (FIDO), International Conference on Learning Representations (ICLR),
2019; the total variation term follows P. Dabkowski, Y. Gal, "Real time image saliency for black
box classifiers", Advances in Neural Information Processing Systems (NeurIPS), 2017; Adam is
D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.

With M = sigmoid(theta) in [0, 1] (1 keeps a pixel), theta on a grid of ``cell`` x ``cell`` pixel
cells upsampled bilinearly and fixed to 1 outside the organ, F the in-fill and
C(M) = M * I + (1 - M) * F the counterfactual, the optimiser minimises per image

    p   = clip(p(c | C(M)), max(eps, floor), 1 - eps)
    phi = -log(1 - p)                             the counterfactual should look healthy
    psi = logodds(p) - logodds(p(c | I))          the score should fall far
    tv  = mean (M_grid[y+1,x] - M_grid[y,x])^2 + mean (M_grid[y,x+1] - M_grid[y,x])^2
    ar  = 2 |S| / (|S| + |organ|)  (``dice``)  or  |S| / |organ|  (``mean``),   S = (1 - M) * organ
          or  ||S - r_a||^2 / |organ|  (``budget``)
    L   = l1 (phi + psi) + l2 tv + l3 ar

``budget`` is an area constraint, not a penalty (as extremal perturbation's, Fong et al. 2019:
r_a puts 1 at the a |organ| largest values of S, which is ||sort(S) - sort(r_a)||^2 without the
sort): the mask is held at a share a of the organ, with l3 ramped up over each budget's steps
(:func:`ramped_weight`). a starts at the first of ``budgets`` and moves
to the next every ``budget_every`` steps while the binary mask's counterfactual leaves the
decision standing (p(c | C) >= 0.5), so each image ends at the smallest budget that flipped it
(the growth search made part of the optimisation); an image whose decision is not positive
(p(c | I) < 0.5) is held at no area.

with Adam, its state carried as tensors, in one ``tf.function`` over a ``tf.range`` loop, batch
major (each image its own mask and target). The result mask is RM = M < threshold inside the
organ; :func:`tfsal.explain.growth.grow_until_flipped` then dilates a result that leaves a
positive decision standing.

The pieces, in the order an explanation uses them (both
:class:`~tfsal.explain.counterfactual.CounterfactualExplainer` and the SavedModel export call
them): :meth:`MaskOptimiser.grid`, :meth:`~MaskOptimiser.organ_grid`,
:meth:`~MaskOptimiser.initial_logits` (the regular lattice of holes),
:meth:`~MaskOptimiser.precomputed_fill`, :meth:`~MaskOptimiser.optimise`,
:meth:`~MaskOptimiser.masks`, then :mod:`tfsal.explain.growth`'s :func:`~tfsal.explain.growth.result_mask`,
:func:`~tfsal.explain.growth.grow_until_flipped` and :func:`~tfsal.explain.growth.grown_saliency`;
:meth:`MaskOptimiser.run` chains the first six.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfsal.evaluation.metrics import DECISION_THRESHOLD as DECISION
from tfsal.explain.baselines import target_gradient
from tfsal.explain.infill import gaussian_blur
from tfsal.explain.mask_grid import cell_weights, image_size, straight_through_composite, upsample_cells
from tfsal.explain.scoring import EPS, log_odds
from tfsal.models.inpainter import composite

__all__ = ["AREAS", "INITS", "RAMP", "MaskOptimiser", "MaskSettings", "adam_step", "default_cell", "lattice_offsets",
           "paper_cell", "ramped_weight", "top_count_mask"]

RAMP = 1000.0
"""An area constraint's weight grows geometrically from ``weight / RAMP`` to ``weight`` over its steps
(as TorchRay's extremal perturbation does), so the classifier's gradient, not the order of tied
pixels in the sort, decides which pixels the constraint pushes up first."""


def ramped_weight(weight: float, step, steps: int):
    """``weight * RAMP ** (step / (steps - 1) - 1)``: ``weight / RAMP`` at step 0, ``weight`` at the last."""
    return weight * RAMP ** (tf.cast(step, tf.float32) / max(steps - 1, 1) - 1.0)


AREAS = ("dice", "mean", "budget")
"""The area terms: Dice overlap of S with the organ (the paper's), the mean of S inside it, or
the constraint to a budget that grows until the decision flips."""

INITS = ("lattice", "keep", "gradient")
"""Initial masks: a regular lattice of hole cells inside the organ, every cell kept, or the organ
cells where the smoothed gradient magnitude is largest as holes (a cheap map's guess that the
optimisation then makes counterfactual and small)."""


def default_cell(height: int) -> int:
    """tfsal's mask cell: a 32nd of the working height (8 px at 256 rows, 18 px at 576).

    Chosen on the validation split (``docs/explain.md``): the paper's resolution, 8 px at 576
    rows (:func:`paper_cell`), gave more scattered masks with tfsal's classifier.
    """
    return max(1, round(height / 32))


def paper_cell(height: int) -> int:
    """The paper's 8 px mask resolution at 576 rows, scaled to ``height`` (4 px at 256)."""
    return max(1, round(8 * height / 576))


def lattice_offsets(seed: int, period: int) -> tuple[int, int]:
    """``(dy, dx)`` in ``[0, period)``: the seeded offsets of the initial lattice and of the fill blocks."""
    rng = np.random.default_rng(seed)
    return int(rng.integers(period)), int(rng.integers(period))


def adam_step(theta, gradient, m, v, step, lr, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """One Adam update with its state as tensors; ``step`` counts from 1. Returns ``(theta, m, v)``."""
    m = beta1 * m + (1.0 - beta1) * gradient
    v = beta2 * v + (1.0 - beta2) * tf.square(gradient)
    m_hat = m / (1.0 - tf.pow(beta1, step))
    v_hat = v / (1.0 - tf.pow(beta2, step))
    return theta - lr * m_hat / (tf.sqrt(v_hat) + epsilon), m, v


def top_count_mask(values, counts):
    """float 0/1 ``[B, N]``: 1 at the ``counts[b]`` largest of each row of ``values`` ``[B, N]``,
    ties to the lower index (the order ``tf.sort`` gives them), so exactly ``counts[b]`` ones."""
    counts = tf.cast(counts, tf.int32)
    top = tf.math.top_k(values, k=tf.reduce_max(counts)).indices
    rows = tf.broadcast_to(tf.range(tf.shape(values)[0])[:, None], tf.shape(top))
    return tf.scatter_nd(tf.stack([rows, top], axis=-1), tf.sequence_mask(counts, tf.shape(top)[1], tf.float32),
                         tf.shape(values))


@dataclass(frozen=True)
class MaskSettings:
    """The optimiser's settings (see :class:`~tfsal.explain.counterfactual.CounterfactualExplainer`
    for each one's meaning and the module docstring for the loss)."""

    lr: float = 0.3
    lambdas: tuple[float, float, float] = (1.0, 30.0, 30.0)
    area: str = "dice"
    cell: int | None = None
    init: str = "gradient"
    init_logit: float = 2.0
    lattice_step: int = 3
    init_share: float = 0.1
    init_sigma: float = 16.0
    threshold: float = 0.5
    fill_block: int | None = None
    refill_every: int = 10
    straight_through: bool = True
    score_floor: float = 0.4
    stop_patience: int = 0
    seed: int = 0
    budgets: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04, 0.08)
    budget_every: int = 20


class MaskOptimiser:
    """Optimises the keep masks M of a batch for a classifier, with an in-filler.

    Args:
        classifier: a :class:`~tfsal.explain.classifier_adapter.ClassifierAdapter`.
        infiller: a :class:`~tfsal.explain.infill.Infiller`.
        settings: :class:`MaskSettings`.
        jit_compile: compile the optimisation loop with XLA (measured in ``benchmarks/``; off by default).
    """

    def __init__(self, classifier, infiller, settings: MaskSettings, jit_compile: bool = False):
        self.classifier, self.infiller, self.settings = classifier, infiller, settings
        self.optimise = tf.function(self.optimise_eagerly, jit_compile=jit_compile or None, reduce_retracing=True)

    # -- set-up of one batch ------------------------------------------------------------------
    def grid(self, size) -> tuple[int, int, int]:
        """``(cell, grid_h, grid_w)`` for working images of ``size`` = ``(h, w)``."""
        cell = self.settings.cell or default_cell(size[0])
        return cell, math.ceil(size[0] / cell), math.ceil(size[1] / cell)

    def organ_grid(self, organ, size):
        """The organ's share of each mask cell, ``[B, grid_h, grid_w, 1]``."""
        cell, grid_h, grid_w = self.grid(size)
        padded = tf.pad(organ, [[0, 0], [0, grid_h * cell - size[0]], [0, grid_w * cell - size[1]], [0, 0]])
        return tf.image.resize(padded, [grid_h, grid_w], "area")

    def gradient_cells(self, images, organ, organ_grid, targets):
        """bool ``[B, grid_h, grid_w, 1]``: the organ cells (at least one) holding the top
        ``init_share`` of the organ's cells by the gradient magnitude |d p(target) / d x| blurred by
        a Gaussian of ``init_sigma`` pixels (the ``sal-blur`` map) and averaged over each cell."""
        s = self.settings
        size = tuple(images.shape[1:3])
        cell, grid_h, grid_w = self.grid(size)
        saliency = tf.reduce_max(tf.abs(target_gradient(self.classifier, images, targets)), axis=-1, keepdims=True)
        saliency = gaussian_blur(saliency, s.init_sigma) * organ
        padded = tf.pad(saliency, [[0, 0], [0, grid_h * cell - size[0]], [0, grid_w * cell - size[1]], [0, 0]])
        inside = organ_grid > 0.5
        scores = tf.where(inside, tf.image.resize(padded, [grid_h, grid_w], "area"), -1.0)
        flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
        inside_count = tf.reduce_sum(tf.cast(tf.reshape(inside, tf.shape(flat)), tf.float32), axis=1)
        count = tf.maximum(tf.round(s.init_share * inside_count), 1.0)
        return tf.reshape(top_count_mask(flat, count), tf.shape(scores)) > 0.5

    def initial_logits(self, organ_grid, images=None, organ=None, targets=None):
        """Logits +init_logit (keep), and -init_logit on the lattice's organ cells for
        ``init="lattice"``, or on :meth:`gradient_cells` for ``init="gradient"`` (which needs
        ``images``, ``organ`` and ``targets``)."""
        s = self.settings
        theta = tf.fill(tf.shape(organ_grid), s.init_logit)
        if s.init == "gradient":
            if images is None or organ is None or targets is None:
                raise ValueError('init="gradient" needs the images, organ masks and targets')
            return tf.where(self.gradient_cells(images, organ, organ_grid, targets), -s.init_logit, theta)
        if s.init != "lattice":
            return theta
        dy, dx = lattice_offsets(s.seed, s.lattice_step)
        shape = tf.shape(organ_grid)
        rows = tf.equal(tf.range(shape[1]) % s.lattice_step, dy)[None, :, None, None]
        cols = tf.equal(tf.range(shape[2]) % s.lattice_step, dx)[None, None, :, None]
        return tf.where(rows & cols & (organ_grid > 0.5), -s.init_logit, theta)

    def precomputed_fill(self, images, organ):
        """Every organ pixel in-filled once: blocks in 4 shifted passes, each from the others' context."""
        size = tuple(images.shape[1:3])
        block = self.settings.fill_block or max(1, size[0] // 8)
        dy, dx = lattice_offsets(self.settings.seed, 2 * block)
        rows = ((np.arange(size[0]) + dy) // block) % 2
        cols = ((np.arange(size[1]) + dx) // block) % 2
        fill = images
        for py in (0, 1):
            for px in (0, 1):
                hole = (rows[:, None] == py) & (cols[None, :] == px)
                hole = tf.constant(hole[None, :, :, None], tf.float32) * organ
                fill = composite(fill, 1.0 - hole, self.infiller.fill(images, 1.0 - hole))
        return fill

    # -- the optimisation ---------------------------------------------------------------------
    def masks(self, theta, organ, organ_grid, cell):
        """``(grid, mask)``: M on the cell grid (1 outside the organ's share) and upsampled to the image."""
        keep = tf.sigmoid(theta)
        return 1.0 - organ_grid * (1.0 - keep), 1.0 - organ * (1.0 - upsample_cells(keep, cell, image_size(organ)))

    def deleted(self, theta, up, organ, cell, weights=None):
        """``[B]``: the sum over each image of the saliency S = (1 - M) * organ = organ^2 * (1 - up),
        ``up`` the upsampled keep values; on the cell grid with the organ's :func:`cell_weights` where
        the sizes are known when traced (the same value, without a pass over the pixels)."""
        static = tf.get_static_value(cell)
        if weights is None and (static is None or None in organ.shape[1:3] or None in theta.shape[1:3]):
            return tf.reduce_sum(tf.square(organ) * (1.0 - up), axis=[1, 2, 3])
        if weights is None:
            weights = cell_weights(organ, int(static), theta.shape[1:3])
        return tf.reduce_sum((1.0 - tf.sigmoid(theta)) * weights, axis=[1, 2, 3])  # sum W = sum organ^2

    def loss(self, theta, images, fill, organ, organ_grid, targets, log_odds_original, cell, wanted=None, step=0,
             weights=None):
        """L per image ``[B]`` (the module docstring's formula); ``wanted`` ``[B]``: the pixels each
        mask is held to with ``area="budget"``, whose weight ramps with ``step``; ``weights``: the
        organ's :func:`cell_weights` for the ``dice`` and ``mean`` areas (computed here when None)."""
        s = self.settings
        keep = tf.sigmoid(theta)
        grid = 1.0 - organ_grid * (1.0 - keep)
        up = upsample_cells(keep, cell, image_size(organ))
        if s.straight_through:  # the classifier sees the binary mask's composite; the gradient is the soft one's
            counterfactual = straight_through_composite(up, organ, images, fill, s.threshold)
        else:
            counterfactual = composite(images, 1.0 - organ * (1.0 - up), fill)
        p = self.classifier.target_probability(self.classifier.probabilities(counterfactual), targets)
        p = tf.clip_by_value(p, max(EPS, s.score_floor), 1.0 - EPS)
        phi = -tf.math.log1p(-p)
        psi = log_odds(p) - log_odds_original
        organ_area = tf.reduce_sum(organ, axis=[1, 2, 3])
        if s.area == "budget":
            flat = tf.reshape(organ * organ * (1.0 - up), [tf.shape(up)[0], -1])  # S = (1 - M) * organ
            reference = top_count_mask(tf.stop_gradient(flat), wanted)
            area = tf.reduce_sum(tf.square(flat - reference), axis=1) / (organ_area + EPS)
        else:
            deleted = self.deleted(theta, up, organ, cell, weights)
            area = (2.0 * deleted / (deleted + organ_area + EPS) if s.area == "dice"
                    else deleted / (organ_area + EPS))
        tv = (tf.reduce_mean(tf.square(grid[:, 1:] - grid[:, :-1]), axis=[1, 2, 3])
              + tf.reduce_mean(tf.square(grid[:, :, 1:] - grid[:, :, :-1]), axis=[1, 2, 3]))
        l1, l2, l3 = s.lambdas
        if s.area == "budget":
            l3 = ramped_weight(l3, step % s.budget_every, s.budget_every)
        return l1 * (phi + psi) + l2 * tv + l3 * area

    def refill(self, theta, images, fill, organ, organ_grid, cell):
        """The holes of the current binary mask re-inpainted (the paper's pi(M)); the rest of ``fill`` kept."""
        _, mask = self.masks(theta, organ, organ_grid, cell)
        keep = tf.cast(mask >= self.settings.threshold, tf.float32)
        return composite(fill, keep, tf.stop_gradient(self.infiller.fill(images, keep)))

    def next_budget(self, level, theta, images, fill, organ, organ_grid, targets, cell):
        """``level`` moved one budget on for the images whose binary mask's counterfactual (with
        ``fill``) leaves the decision standing: p(target | C) >= 0.5."""
        _, mask = self.masks(theta, organ, organ_grid, cell)
        keep = tf.cast(mask >= self.settings.threshold, tf.float32)
        p = self.classifier.target_probability(self.classifier.probabilities(composite(images, keep, fill)), targets)
        last = len(self.settings.budgets) - 1
        return tf.where(p >= DECISION, tf.minimum(level + 1, last), level)

    def optimise_eagerly(self, theta, images, fill, organ, organ_grid, targets, scores, steps, cell):
        """``steps`` Adam steps from ``theta``; returns ``(theta, losses [B, steps run])``.
        :attr:`optimise` is this compiled as one ``tf.function``."""
        s = self.settings
        log_odds_original = log_odds(tf.clip_by_value(scores, EPS, 1.0 - EPS))
        m, v = tf.zeros_like(theta), tf.zeros_like(theta)
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        holes = theta < log_odds(s.threshold)  # the binary mask on the grid, for stop_patience
        unchanged = tf.constant(-1)  # steps without a change since the last one; -1 until the first
        budget = s.area == "budget"
        if budget:
            budgets = tf.constant(s.budgets, tf.float32)
            organ_area = tf.reduce_sum(organ, axis=[1, 2, 3])
        static = tf.get_static_value(cell)
        weights = None if budget or static is None or None in organ.shape[1:3] else cell_weights(
            organ, int(static), theta.shape[1:3])  # the area term on the grid (:meth:`deleted`)
        level = tf.zeros(tf.shape(targets), tf.int32)  # each image's place in ``budgets``
        wanted = tf.zeros_like(scores)  # the pixels each mask is held to; set each step in budget mode only
        for i in tf.range(steps):
            if s.stop_patience and unchanged >= s.stop_patience:
                break
            if s.refill_every > 0:
                fill = tf.cond(i % s.refill_every == 0,
                               lambda fill=fill, theta=theta: self.refill(theta, images, fill, organ, organ_grid, cell),
                               lambda fill=fill: fill)
            if budget:
                level = tf.cond((i > 0) & (i % s.budget_every == 0),
                                lambda level=level, theta=theta, fill=fill: self.next_budget(
                                    level, theta, images, fill, organ, organ_grid, targets, cell),
                                lambda level=level: level)
                # a decision that is not positive has nothing to flip: its mask is held at no area
                wanted = tf.where(scores >= DECISION,
                                  tf.maximum(tf.round(tf.gather(budgets, level) * organ_area), 1.0), 0.0)
            with tf.GradientTape() as tape:
                tape.watch(theta)
                loss = self.loss(theta, images, fill, organ, organ_grid, targets, log_odds_original, cell, wanted, i,
                                 weights)
                total = tf.reduce_sum(loss)  # images are independent: each theta gets its own loss's gradient
            gradient = tape.gradient(total, theta)
            gradient = tf.where(tf.math.is_finite(gradient), gradient, 0.0)  # no NaN may reach the mask
            theta, m, v = adam_step(theta, gradient, m, v, tf.cast(i + 1, tf.float32), s.lr)
            losses = losses.write(i, loss)
            if s.stop_patience:
                now = theta < log_odds(s.threshold)
                unchanged = tf.where(tf.reduce_all(now == holes), tf.where(unchanged >= 0, unchanged + 1, -1), 0)
                holes = now
        return theta, tf.transpose(losses.stack())

    def run(self, images, organ, targets, scores, steps):
        """The whole optimisation of a batch at its working size ``[B, h, w, 1]``.

        Args:
            images, organ: float32 ``[B, h, w, 1]`` (organ 1 inside).
            targets: int32 ``[B]``; scores: float32 ``[B]``, p(target | image).
            steps: Adam steps (an int or an int32 scalar tensor).

        Returns:
            ``(keep, losses, cell)``: the soft keep mask M ``[B, h, w, 1]`` (1 outside the organ),
            the loss per image and step ``[B, steps run]`` and the cell side in pixels.
        """
        size = tuple(images.shape[1:3])
        cell = self.grid(size)[0]
        organ_grid = self.organ_grid(organ, size)
        theta = self.initial_logits(organ_grid, images, organ, targets)
        fill = self.precomputed_fill(images, organ)
        theta, losses = self.optimise(theta, images, fill, organ, organ_grid, targets, scores,
                                      tf.cast(steps, tf.int32), cell)
        _, keep = self.masks(theta, organ, organ_grid, cell)
        return keep, losses, cell
