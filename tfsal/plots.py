"""Figures (matplotlib, imported only here so that ``import tfsal`` stays light)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tfsal import atomic


def plot_roc(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], path: str | os.PathLike,
             title: str = "ROC") -> None:
    """Write ROC curves ``(label, fpr, tpr)`` to a PNG file, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.2, 4.2), dpi=120)
    for label, fpr, tpr in curves:
        axes.plot(fpr, tpr, label=label, linewidth=1.5)
    axes.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title=title)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
