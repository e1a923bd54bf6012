"""Deletion and insertion curves, and the smallest top-ranked region that flips a decision.

Deletion and insertion (V. Petsiuk, A. Das, K. Saenko, "RISE: randomized input sampling for
explanation of black-box models", British Machine Vision Conference (BMVC), 2018), area-free:
for each share s of the organ on the grid :data:`SHARES`, with T_s the top ``s`` of a map's
pixels inside the organ (:func:`~tfsal.explain.explanation.organ_ranks`, ties broken at random),

    deletion(s)  = p(c | keep * I + (1 - keep) * F),   keep = not T_s
    insertion(s) = p(c | keep * I + (1 - keep) * F),   keep = T_s or outside the organ

with F a marginaliser's fill (:data:`MARGINALISERS`: the inpainter, or a Gaussian blur, so that
a method cannot win only through the inpainter it optimised against). The curves start at s = 0
(deletion: the original score; insertion: the whole organ marginalised) and their area is the
trapezoid over [0, max(SHARES)] divided by max(SHARES), i.e. the mean score along the curve:
lower is better for deletion, higher for insertion.

The search-matched region of a map (every method gets the same search) is T_s at the smallest
s on the grid whose deletion with the inpainter brings a positive score (>= 0.5) below 0.5.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsal.evaluation.metrics import DECISION_THRESHOLD
from tfsal.explain.explanation import share_count
from tfsal.models.inpainter import composite

__all__ = ["CURVES", "MARGINALISERS", "SHARES", "curve_area", "curve_scores", "first_flip", "keep_masks",
           "score_keeps"]

SHARES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)
"""Shares of the organ on which curves are scored and the search looks for a flip; 0.5, 0.25 and
0.1 are the paper's P = 50, 75 and 90."""

CURVES = ("deletion", "insertion")
"""The two curves."""

MARGINALISERS = ("inpainter", "blur")
"""The two fills of deleted pixels (:mod:`tfsal.explain.infill`)."""


def keep_masks(ranks: np.ndarray, organ: np.ndarray, shares, curve: str) -> np.ndarray:
    """float32 ``[len(shares), H, W, 1]`` keep masks of one image for ``curve``.

    Args:
        ranks: int ``[H, W]`` from :func:`~tfsal.explain.explanation.organ_ranks`.
        organ: bool ``[H, W]``.
        shares: shares of the organ in [0, 1].
        curve: ``deletion`` (the top share deleted) or ``insertion`` (only the top share kept
            inside the organ).
    """
    if curve not in CURVES:
        raise ValueError(f"curve must be one of {CURVES}. Received: {curve!r}")
    counts = np.array([share_count(organ, s) for s in shares])
    top = ranks[None] < counts[:, None, None]
    keep = ~top if curve == "deletion" else top | ~organ[None]
    return keep[..., None].astype(np.float32)


def score_keeps(classifier, filler, images, keeps, targets, batch_size: int = 16) -> np.ndarray:
    """p(target) of ``keep * I + (1 - keep) * F`` for many keep masks of each image.

    Args:
        classifier: a :class:`~tfsal.explain.classifier_adapter.ClassifierAdapter`.
        filler: a marginaliser with ``fill(images, keep)``.
        images: float32 ``[B, H, W, 1]`` at the classifier's working size.
        keeps: float32 ``[B, K, H, W, 1]``, 1 = keep.
        targets: int ``[B]``.
        batch_size: composites scored together.

    Returns:
        float32 ``[B, K]``.
    """
    count, per_image = keeps.shape[0], keeps.shape[1]
    flat_images = np.repeat(np.asarray(images, np.float32), per_image, axis=0)
    flat_keeps = keeps.reshape(count * per_image, *keeps.shape[2:])
    flat_targets = np.repeat(np.asarray(targets, np.int32), per_image)
    scores = []
    for start in range(0, len(flat_images), batch_size):
        image = tf.constant(flat_images[start:start + batch_size])
        keep = tf.constant(flat_keeps[start:start + batch_size])
        seen = composite(image, keep, filler.fill(image, keep))
        scores.append(classifier.target_probability(classifier.probabilities(seen),
                                                    flat_targets[start:start + batch_size]).numpy())
    return np.concatenate(scores).reshape(count, per_image).astype(np.float32)


def curve_scores(classifier, filler, images, ranks, organ, targets, curve: str, shares=SHARES,
                 batch_size: int = 16) -> np.ndarray:
    """``[B, len(shares)]`` scores of ``curve`` for a batch of maps' ranks ``[B, H, W]`` and organs."""
    keeps = np.stack([keep_masks(r, o, shares, curve) for r, o in zip(ranks, organ, strict=True)])
    return score_keeps(classifier, filler, images, keeps, targets, batch_size)


def curve_area(scores, start, shares=SHARES) -> np.ndarray:
    """The area under curves ``[B, G]`` that start at ``start`` ``[B]`` (share 0), over
    [0, max(shares)], divided by max(shares): the mean score along the curve, ``[B]``."""
    scores = np.asarray(scores, float)
    x = np.r_[0.0, np.asarray(shares, float)]
    y = np.concatenate([np.asarray(start, float).reshape(-1, 1), scores], axis=1)
    return np.trapezoid(y, x, axis=1) / x[-1]


def first_flip(scores, original) -> np.ndarray:
    """For deletion curves ``[B, G]``: the index of the first share whose score is below 0.5
    for images whose ``original`` score is at least 0.5; -1 where none flips or the image is not
    called positive."""
    scores = np.asarray(scores, float)
    flipped = (scores < DECISION_THRESHOLD) & (np.asarray(original, float) >= DECISION_THRESHOLD)[:, None]
    return np.where(flipped.any(axis=1), np.argmax(flipped, axis=1), -1)
