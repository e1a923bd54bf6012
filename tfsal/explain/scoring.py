"""Scoring a deletion: log-odds, and a result mask inpainted and shown to the classifier.

Every method's result mask is scored the same way: the mask's pixels are replaced by the
inpainter's fill, C = keep * I + (1 - keep) * F (:func:`tfsal.models.inpainter.composite`), and
the classifier's p(target | C) is its score after deletion.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsal.models.inpainter import composite

__all__ = ["EPS", "inpaint_and_score", "log_odds", "resize_maps"]

EPS = 1e-6
"""Probabilities are clipped to [EPS, 1 - EPS] before any logarithm, so no NaN reaches a mask."""


def log_odds(p):
    """``log(p) - log(1 - p)`` of a tensor; clip ``p`` first where it may reach 0 or 1."""
    return tf.math.log(p) - tf.math.log1p(-p)


def resize_maps(maps, size, method="bilinear") -> np.ndarray:
    """``[B, h, w]`` maps resized to ``size`` = ``(H, W)``, as float32 numpy."""
    maps = tf.convert_to_tensor(maps, tf.float32)[..., None]
    if tuple(maps.shape[1:3]) != tuple(size):
        maps = tf.image.resize(maps, size, method)
    return maps.numpy()[..., 0]


def inpaint_and_score(classifier, infiller, working, originals: np.ndarray, masks: np.ndarray, targets):
    """Inpaint each image's result mask and score it.

    Args:
        classifier: the :class:`~tfsal.explain.classifier_adapter.ClassifierAdapter`.
        infiller: a :class:`~tfsal.explain.infill.Infiller`.
        working: float32 ``[B, h, w, 1]``, the images at the working size.
        originals: float32 ``[B, H, W, 1]`` at the image size (may be ``working`` itself).
        masks: bool ``[B, H, W]``, the regions to delete.
        targets: int ``[B]``.

    Returns:
        ``(counterfactuals float32 [B, H, W], scores float32 [B])``: the images with the masks
        inpainted at the working size (kept pixels are the originals'), and p(target) for them.
    """
    size = tuple(working.shape[1:3])
    keep = 1.0 - masks[..., None].astype(np.float32)
    keep_w = tf.image.resize(keep, size, "nearest") if keep.shape[1:3] != size else tf.constant(keep)
    fill = resize_maps(infiller.fill(tf.convert_to_tensor(working, tf.float32), keep_w)[..., 0],
                       originals.shape[1:3])[..., None]
    counterfactual = composite(originals, keep, fill)
    seen = tf.convert_to_tensor(counterfactual)
    if tuple(seen.shape[1:3]) != size:
        seen = tf.image.resize(seen, size, "bilinear", antialias=True)
    scores = classifier.target_probability(classifier.probabilities(seen), targets)
    return counterfactual[..., 0], scores.numpy()
