"""The organ (breast) mask of a mammogram, computed from the image alone.

Steps, in order: smooth; threshold just above the air background (read in the darkest
tenth of the image, so the thin, dark periphery stays in); keep the largest connected
component and fill its holes; then remove the pectoral muscle where one is found: a bright
region in the upper chest-wall corner that touches both the top edge and the chest wall and
is well described by a triangle (MLO views). Masses never lie in the muscle, and the
explainer keeps everything outside this mask.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def breast_mask(image: np.ndarray, remove_pectoral: bool = True) -> np.ndarray:
    """Boolean [H, W] mask of the breast in a mammogram.

    Args:
        image: float [H, W] or [H, W, 1] with bright = dense (MONOCHROME2 sense), any range.
        remove_pectoral: remove the pectoral muscle when one is detected.

    Returns:
        bool [H, W]; all False for an image without a foreground (e.g. constant).

    Raises:
        ValueError: the image is not 2-D (or 3-D with one channel).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"breast_mask expects an [H, W] or [H, W, 1] image; received shape {image.shape}")
    lo, hi = float(np.min(image)), float(np.max(image))
    if not np.isfinite(lo + hi) or hi - lo <= 0:
        return np.zeros(image.shape, bool)
    height = image.shape[0]
    smooth = cv2.GaussianBlur((image - lo) / (hi - lo), (0, 0), max(1.0, 0.005 * height))
    foreground = _largest_component(smooth > _foreground_threshold(smooth))
    foreground = ndimage.binary_fill_holes(foreground)
    if remove_pectoral and foreground.any():
        # a scanned film pads the breast with black on both sides: look for the muscle in the
        # breast's own columns, so that its chest wall is an edge of what is searched
        first, last = _breast_columns(foreground)
        muscle = np.zeros_like(foreground)
        muscle[:, first:last] = _muscle_at_working_size(smooth[:, first:last], foreground[:, first:last])
        foreground &= ~muscle
    return foreground


def _breast_columns(breast: np.ndarray) -> tuple[int, int]:
    """``(first, last)``: the breast's columns, the chest-wall side starting at its first column
    nearly as tall as the tallest there (the smoothing's blur beyond the chest wall left out)."""
    counts = breast.sum(axis=0)
    columns = np.flatnonzero(counts)
    first, last = int(columns[0]), int(columns[-1]) + 1
    window = max(3, breast.shape[1] // 20)
    left, right = counts[first:first + window], counts[max(first, last - window):last][::-1]
    if left.max() >= right.max():
        first += int(np.argmax(left >= 0.9 * left.max()))
    else:
        last -= int(np.argmax(right >= 0.9 * right.max()))
    return first, last


MUSCLE_ROWS = 256
"""The pectoral muscle is looked for at most this many rows high (its edge is a smooth line, and the
search's scales are then the same on a 4096-row detector image as on a 256-row one)."""


def _muscle_at_working_size(smooth: np.ndarray, breast: np.ndarray) -> np.ndarray:
    """:func:`pectoral_muscle` on a copy at most :data:`MUSCLE_ROWS` rows high, brought back to size."""
    height, width = breast.shape
    if height <= MUSCLE_ROWS:
        return pectoral_muscle(smooth, breast)
    size = (max(2, round(width * MUSCLE_ROWS / height)), MUSCLE_ROWS)  # cv2: (width, height)
    small = cv2.resize(smooth, size, interpolation=cv2.INTER_AREA)
    small_breast = cv2.resize(breast.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    muscle = pectoral_muscle(small, small_breast)
    if not muscle.any():
        return np.zeros_like(breast)
    return (cv2.resize(muscle.astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR) > 0) & breast


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]."""
    as_bytes = np.clip(values * 255 + 0.5, 0, 255).astype(np.uint8).reshape(-1, 1)
    threshold, _ = cv2.threshold(as_bytes, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(threshold) / 255


def _foreground_threshold(smooth: np.ndarray) -> float:
    """A level just above the air background.

    The compressed breast thins out towards the skin, so its rim is far darker than its
    centre, and a bright pectoral muscle can pull Otsu's threshold into the tissue. The air
    is the darkest tenth of a mammogram, so its level and noise are read there and the
    threshold is set a few noise widths (at least 6 % of the range) above it.
    """
    background = float(np.percentile(smooth, 5))
    darkest = smooth[smooth <= np.percentile(smooth, 10)]
    spread = 1.4826 * float(np.median(np.abs(darkest - background)))
    top = float(np.percentile(smooth, 99))
    return background + max(8 * spread, 0.06 * (top - background))


def _largest_component(binary: np.ndarray) -> np.ndarray:
    size = max(1, round(0.004 * binary.shape[0]))
    opened = ndimage.binary_opening(binary, structure=np.ones((2 * size + 1,) * 2, bool))
    labels, count = ndimage.label(opened)
    if count == 0:
        return np.zeros_like(binary)
    sizes = ndimage.sum_labels(opened, labels, index=np.arange(1, count + 1))
    return labels == (1 + int(np.argmax(sizes)))


def chest_wall_on_left(breast: np.ndarray) -> bool:
    """True when the breast touches the left image edge more than the right one."""
    return int(breast[:, 0].sum()) >= int(breast[:, -1].sum())


def pectoral_muscle(smooth: np.ndarray, breast: np.ndarray) -> np.ndarray:
    """Boolean mask of the pectoral muscle, or all False when none is found.

    On MLO views the muscle is a bright, roughly triangular region in the upper chest-wall
    corner whose edge is close to a straight line. In each upper row the steepest drop in
    brightness between the chest wall and the middle of the image is an edge candidate; a
    line through the most candidates (every pair tried, then a least-squares refit on the
    inliers) bounds the muscle. The muscle is accepted only when the corner is brighter than
    the breast, the line slopes like a muscle edge, and most rows it crosses support it.
    """
    flip = not chest_wall_on_left(breast)
    if flip:
        smooth, breast = smooth[:, ::-1], breast[:, ::-1]
    height, width = breast.shape
    none = np.zeros_like(breast)
    if not breast[0, : max(2, width // 20)].all():  # an MLO breast is cut by the top edge
        return none
    values = cv2.GaussianBlur(smooth, (0, 0), max(1.0, 0.006 * height))
    patch = values[: max(2, height // 30), : max(2, width // 30)]
    # the tissue beside the muscle: the upper third of the breast, away from the chest wall
    # (a dense breast's bright centre would hide a muscle brighter than the fat around it)
    upper = breast[: height // 3].copy()
    upper[:, : width // 2] = False
    reference = values[: height // 3][upper] if upper.any() else values[breast]
    corner, tissue = float(np.median(patch)), float(np.median(reference))
    if corner - tissue < 0.1:
        return none
    rows = np.arange(int(0.9 * height))
    span = values[rows, : int(0.7 * width)]
    drop = span[:, :-1] - span[:, 1:]
    # The skin edge is a stronger drop than the muscle's: look only well inside the breast.
    inside = ndimage.binary_erosion(breast, iterations=max(2, round(0.03 * height)), border_value=1)
    drop = np.where(inside[rows, : drop.shape[1]] & inside[rows, 1 : drop.shape[1] + 1], drop, 0)
    edges = np.argmax(drop, axis=1) + 0.5
    strong = drop[np.arange(len(rows)), np.argmax(drop, axis=1)] > 0.05 * (corner - tissue)
    line = _fit_line(rows[strong].astype(float), edges[strong], tolerance=max(1.5, 0.01 * height))
    if line is None:
        return none
    slope, intercept, inliers = line
    if slope >= 0 or not 0.05 * width <= intercept <= 0.7 * width:
        return none
    side = -intercept / slope
    if not 0.1 * height <= side <= 0.95 * height or inliers < max(0.2 * side, 0.05 * height):
        return none
    y, x = np.mgrid[0:height, 0:width]
    muscle = (x < intercept + slope * y) & breast
    if muscle.sum() > 0.4 * breast.sum():
        return none
    return muscle[:, ::-1] if flip else muscle


def _fit_line(y: np.ndarray, x: np.ndarray, tolerance: float):
    """Robust fit of x = intercept + slope * y: the pair of points whose line has most
    inliers, refitted by least squares on them. Returns (slope, intercept, n_inliers)."""
    if y.size < 5:
        return None
    step = max(1, y.size // 40)  # at most ~40 points, ~800 pairs
    ys, xs = y[::step], x[::step]
    i, j = np.triu_indices(ys.size, k=1)
    valid = ys[j] != ys[i]
    i, j = i[valid], j[valid]
    slopes = (xs[j] - xs[i]) / (ys[j] - ys[i])
    intercepts = xs[i] - slopes * ys[i]
    counts = (np.abs(x[None, :] - (intercepts[:, None] + slopes[:, None] * y[None, :])) <= tolerance).sum(1)
    best = int(np.argmax(counts))
    inliers = np.abs(x - (intercepts[best] + slopes[best] * y)) <= tolerance
    slope, intercept = np.polyfit(y[inliers], x[inliers], 1)
    return float(slope), float(intercept), int(inliers.sum())
