"""Metrics: classifier ROC (AUC, curve, sensitivity and specificity) and the paper's
localisation metrics (D, H, A, O), per image.

D and H follow the paper ("where multiple masses, or mapping results occurred we used their
median"): D is the median, over ground-truth masses and result-mask components, of the distance
between their centres; H the median over masses of the symmetric Hausdorff distance between the
mass and the whole result mask. Both are NaN for an empty result mask; :func:`localisation`
counts an empty result as the worst case, the image diagonal (so a method cannot improve its mean
by returning nothing on the hard images).

A component is 8-connected everywhere (:data:`CONNECTIVITY`): for D's centres, for counting
components and for the largest component.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, spatial, stats

DECISION_THRESHOLD = 0.5
"""A score at or above it is the classifier calling the image positive; a deletion flips the
decision when the score of a positive image falls below it."""

CONNECTIVITY = np.ones((3, 3), bool)
"""The structuring element of every connected-component labelling: 8-connectivity."""


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


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """``(labels, count)``: the 8-connected components of a bool mask, numbered from 1."""
    labels, count = ndimage.label(np.asarray(mask, bool), structure=CONNECTIVITY)
    return labels, int(count)


def _components(mask: np.ndarray) -> list[np.ndarray]:
    labels, count = label_components(mask)
    return [labels == i for i in range(1, count + 1)]


def _centres(mask: np.ndarray) -> np.ndarray:
    """``[n, 2]`` centres of mass of the connected components (one labelling pass, sums by label)."""
    labels, count = label_components(mask)
    if not count:
        return np.zeros((0, 2))
    flat = labels.ravel()
    rows, cols = np.indices(labels.shape)
    sizes = np.bincount(flat, minlength=count + 1)[1:]
    return np.stack([np.bincount(flat, rows.ravel(), count + 1)[1:] / sizes,
                     np.bincount(flat, cols.ravel(), count + 1)[1:] / sizes], axis=1)


def count_components(mask: np.ndarray) -> int:
    """The number of 8-connected components of a bool mask."""
    return label_components(mask)[1]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (the whole empty mask when empty)."""
    labels, count = label_components(mask)
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


def mass_distances(truth: np.ndarray, spacing=(1.0, 1.0)) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each ground-truth mass with its distance map (the distance of every pixel to it): what
    :func:`hausdorff_distance` needs of the truth, computed once for many results."""
    return [(mass, ndimage.distance_transform_edt(~mass, sampling=spacing)) for mass in _components(truth)]


def _distances_to(region: np.ndarray, points: np.ndarray, spacing) -> np.ndarray:
    """Euclidean distance of each pixel ``points`` ``[n, 2]`` to the nearest pixel of ``region``:
    0 inside it, else the distance to its nearest edge pixel (a pixel with a 4-neighbour outside
    the region or on the image border; the nearest region pixel to an outside point is always
    one, since the step from it towards the point leaves the region)."""
    inside = region[points[:, 0], points[:, 1]]
    distances = np.zeros(len(points))
    if inside.all():
        return distances
    edge = region & ~ndimage.binary_erosion(region, border_value=0)
    scale = np.asarray(spacing, float)
    tree = spatial.cKDTree(np.argwhere(edge) * scale)
    distances[~inside] = tree.query(points[~inside] * scale)[0]
    return distances


def hausdorff_distance(truth: np.ndarray, result: np.ndarray, spacing=(1.0, 1.0), masses=None) -> float:
    """The paper's H for one image: median over ground-truth masses of the symmetric Hausdorff
    distance between the mass and the result mask; NaN if either is empty. ``spacing`` as
    :func:`centre_distance`; ``masses`` optionally :func:`mass_distances` of ``truth`` at ``spacing``.

    Exact Euclidean distances: the largest distance of a result pixel to the mass (from the mass's
    distance transform) and of a mass pixel to the result (to the result's nearest edge pixel).
    """
    result = np.asarray(result, bool)
    masses = mass_distances(truth, spacing) if masses is None else masses
    if not masses or not result.any():
        return float("nan")
    distances = [max(float(_distances_to(result, np.argwhere(mass), spacing).max()), float(to_mass[result].max()))
                 for mass, to_mass in masses]
    return float(np.median(distances))


def diagonal(shape, spacing=(1.0, 1.0)) -> float:
    """The image diagonal, the worst D and H an image can have: the value an empty result counts as."""
    return float(np.hypot(shape[0] * spacing[0], shape[1] * spacing[1]))


def localisation(truth: np.ndarray, result: np.ndarray, spacing=(1.0, 1.0), masses=None) -> dict:
    """D and H of one image's result mask, with an empty result counted as the worst case.

    Returns:
        ``{"D", "H", "empty"}``: D and H as :func:`centre_distance` and
        :func:`hausdorff_distance` (``masses`` as there), both the image :func:`diagonal` when
        ``result`` is empty.
    """
    if not np.any(result):
        worst = diagonal(np.shape(truth), spacing)
        return {"D": worst, "H": worst, "empty": True}
    return {"D": centre_distance(truth, result, spacing),
            "H": hausdorff_distance(truth, result, spacing, masses), "empty": False}


def overlap_coefficient(a: np.ndarray, b: np.ndarray) -> float:
    """The paper's O: |a & b| / min(|a|, |b|); NaN when either mask is empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    smaller = min(a.sum(), b.sum())
    return float((a & b).sum() / smaller) if smaller else float("nan")
