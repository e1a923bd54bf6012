"""Perturbation baselines: Occlusion with the inpainter, RISE, and extremal perturbation.

    Occlusion  S(x) = mean over windows W containing x of  p(c | I) - p(c | I with W inpainted)
    RISE       S = sum_i p(c | M_i * I + (1 - M_i) * F) M_i / (n q),   M_i random smooth masks
               (cells kept with probability q, upsampled bilinearly, randomly shifted)
    Extremal   for each area a in ``areas``:  m_a = argmin_m  logodds p(c | (1 - m) * I + m * F)
                                                  + lambda || sort(m) - r_a ||^2 / N
               (m the deleted share, smooth: sigmoid logits on cells upsampled bilinearly;
               r_a the sorted target, a share a of the organ's pixels at 1; lambda grows
               geometrically over the steps),  S = mean_a m_a

with F the blur marginaliser (:class:`~tfsal.explain.infill.BlurFill`) for RISE and extremal
perturbation (as TorchRay does), and the inpainter for Occlusion (the inpainter as the occluder).

References: M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks",
European Conference on Computer Vision (ECCV), 2014. V. Petsiuk, A. Das, K. Saenko, "RISE:
randomized input sampling for explanation of black-box models", British Machine Vision
Conference (BMVC), 2018. R. Fong, M. Patrick, A. Vedaldi, "Understanding deep networks via
extremal perturbations and smooth masks", IEEE International Conference on Computer Vision
(ICCV), 2019 (the deletion game with the area constraint; its smooth max-pool parametrisation is
replaced by bilinear upsampling).

Every free parameter's default was chosen on the validation split (``docs/evaluation.md``).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfsal.explain.baselines import MapExplainer
from tfsal.explain.counterfactual import load_inpainter_argument
from tfsal.explain.infill import BlurFill
from tfsal.explain.mask import RAMP, adam_step, ramped_weight, top_count_mask
from tfsal.explain.scoring import EPS, log_odds
from tfsal.models.inpainter import composite

__all__ = ["RAMP", "ExtremalPerturbationExplainer", "OcclusionExplainer", "RISEExplainer"]



def _check(**values):
    bad = {k: v for k, v in values.items() if not v > 0}
    if bad:
        raise ValueError(f"these must be positive: {bad}")


class OcclusionExplainer(MapExplainer):
    """Occlusion (Zeiler & Fergus 2014) with each window inpainted by the inpainter.

    Windows of ``window`` px (by default 3/32 of the image height: 24 px at 256) at a stride
    of half a window; every window's fill comes from one of
    16 inpainter passes, each over a lattice of windows two windows apart (so a window is filled
    from context that excludes it), then each window is scored alone.

    Args:
        inpainter: the occluder (and the scorer of result masks), a ``.keras`` path or None for
            the shipped one.
        window: window side in working-size pixels; None takes ``3/32`` of the height.
        (others as :class:`~tfsal.explain.baselines.MapExplainer`)
    """

    method = "occlusion"
    compiled = False

    def __init__(self, model, inpainter=None, window: int | None = None, **kwargs):
        inpainter = load_inpainter_argument(inpainter)
        super().__init__(model, inpainter=inpainter, **kwargs)
        if window is not None:
            _check(window=window)
        self.window, self.occluder = None if window is None else int(window), self.infiller

    def window_size(self, size) -> int:
        """The window side at working ``size`` (``window``, or 3/32 of the height)."""
        return self.window or max(2, round(size[0] * 3 / 32))

    def _windows(self, size):
        window = self.window_size(size)
        stride = max(1, window // 2)
        rows = list(range(0, max(1, size[0] - window) + 1, stride))
        cols = list(range(0, max(1, size[1] - window) + 1, stride))
        return [(i, j, r, c) for i, r in enumerate(rows) for j, c in enumerate(cols)], window

    def saliency_maps(self, images, targets, organ):
        images = tf.convert_to_tensor(images, tf.float32)
        size = tuple(images.shape[1:3])
        windows, window = self._windows(size)
        boxes = np.zeros((len(windows), *size), np.float32)
        for k, (_, _, r, c) in enumerate(windows):
            boxes[k, r:r + window, c:c + window] = 1.0
        fills = np.zeros((len(windows), *images.shape), np.float32)
        for gy in range(4):
            for gx in range(4):
                group = [k for k, (i, j, _, _) in enumerate(windows) if i % 4 == gy and j % 4 == gx]
                if group:
                    keep = 1.0 - tf.constant(boxes[group].max(axis=0)[None, :, :, None])
                    fill = self.occluder.fill(images, tf.repeat(keep, len(images), axis=0)).numpy()
                    fills[group] = fill[None]
        original = self.classifier.target_probability(self.classifier.probabilities(images), targets).numpy()
        total, count = np.zeros((len(images), *size), np.float32), boxes.sum(axis=0)
        for k in range(len(windows)):
            keep = tf.constant(1.0 - boxes[k][None, :, :, None])
            seen = composite(images, keep, fills[k])
            drop = original - self.classifier.target_probability(self.classifier.probabilities(seen), targets).numpy()
            total += drop[:, None, None] * boxes[k][None]
        return total / np.maximum(count, 1.0)[None]


def _smooth_masks(count: int, cells: int, keep_probability: float, size, seed: int) -> np.ndarray:
    """RISE's masks ``[count, H, W]``: a ``cells``-row grid of Bernoulli cells, upsampled bilinearly
    to one cell more than the image and cropped at a random shift."""
    rng = np.random.default_rng(seed)
    cell = math.ceil(size[0] / cells)
    grid = (cells + 1, math.ceil(size[1] / cell) + 1)
    binary = (rng.random((count, *grid)) < keep_probability).astype(np.float32)
    up = tf.image.resize(binary[..., None], (grid[0] * cell, grid[1] * cell), "bilinear").numpy()[..., 0]
    dy, dx = rng.integers(0, cell, count), rng.integers(0, cell, count)
    return np.stack([up[i, dy[i]:dy[i] + size[0], dx[i]:dx[i] + size[1]] for i in range(count)])


class RISEExplainer(MapExplainer):
    """RISE (Petsiuk et al. 2018) with the blur marginaliser.

    Args:
        masks: random masks per image.
        cells: grid rows of a mask (columns follow the image's aspect).
        keep_probability: each cell's chance to be kept.
        seed: the masks' draw.
        (others as :class:`~tfsal.explain.baselines.MapExplainer`)
    """

    method = "rise"
    compiled = False

    def __init__(self, model, masks: int = 384, cells: int = 6, keep_probability: float = 0.5, seed: int = 0,
                 **kwargs):
        super().__init__(model, **kwargs)
        _check(masks=masks, cells=cells, keep_probability=keep_probability)
        if keep_probability >= 1:
            raise ValueError(f"keep_probability must be below 1. Received: {keep_probability}")
        self.masks, self.cells, self.keep_probability, self.seed = int(masks), int(cells), float(keep_probability), seed
        self.fill = BlurFill()

    def saliency_maps(self, images, targets, organ):
        images = tf.convert_to_tensor(images, tf.float32)
        size = tuple(images.shape[1:3])
        masks = _smooth_masks(self.masks, self.cells, self.keep_probability, size, self.seed)
        fill = self.fill.fill(images)
        total = np.zeros((len(images), *size), np.float32)
        chunk = max(1, 64 // len(images))
        for start in range(0, self.masks, chunk):
            part = masks[start:start + chunk]
            keep = tf.constant(np.repeat(part[None], len(images), axis=0).reshape(-1, *size, 1))
            seen = composite(tf.repeat(images, len(part), axis=0), keep, tf.repeat(fill, len(part), axis=0))
            p = self.classifier.target_probability(self.classifier.probabilities(seen),
                                                   np.repeat(np.asarray(targets), len(part))).numpy()
            total += np.einsum("bk,khw->bhw", p.reshape(len(images), len(part)), part)
        return total / (self.masks * self.keep_probability)


class ExtremalPerturbationExplainer(MapExplainer):
    """Extremal perturbation (Fong et al. 2019), the deletion game, with the blur marginaliser.

    Args:
        areas: the areas a (shares of the organ) whose masks are optimised; the map is their mean.
        steps: Adam steps per area.
        lr: Adam's learning rate on the mask logits.
        cell: mask cell side in working-size pixels.
        area_weight: lambda of the area constraint.
        (others as :class:`~tfsal.explain.baselines.MapExplainer`)
    """

    method = "extremal"

    def __init__(self, model, areas=(0.01, 0.02, 0.05), steps: int = 100, lr: float = 0.1, cell: int = 16,
                 area_weight: float = 300.0, **kwargs):
        super().__init__(model, **kwargs)
        _check(steps=steps, lr=lr, cell=cell, area_weight=area_weight)
        if not areas or not all(0 < a < 1 for a in areas):
            raise ValueError(f"areas must be shares in (0, 1). Received: areas={areas}")
        self.areas, self.mask_steps, self.lr = tuple(float(a) for a in areas), int(steps), float(lr)
        self.cell, self.area_weight, self.fill = int(cell), float(area_weight), BlurFill()

    def _deleted(self, theta, organ, size):
        up = tf.image.resize(tf.sigmoid(theta), tf.shape(theta)[1:3] * self.cell, "bilinear")
        return up[:, :size[0], :size[1]] * organ

    def saliency_maps(self, images, targets, organ):
        size = tuple(images.shape[1:3])
        count, areas = tf.shape(images)[0], len(self.areas)
        images_a, organ_a = tf.repeat(images, areas, axis=0), tf.repeat(organ, areas, axis=0)
        targets_a = tf.repeat(targets, areas)
        fill = self.fill.fill(images_a)
        pixels = size[0] * size[1]
        wanted = tf.round(tf.tile(tf.constant(self.areas), [count]) * tf.reduce_sum(organ_a, axis=[1, 2, 3]))
        grid = (math.ceil(size[0] / self.cell), math.ceil(size[1] / self.cell))
        theta = tf.zeros([count * areas, *grid, 1])
        m, v = tf.zeros_like(theta), tf.zeros_like(theta)
        for i in tf.range(self.mask_steps):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                deleted = self._deleted(theta, organ_a, size)
                p = self.classifier.target_probability(
                    self.classifier.probabilities(composite(images_a, 1.0 - deleted, fill)), targets_a)
                flat = tf.reshape(deleted, [-1, pixels])
                # ||sort(m) - r_a||^2 without the sort: r_a put back where the sorted values came from
                # (the same gradient, element by element; a partial top-k costs a quarter of the sort)
                reference = top_count_mask(tf.stop_gradient(flat), wanted)
                score = log_odds(tf.clip_by_value(p, EPS, 1.0 - EPS))  # no vanishing gradient at saturation
                weight = ramped_weight(self.area_weight, i, self.mask_steps)
                loss = tf.reduce_sum(score + weight * tf.reduce_mean(tf.square(flat - reference), axis=1))
            gradient = tape.gradient(loss, theta)
            theta, m, v = adam_step(theta, gradient, m, v, tf.cast(i + 1, tf.float32), self.lr)
        deleted = self._deleted(theta, organ_a, size)[..., 0]
        return tf.reduce_mean(tf.reshape(deleted, [count, areas, *size]), axis=1)
