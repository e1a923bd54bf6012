"""Figures (matplotlib, imported only here so that ``import tfsal`` stays light)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tfsal.util import atomic


def plot_roc(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], path: str | os.PathLike,
             title: str = "ROC") -> None:
    """Write ROC curves ``(label, fpr, tpr)`` to a PNG file, atomically."""
    plot_roc_families({label: [(fpr, tpr)] for label, fpr, tpr in curves}, path, title)


def plot_roc_families(families: dict, path: str | os.PathLike, title: str = "ROC") -> None:
    """ROC families ``{label: [(fpr, tpr), ...]}``: the mean curve and the runs' min-max band.

    Curves are interpolated on a common false-positive-rate grid, as in the paper's Fig. 2.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.linspace(0, 1, 201)
    figure, axes = plt.subplots(figsize=(4.6, 4.4), dpi=120)
    for label, curves in families.items():
        tprs = np.array([np.interp(grid, fpr, tpr) for fpr, tpr in curves])
        (line,) = axes.plot(grid, tprs.mean(0), label=label, linewidth=1.5)
        if len(tprs) > 1:
            axes.fill_between(grid, tprs.min(0), tprs.max(0), color=line.get_color(), alpha=0.25, linewidth=0)
    axes.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title=title)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
