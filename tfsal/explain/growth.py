"""The result of an optimised or proposed keep mask, and its growth to a flip, as graph-friendly
building blocks: :func:`result_mask` (RM = M < threshold inside the organ), :func:`grow_until_flipped`
(dilate a result that leaves a positive decision standing until its inpainting flips it) and
:func:`grown_saliency` (the map that thresholds to the grown mask). The explainers
(:mod:`tfsal.explain.verify`) and the SavedModel export (:mod:`tfsal.serving.export`) both call them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsal.evaluation.metrics import DECISION_THRESHOLD as DECISION

__all__ = ["dilate_cross", "grow_until_flipped", "grown_saliency", "result_mask"]


def dilate_cross(mask, iterations: int):
    """Binary dilation of float 0/1 ``[B, H, W, 1]`` masks with the 4-connected cross, ``iterations``
    times (SciPy's ``binary_dilation`` default), zero outside the image."""
    kernel = tf.constant([[0, 1, 0], [1, 1, 1], [0, 1, 0]], tf.float32)[:, :, None, None]
    for _ in range(iterations):
        mask = tf.cast(tf.nn.conv2d(mask, kernel, 1, "SAME") > 0.5, tf.float32)
    return mask


def result_mask(keep, organ, threshold: float):
    """The binary result RM = (M < threshold) inside the organ, float 0/1, from the keep mask M
    clipped to [0, 1] and fixed to 1 outside the organ. Returns ``(keep, result)``, both ``[B, H, W, 1]``."""
    keep = tf.where(organ > 0.5, tf.clip_by_value(keep, 0.0, 1.0), 1.0)
    return keep, tf.cast((keep < threshold) & (organ > 0.5), tf.float32)


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
        grown = dilate_cross(grown, step) * organ
        trial, trial_after = score(grown, pending)
        flipped = pending & (trial_after < DECISION)
        rows = flipped[:, None, None, None]
        result = tf.where(rows, grown, result)
        counterfactual = tf.where(rows, trial, counterfactual)
        after = tf.where(flipped, trial_after, after)
        pending = pending & ~flipped
    return result, counterfactual, after


def grown_saliency(saliency, grown, threshold: float):
    """The saliency S = 1 - M with the pixels that growth added (``grown`` 1) raised to the smallest
    float32 above ``1 - threshold``: thresholding it (S > 1 - threshold) gives the grown result
    mask, so the returned map is the one that produced the returned mask, and grown pixels rank
    below every optimised one."""
    floor = float(np.nextafter(np.float32(1.0 - threshold), np.float32(1.0)))
    saliency = tf.convert_to_tensor(saliency, tf.float32)
    return tf.where(tf.convert_to_tensor(grown, tf.float32) > 0.5, tf.maximum(saliency, floor), saliency)
