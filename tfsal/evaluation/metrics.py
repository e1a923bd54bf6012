"""Metrics: classifier ROC (AUC, curve, sensitivity and specificity) and the paper's
localisation metrics (D, H, A, O), per image.

D and H follow the paper ("where multiple masses, or mapping results occurred we used their
median"): D is the median, over ground-truth masses and result-mask components, of the distance
between their centres; H the median over masses of the symmetric Hausdorff distance between the
mass and the whole result mask. Both are NaN for an empty result mask (callers count those).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats
from scipy.spatial.distance import directed_hausdorff

DECISION_THRESHOLD = 0.5  # a score at or above it is the classifier calling the image positive


def _check(labels, scores):
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.size} vs {scores.size}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return labels.astype(bool), scores


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (the Mann-Whitney U statistic; ties count one half).

    Returns NaN when only one class is present.
    """
    positive, scores = _check(labels, scores)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and thresholds, from (0, 0) to (1, 1).

    A case is called positive when its score is >= the threshold.
    """
    positive, scores = _check(labels, scores)
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(positive)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / max(1, positive.sum())]
    fpr = np.r_[0.0, fps / max(1, (~positive).sum())]
    return fpr, tpr, np.r_[np.inf, scores[distinct]]


def sensitivity_specificity(labels, scores, threshold: float = DECISION_THRESHOLD) -> tuple[float, float]:
    """Share of positives with score >= threshold, share of negatives below it."""
    positive, scores = _check(labels, scores)
    called = scores >= threshold
    sensitivity = float(called[positive].mean()) if positive.any() else float("nan")
    specificity = float((~called[~positive]).mean()) if (~positive).any() else float("nan")
    return sensitivity, specificity


def _components(mask: np.ndarray) -> list[np.ndarray]:
    labels, count = ndimage.label(np.asarray(mask, bool))
    return [labels == i for i in range(1, count + 1)]


def _centres(mask: np.ndarray) -> np.ndarray:
    """``[n, 2]`` centres of mass of the connected components (one labelling pass)."""
    mask = np.asarray(mask, bool)
    labels, count = ndimage.label(mask)
    if not count:
        return np.zeros((0, 2))
    return np.array(ndimage.center_of_mass(mask, labels, range(1, count + 1)), float).reshape(count, 2)


def count_components(mask: np.ndarray) -> int:
    """The number of 8-connected components of a bool mask."""
    return int(ndimage.label(np.asarray(mask, bool), structure=np.ones((3, 3)))[1])


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (the whole empty mask when empty)."""
    labels, count = ndimage.label(np.asarray(mask, bool), structure=np.ones((3, 3)))
    if count <= 1:
        return np.asarray(mask, bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def centre_distance(truth: np.ndarray, result: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """The paper's D for one image: median distance between the centres of the ground-truth
    masses and of the result mask's connected components; NaN if either is empty.

    ``spacing`` = (row, column) size of a pixel, e.g. ``(576 / 256, 448 / 192)`` to report a
    256x192 evaluation in the paper's 576x448 pixels.
    """
    truths, results = _centres(truth), _centres(result)
    if not len(truths) or not len(results):
        return float("nan")
    scale = np.asarray(spacing, float)
    distances = np.linalg.norm((truths[:, None, :] - results[None, :, :]) * scale, axis=-1)
    return float(np.median(distances))


def hausdorff_distance(truth: np.ndarray, result: np.ndarray, spacing=(1.0, 1.0)) -> float:
    """The paper's H for one image: median over ground-truth masses of the symmetric Hausdorff
    distance between the mass and the result mask; NaN if either is empty. ``spacing`` as
    :func:`centre_distance`."""
    scale = np.asarray(spacing, float)
    result_points = np.argwhere(result) * scale
    truths = _components(truth)
    if not truths or not len(result_points):
        return float("nan")
    distances = []
    for mass in truths:
        points = np.argwhere(mass) * scale
        distances.append(max(directed_hausdorff(points, result_points)[0],
                             directed_hausdorff(result_points, points)[0]))
    return float(np.median(distances))


def overlap_coefficient(a: np.ndarray, b: np.ndarray) -> float:
    """The paper's O: |a & b| / min(|a|, |b|); NaN when either mask is empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    smaller = min(a.sum(), b.sum())
    return float((a & b).sum() / smaller) if smaller else float("nan")


def paired_wilcoxon(a, b) -> tuple[float, int]:
    """Two-sided Wilcoxon signed-rank test of paired values, over the pairs where both are finite.

    Returns:
        ``(p_value, pairs)``; the p-value is NaN with fewer than 2 pairs or no difference at all.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    both = np.isfinite(a) & np.isfinite(b)
    pairs = int(both.sum())
    if pairs < 2 or np.all(a[both] == b[both]):
        return float("nan"), pairs
    return float(stats.wilcoxon(a[both], b[both]).pvalue), pairs
