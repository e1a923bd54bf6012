"""Pictures drawn with OpenCV (no matplotlib): explanation overlays, image grids for documentation and reports."""

from __future__ import annotations

import os

import cv2
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
from tfsal.util import atomic


def to_bgr(image: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, 1], floats in [0, 1] or integers (scaled by their type's maximum), to 8-bit BGR."""
    image = np.asarray(image)
    scale = 255 / np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 255  # 16-bit too
    gray = np.clip(image.astype(np.float32).reshape(image.shape[0], image.shape[1]) * scale + 0.5, 0, 255)
    return cv2.cvtColor(gray.astype(np.uint8), cv2.COLOR_GRAY2BGR)


def with_holes(image: np.ndarray, mask: np.ndarray, colour=(40, 40, 255)) -> np.ndarray:
    """The image with its holes (mask 0) painted in a colour."""
    bgr = to_bgr(image)
    bgr[np.asarray(mask).reshape(bgr.shape[:2]) < 0.5] = colour
    return bgr


def write_grid(rows: list[list[np.ndarray]], path: str | os.PathLike, gap: int = 6, headers=None,
               labels=None) -> None:
    """Write rows of equally sized BGR tiles on white, ``gap`` pixels apart, to a PNG (atomically),
    with optional column ``headers`` (one per column) above them and ``labels`` (one list per
    row, one text per tile; None or "" for none) under each tile, in black."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    font, size = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, min(0.6, width / 450))
    band = cv2.getTextSize("Ag", font, size, 1)[0][1] * 2 + 4 if (headers or labels) else 0
    top = band if headers else 0
    below = band if labels else 0
    step_y, step_x = height + below + gap, width + gap
    canvas = np.full((top + len(rows) * step_y - gap, columns * step_x - gap, 3), 255, np.uint8)
    for j, header in enumerate(headers or []):
        _put_fitted(canvas, str(header), j * step_x, band - 6, width, font, size)
    for i, row in enumerate(rows):
        y = top + i * step_y
        for j, tile in enumerate(row):
            canvas[y:y + height, j * step_x:j * step_x + width] = tile
            label = labels[i][j] if labels and j < len(labels[i]) else None
            if label:
                _put_fitted(canvas, str(label), j * step_x, y + height + band - 6, width, font, size)
    atomic.write_bytes(path, encode_png(canvas, compression=9))  # figures for documents: small over fast


def _put_fitted(canvas: np.ndarray, text: str, x: int, baseline: int, width: int, font, size: float) -> None:
    """Black ``text`` at ``(x, baseline)``, its font shrunk until it fits in ``width`` pixels."""
    while size > 0.25 and cv2.getTextSize(text, font, size, 1)[0][0] > width:
        size *= 0.9
    cv2.putText(canvas, text, (x + 2, baseline), font, size, (0, 0, 0), 1, cv2.LINE_AA)


OUTLINE = (0, 255, 0)
"""The result region's outline colour (BGR green)."""


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, mask: np.ndarray, alpha: float = 0.45,
                     absolute: bool = False, scale: float = 1.0) -> np.ndarray:
    """The image with its map as a heat map (:func:`heat_level`) and the mask's outline (green),
    as BGR; a zero map leaves the image untouched (a tile of a figure: no caption)."""
    bgr = to_bgr(image)
    level = heat_level(np.asarray(saliency).reshape(bgr.shape[:2]), absolute)
    heat = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = (alpha * level)[:, :, None]
    bgr = (bgr * (1 - weight) + heat * weight + 0.5).astype(np.uint8)
    thickness = max(1, round(bgr.shape[0] / 256))
    cv2.drawContours(bgr, smooth_outline(np.asarray(mask).reshape(bgr.shape[:2]), scale), -1, OUTLINE, thickness,
                     cv2.LINE_AA)
    return bgr


def explanation_overlay(image: np.ndarray, explanation, style: str = "outline", absolute: bool | None = None,
                        scale: float | None = None) -> np.ndarray:
    """An :class:`~tfsal.explain.explanation.Explanation` drawn on its image, as BGR at the image's size.

    ``outline``: the result region's outline (green), the scores (``p 0.91 -> 0.12``, the region's
    share of the breast) and a colour bar of the score from 0 to 1 with both scores marked.
    ``heat``: the map as a heat map under the outline, with its colour bar (0 to 1: absolute for
    the counterfactual method, each map's own 99th percentile for the others). An explanation with
    no region (the counterfactual method's result for an image the classifier calls healthy, once
    optimised) gives the grey image and ``no region found, p 0.12`` only: no coloured pixel. The
    caption and the bar go to the side with less breast.

    Args:
        image: the image ``[H, W]`` or ``[H, W, 1]`` in [0, 1].
        explanation: at the image's size.
        style: one of :data:`STYLES`.
        absolute: draw the map on the absolute scale; None: for the methods whose result is a mask
            (the registry's ``mask`` kind).
        scale: the staircase size of an upsampled mask; None: the image height over 256.

    Raises:
        ValueError: an unknown style.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}. Received: style={style!r}")
    absolute = is_absolute(explanation.method) if absolute is None else absolute
    scale = default_scale(image.shape[0]) if scale is None else scale
    mask, organ = np.asarray(explanation.mask, bool), np.asarray(explanation.organ, bool)
    before, after = explanation.score_original, explanation.score_counterfactual
    if not mask.any():
        return _caption(to_bgr(image), organ, [no_region_text(explanation)], None)
    if style == "heat":
        bgr = saliency_overlay(image, explanation.saliency, mask, absolute=absolute, scale=scale)
        bar = ("S" if absolute else "rel.", None, None)
    else:
        bgr = saliency_overlay(image, np.zeros(mask.shape, np.float32), mask, scale=scale)
        bar = ("p", before, after)
    lines = [score_text(explanation), f"region {100 * explanation.area_fraction:.1f}% of breast"]
    return _caption(bgr, organ, lines, bar)


def _caption(bgr: np.ndarray, organ: np.ndarray, lines: list[str], bar) -> np.ndarray:
    """Write ``lines`` in white on a dark box at the top of the side with less ``organ``, and
    below it a vertical colour bar ``(label, before, after)`` (JET, 1 at the top; ``before`` and
    ``after`` marked in white and black) unless ``bar`` is None."""
    height, width = bgr.shape[:2]
    font, size = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, height / 900)
    while True:  # the caption takes at most two thirds of the width and a third of the height
        thick = max(1, round(size * 1.5))
        pad = max(2, round(6 * size))
        boxes = [cv2.getTextSize(line, font, size, thick) for line in lines]
        line_height = max(h + b for (_, h), b in boxes) + pad
        box_w = max(w for (w, _), _ in boxes) + 2 * pad
        if box_w <= 2 * width / 3 and line_height * len(lines) + 2 * pad <= height / 3:
            break
        if size < 0.2:
            return bgr  # too small an image for any caption
        size *= 0.85
    left = organ[:, : width // 2].sum() <= organ[:, width // 2:].sum()
    x0 = pad if left else max(0, width - box_w - pad)
    y1 = pad + line_height * len(lines) + pad
    _darken(bgr, x0, pad, x0 + box_w, y1)
    for i, line in enumerate(lines):
        baseline_y = pad + line_height * (i + 1) - boxes[i][1]
        cv2.putText(bgr, line, (x0 + pad, baseline_y), font, size, (255, 255, 255), thick, cv2.LINE_AA)
    if bar is None:
        return bgr
    label, before, after = bar
    bar_w, bar_h = max(6, round(20 * size)), max(20, height // 4)
    top = y1 + pad
    if top + bar_h + line_height >= height:
        return bgr
    bx = x0 + pad if left else max(0, width - bar_w - 3 * pad - cv2.getTextSize("1.0", font, size, thick)[0][0])
    ramp = np.linspace(255, 0, bar_h).astype(np.uint8)[:, None].repeat(bar_w, 1)
    bgr[top:top + bar_h, bx:bx + bar_w] = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)
    for value, colour in ((before, (255, 255, 255)), (after, (0, 0, 0))):
        if value is not None:
            y = top + round((1 - float(np.clip(value, 0, 1))) * (bar_h - 1))
            cv2.line(bgr, (bx - pad, y), (bx + bar_w + pad - 1, y), colour, max(1, thick), cv2.LINE_AA)
    for text, y in (("1", top + boxes[0][0][1]), ("0", top + bar_h)):
        cv2.putText(bgr, text, (bx + bar_w + pad, y), font, size, (255, 255, 255), thick, cv2.LINE_AA)
    cv2.putText(bgr, label, (bx, top + bar_h + line_height - pad), font, size, (255, 255, 255), thick, cv2.LINE_AA)
    return bgr


def _darken(bgr: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a box (to a third) so that white text on it can be read over any tissue; grey stays grey."""
    region = bgr[y0:y1, x0:x1]
    region[:] = (region.astype(np.uint16) // 3).astype(np.uint8)


def encode_png(array: np.ndarray, compression: int = 3) -> bytes:
    """PNG bytes of an 8- or 16-bit array (gray or BGR); ``compression`` 0-9 (9: smallest, slowest)."""
    ok, buffer = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()
