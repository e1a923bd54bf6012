"""Pictures drawn with OpenCV (no matplotlib): image grids for documentation and reports."""

from __future__ import annotations

import os

import cv2
import numpy as np

from tfsal import atomic


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
    ok, buffer = cv2.imencode(".png", canvas)
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    atomic.write_bytes(path, buffer.tobytes())
