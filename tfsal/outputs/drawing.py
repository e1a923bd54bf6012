"""Pictures drawn with OpenCV (no matplotlib): saliency overlays, image grids for documentation and reports."""

from __future__ import annotations

import os

import cv2
import numpy as np

from tfsal.util import atomic


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Float [H, W] or [H, W, 1] in [0, 1] to 8-bit BGR."""
    gray = np.clip(np.asarray(image, np.float32).reshape(image.shape[0], image.shape[1]) * 255 + 0.5, 0, 255)
    return cv2.cvtColor(gray.astype(np.uint8), cv2.COLOR_GRAY2BGR)


def with_holes(image: np.ndarray, mask: np.ndarray, colour=(40, 40, 255)) -> np.ndarray:
    """The image with its holes (mask 0) painted in a colour."""
    bgr = to_bgr(image)
    bgr[np.asarray(mask).reshape(bgr.shape[:2]) < 0.5] = colour
    return bgr


def write_grid(rows: list[list[np.ndarray]], path: str | os.PathLike, gap: int = 4) -> None:
    """Write rows of equally sized BGR tiles, separated by white gaps, to a PNG (atomically)."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            canvas[i * (height + gap):i * (height + gap) + height, j * (width + gap):j * (width + gap) + width] = tile
    atomic.write_bytes(path, encode_png(canvas))


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image with its saliency as a heat map and the result mask's outline (green), as BGR.

    The map is scaled by its 99th percentile (raw gradient maps have a few extreme pixels);
    zero saliency leaves the image untouched.
    """
    bgr = to_bgr(image)
    saliency = np.asarray(saliency, np.float32).reshape(bgr.shape[:2])
    top = float(np.percentile(saliency, 99)) if saliency.size else 0.0
    level = np.clip(saliency / top, 0, 1) if top > 0 else np.zeros_like(saliency)
    heat = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = (alpha * level)[:, :, None]
    bgr = (bgr * (1 - weight) + heat * weight).astype(np.uint8)
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8).reshape(bgr.shape[:2]), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(bgr, contours, -1, (0, 255, 0), max(1, round(bgr.shape[0] / 256)))
    return bgr


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an 8- or 16-bit array (gray or BGR)."""
    ok, buffer = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()
