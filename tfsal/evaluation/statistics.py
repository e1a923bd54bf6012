"""Statistics of paired comparisons: which method is better on the same images, by how much, and
how sure we can be.

For a reference method R (ours) and a baseline B measured on the same n images, with the
differences d_i = R_i - B_i over the images where both are finite:

- the one-sided Wilcoxon signed-rank test (F. Wilcoxon, "Individual comparisons by ranking
  methods", Biometrics Bulletin, 1945) of H0 "d is symmetric about 0" against the alternative
  written out: ``less`` (R lower than B, e.g. a distance D or a deletion AUC) or ``greater``
  (R higher, e.g. an insertion AUC); zero differences are dropped (Wilcoxon's convention);
- the effect size: the median of d with a percentile bootstrap 95 % interval (B. Efron,
  R. Tibshirani, "An introduction to the bootstrap", Chapman & Hall, 1993), images resampled
  with replacement;
- win counts: on how many images R is better, worse, or level;
- Holm's step-down correction over the tests of one table (S. Holm, "A simple sequentially
  rejective multiple test procedure", Scandinavian Journal of Statistics, 1979).

A classifier's ROC AUC gets a stratified bootstrap interval (positives and negatives resampled
separately, so every resample has both classes); two classifiers scored on the same images get
one for the difference of their AUCs, the same images drawn for both in every resample (a paired
bootstrap), at a level the caller widens for the number of comparisons (Bonferroni).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from tfsal.evaluation.metrics import roc_auc

__all__ = ["ALTERNATIVES", "LEVEL", "RESAMPLES", "auc_difference_interval", "auc_interval", "compare", "holm",
           "median_interval"]

ALTERNATIVES = ("less", "greater")
"""The direction of a one-sided test: the reference's values are lower, or higher, than the other's."""

RESAMPLES = 2000
"""Bootstrap resamples of every interval."""

LEVEL = 0.95
"""The confidence level of every interval."""


def _percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def median_interval(differences, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``differences`` (NaN, NaN when empty)."""
    d = np.asarray(differences, float)
    if not d.size:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    medians = np.median(d[rng.integers(0, d.size, (resamples, d.size))], axis=1)
    return _percentile_interval(medians)


def compare(reference, other, alternative: str = "less", resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """One-sided paired comparison of ``reference`` against ``other`` (the module docstring).

    Args:
        reference, other: per-image values, paired by position; pairs with a NaN are left out.
        alternative: ``less`` (the test's alternative: the reference is lower) or ``greater``.

    Returns:
        ``{"alternative", "n", "p", "median_difference", "interval", "wins", "losses", "ties"}``
        where the difference is reference - other, ``wins`` counts the images where the reference
        is better in the tested direction, and ``p`` is NaN with no pair and 1 when every pair ties.

    Raises:
        ValueError: an unknown ``alternative`` or values of different lengths.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}. Received: {alternative!r}")
    a, b = np.asarray(reference, float).ravel(), np.asarray(other, float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"reference and other differ in length: {a.size} vs {b.size}")
    both = np.isfinite(a) & np.isfinite(b)
    d = a[both] - b[both]
    better = d < 0 if alternative == "less" else d > 0
    result = {"alternative": alternative, "n": int(d.size), "wins": int(better.sum()),
              "losses": int(((d != 0) & ~better).sum()), "ties": int((d == 0).sum())}
    if not d.size:
        return {**result, "p": float("nan"), "median_difference": float("nan"), "interval": [float("nan")] * 2}
    p = 1.0 if np.all(d == 0) else float(stats.wilcoxon(d, alternative=alternative).pvalue)
    return {**result, "p": p, "median_difference": float(np.median(d)),
            "interval": list(median_interval(d, resamples, seed))}


def holm(pvalues) -> list[float]:
    """Holm-adjusted p-values, in the given order; NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return [float(v) for v in adjusted]


def _stratified_aucs(labels, score_sets, resamples: int, seed: int) -> np.ndarray | None:
    """``[resamples, len(score_sets)]`` AUCs, each resample's images shared by every score set."""
    labels = np.asarray(labels).ravel().astype(bool)
    score_sets = [np.asarray(s, float).ravel() for s in score_sets]
    if any(s.shape != labels.shape for s in score_sets):
        raise ValueError(f"labels and scores differ in length: {labels.size} vs {[s.size for s in score_sets]}")
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    if not positives.size or not negatives.size:
        return None
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(positives.size), np.zeros(negatives.size)]
    values = np.empty((resamples, len(score_sets)))
    for i in range(resamples):
        chosen = np.r_[rng.choice(positives, positives.size), rng.choice(negatives, negatives.size)]
        values[i] = [roc_auc(y, s[chosen]) for s in score_sets]
    return values


def auc_interval(labels, scores, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Stratified percentile bootstrap interval of the ROC AUC (NaN, NaN with only one class)."""
    values = _stratified_aucs(labels, [scores], resamples, seed)
    return (float("nan"), float("nan")) if values is None else _percentile_interval(values[:, 0])


def auc_difference_interval(labels, scores_a, scores_b, level: float = LEVEL, resamples: int = RESAMPLES,
                            seed: int = 0) -> dict:
    """AUC(a) - AUC(b) of two classifiers scored on the same images, with a paired interval.

    Args:
        labels: 0/1 per image.
        scores_a, scores_b: each classifier's score per image, paired by position with ``labels``.
        level: the interval's level; for m comparisons at a family-wise 0.95, ``1 - 0.05 / m``.

    Returns:
        ``{"difference", "interval", "level"}``; NaN where the images hold one class only.

    Raises:
        ValueError: scores and labels of different lengths, or a level outside (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1). Received: level={level}")
    values = _stratified_aucs(labels, [scores_a, scores_b], resamples, seed)
    if values is None:
        return {"difference": float("nan"), "interval": [float("nan")] * 2, "level": level}
    difference = roc_auc(labels, scores_a) - roc_auc(labels, scores_b)
    return {"difference": float(difference), "interval": list(_percentile_interval(values[:, 0] - values[:, 1], level)),
            "level": level}
