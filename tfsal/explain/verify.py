"""From a soft keep mask to verified explanations, for every mask method that proposes one (the
optimiser of :mod:`tfsal.explain.counterfactual`, the one-pass network of
:mod:`tfsal.explain.amortised`).

The proposal M (at the working size, 1 keeps a pixel) is brought to the image size and cut at
``threshold`` inside the organ; the cut region is inpainted by the inpainter and scored by the
classifier, and a region that leaves a positive decision standing is dilated by half a mask cell
at a time until its inpainting flips it (:func:`~tfsal.explain.growth.grow_until_flipped`). So each
returned mask's counterfactual and score are the real inpainter's and classifier's, whatever
proposed it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsal.explain.base import Batch
from tfsal.explain.explanation import Explanation
from tfsal.explain.growth import grow_until_flipped, grown_saliency
from tfsal.explain.scoring import resize_maps

__all__ = ["grow", "verified_explanations"]


def grow(explainer, batch: Batch, originals, organ, results, counterfactuals, scores, cell: int, grow_steps: int):
    """:func:`~tfsal.explain.growth.grow_until_flipped` at the image size (half a working-size cell
    per step), inpainting with ``explainer.infiller`` and scoring only the images still pending.

    Returns:
        ``(results bool [B, H, W], counterfactuals [B, H, W], scores [B])``.
    """
    step = max(1, round(cell / 2 * originals.shape[1] / batch.images.shape[1]))

    def score(masks, pending):  # the pending images only: growth is the explanation's costliest extra
        rows = np.flatnonzero(pending.numpy())
        part = Batch(tf.gather(batch.images, rows), tf.gather(batch.organ, rows), batch.targets[rows],
                     batch.scores[rows])
        images, after = explainer.counterfactuals(explainer.infiller, part, originals[rows],
                                                  masks.numpy()[rows, ..., 0] > 0.5)
        all_images, all_after = np.zeros(originals.shape[:3], np.float32), np.ones(len(originals), np.float32)
        all_images[rows], all_after[rows] = images, after
        return tf.constant(all_images[..., None]), tf.constant(all_after)

    result, counterfactual, after = grow_until_flipped(
        score, tf.constant(results[..., None], tf.float32), tf.constant(organ[..., None], tf.float32),
        tf.constant(batch.scores, tf.float32), tf.constant(scores, tf.float32),
        tf.constant(counterfactuals[..., None], tf.float32), step, grow_steps)
    return result.numpy()[..., 0] > 0.5, counterfactual.numpy()[..., 0], after.numpy()


def verified_explanations(explainer, batch: Batch, originals: np.ndarray, organ: np.ndarray, keep, losses,
                          cell: int, threshold: float, grow_steps: int) -> list[Explanation]:
    """One :class:`Explanation` per image from the proposed keep masks.

    Args:
        explainer: the :class:`~tfsal.explain.base.Explainer` (its ``method``, ``infiller`` and
            ``counterfactuals`` are used).
        batch: the prepared batch; originals float32 ``[B, H, W, 1]``; organ bool ``[B, H, W]``.
        keep: the soft keep masks M at the working size ``[B, h, w, 1]``.
        losses: ``[B, steps]`` loss histories (``[B, 0]`` for a method without steps).
        cell: the mask cell side at the working size (growth moves by half of it).
        threshold: the result is ``M < threshold``; grow_steps: 0 turns the growth off.
    """
    keep = np.clip(resize_maps(np.asarray(keep)[..., 0], originals.shape[1:3]), 0.0, 1.0)
    keep = np.where(organ, keep, 1.0).astype(np.float32)
    optimised = (keep < threshold) & organ
    counterfactuals, scores = explainer.counterfactuals(explainer.infiller, batch, originals, optimised)
    results = optimised
    if grow_steps:
        results, counterfactuals, scores = grow(explainer, batch, originals, organ, optimised, counterfactuals,
                                                scores, cell, grow_steps)
    grown = results & ~optimised
    saliency = grown_saliency(1.0 - keep, grown.astype(np.float32), threshold).numpy()
    return [Explanation(explainer.method, int(t), s, r, o, float(s0), float(s1), c, loss.astype(np.float32),
                        g if grow_steps else None)
            for t, s, r, o, s0, s1, c, loss, g in zip(batch.targets, saliency, results, organ, batch.scores,
                                                      scores, counterfactuals, np.asarray(losses), grown, strict=True)]
