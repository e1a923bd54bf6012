"""Metrics: classifier ROC (AUC, curve, sensitivity and specificity).

The localisation metrics of the paper (D, H, A, O) join this module with the evaluation.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


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


def sensitivity_specificity(labels, scores, threshold: float = 0.5) -> tuple[float, float]:
    """Share of positives with score >= threshold, share of negatives below it."""
    positive, scores = _check(labels, scores)
    called = scores >= threshold
    sensitivity = float(called[positive].mean()) if positive.any() else float("nan")
    specificity = float((~called[~positive]).mean()) if (~positive).any() else float("nan")
    return sensitivity, specificity
