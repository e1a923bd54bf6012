"""Explanations drawn with matplotlib (imported here only): :meth:`Explanation.plot
<tfsal.explain.explanation.Explanation.plot>` and ``tfsal.plots.show``.

The same picture as the overlay files (:func:`tfsal.outputs.drawing.explanation_overlay`), in RGB
for matplotlib users: the image in grey, the result region's outline in green, the scores in the
title and a colour bar: of the score (``outline``, both scores marked) or of the map (``heat``,
absolute for the counterfactual method). No region: the image and "no region found", no colour.
"""

from __future__ import annotations

import numpy as np

from tfsal.explain.display import (
    STYLES,
    default_scale,
    heat_level,
    is_absolute,
    no_region_text,
    score_text,
    smooth_outline,
)

__all__ = ["plot_explanation", "show"]


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def plot_explanation(explanation, ax=None, style: str = "outline", image=None, title: str | None = None):
    """Draw one explanation on ``ax`` (None: the current axes) and return the axes.

    Args:
        explanation: an :class:`~tfsal.explain.explanation.Explanation`.
        style: ``outline`` or ``heat``.
        image: the image ``[H, W]`` (or ``[H, W, 1]``) in [0, 1]; None: the explanation's own.
        title: a first title line (e.g. the input's name); the scores follow it.

    Raises:
        ValueError: an unknown style, or no image (one made without ``explain``, given none).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}. Received: style={style!r}")
    image = explanation.image if image is None else image
    if image is None:
        raise ValueError("this explanation holds no image; pass image=")
    image = np.asarray(image, np.float32).reshape(np.shape(explanation.mask))
    plt = _pyplot()
    ax = ax if ax is not None else plt.gca()
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="lanczos")
    ax.set_axis_off()
    before, after = explanation.score_original, explanation.score_counterfactual
    lines = [title] if title else []
    if not np.asarray(explanation.mask).any():
        ax.set_title("\n".join([*lines, no_region_text(explanation)]), fontsize=9)
        return ax
    scale = default_scale(image.shape[0])
    absolute = is_absolute(explanation.method)
    if style == "heat":
        level = heat_level(explanation.saliency, absolute)
        heat = ax.imshow(level, cmap="jet", vmin=0, vmax=1, alpha=0.45 * level)
        bar = ax.figure.colorbar(heat, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label("S = 1 - M" if absolute else "map / its 99th percentile", fontsize=8)
    else:
        from matplotlib import cm, colors

        bar = ax.figure.colorbar(cm.ScalarMappable(colors.Normalize(0, 1), "jet"), ax=ax, fraction=0.046, pad=0.02)
        bar.set_label(f"p(class {explanation.target})", fontsize=8)
        for value, colour in ((before, "white"), (after, "black")):
            if value is not None:
                bar.ax.axhline(value, color=colour, linewidth=2)
    for contour in smooth_outline(explanation.mask, scale):
        points = np.concatenate([contour[:, 0], contour[:1, 0]]).astype(float)
        ax.plot(points[:, 0], points[:, 1], color="lime", linewidth=1.2)
    lines.append(f"{score_text(explanation, chr(0x2192))}, region {100 * explanation.area_fraction:.1f}%")
    ax.set_title("\n".join(lines), fontsize=9)
    return ax


def show(explanations, images=None, style: str = "outline", columns: int = 4, titles=None):
    """A figure of several explanations side by side (``columns`` per row); returns the figure.

    Args:
        explanations: :class:`~tfsal.explain.explanation.Explanation` objects (an ``explain`` result).
        images: their images; None: the explanations' own.
        style: ``outline`` or ``heat``.
        columns: panels per row.
        titles: a first title line per explanation (e.g. file names), or None.
    """
    explanations = list(explanations)
    if not explanations:
        raise ValueError("no explanation to show")
    columns = max(1, min(int(columns), len(explanations)))
    rows = -(-len(explanations) // columns)
    plt = _pyplot()
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(explanations):
            ax.set_axis_off()
            continue
        plot_explanation(explanations[k], ax=ax, style=style, image=None if images is None else images[k],
                         title=None if titles is None else titles[k])
    figure.tight_layout()
    return figure
