"""The organ (breast) mask of a mammogram, computed from the image alone.

Steps, in order: leave out the constant padding around a scanned film (:func:`film_area`); smooth;
threshold just above the film's air (read in the darkest tenth of the film, so the thin, dark
periphery stays in); leave out burned-in labels (:func:`burned_in_labels`) and thin strips along the
film's edges; cut thin bridges with an opening, keep the largest region and fill its holes; then
remove the pectoral muscle where one is found: a bright region in the upper chest-wall corner that
touches both the top edge and the chest wall and is well described by a triangle (MLO views). Masses
never lie in the muscle, and the explainer keeps everything outside this mask.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from tfsal.evaluation.metrics import largest_component


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
    mask = _breast_on(image, *film_area(image), remove_pectoral)
    if not mask.any():  # nothing at the air's level on what looked like the film: it was the air
        mask = _breast_on(image, slice(None), slice(None), remove_pectoral)
    return mask


def _breast_on(image: np.ndarray, rows: slice, columns: slice, remove_pectoral: bool) -> np.ndarray:
    """:func:`breast_mask` looking only at ``image[rows, columns]`` (the film), at the image's size."""
    lo, hi = float(np.min(image)), float(np.max(image))
    raw = (image[rows, columns] - lo) / (hi - lo)
    smooth = np.zeros(image.shape, np.float32)  # the padding stays at the minimum, unblurred
    smooth[rows, columns] = cv2.GaussianBlur(raw, (0, 0), max(1.0, 0.005 * image.shape[0]))
    film = smooth[rows, columns]
    air = film <= _foreground_threshold(film)
    foreground = np.zeros(image.shape, bool)
    foreground[rows, columns] = ndimage.binary_fill_holes(_breast_component(~air & ~burned_in_labels(raw, air)))
    if remove_pectoral and foreground.any():
        # a scanned film pads the breast with black on both sides: look for the muscle in the
        # breast's own columns, so that its chest wall is an edge of what is searched
        first, last = _breast_columns(foreground)
        muscle = np.zeros_like(foreground)
        muscle[:, first:last] = _muscle_at_working_size(smooth[:, first:last], foreground[:, first:last])
        foreground &= ~muscle
    return foreground


PADDING_SHARE = 0.98
"""A row or column at an image edge is padding (not film) when at least this share of it is at the
image's minimum."""


def film_area(image: np.ndarray) -> tuple[slice, slice]:
    """``(rows, columns)``: the image without the constant bands at its edges that a scanner, or fitting
    a film into a square, pads it with (mini-MIAS films sit between black bands a few hundred
    columns wide). The air is then read on the film: it is often a little brighter than the padding.
    The whole image when that would leave fewer than a tenth of its rows or columns."""
    at_minimum = image <= np.min(image)

    def kept(shares: np.ndarray) -> slice:
        film = np.flatnonzero(shares < PADDING_SHARE)
        if film.size == 0 or film[-1] + 1 - film[0] < max(2, 0.1 * shares.size):
            return slice(0, shares.size)
        return slice(int(film[0]), int(film[-1]) + 1)

    return kept(at_minimum.mean(axis=1)), kept(at_minimum.mean(axis=0))


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


LABEL_LEVEL, LABEL_FILL, LABEL_AIR = 0.8, 0.8, 0.2
"""A burned-in label is brighter than this share of the film's range, fills at least this share of
its bounding box (letters filled in), and at least this share of the ring around it is air."""


def burned_in_labels(film: np.ndarray, air: np.ndarray) -> np.ndarray:
    """Boolean mask of the burned-in labels on a film (values in [0, 1]) and a margin around them.

    A label is a bright, nearly rectangular mark, 2-25 % of the height on each side, lying at least
    partly on the air (:data:`LABEL_LEVEL`, :data:`LABEL_FILL`, :data:`LABEL_AIR`): a mass is as bright
    but round, and tissue surrounds it. The margin (2.5 % of the height) takes the scanner's smear
    around the label too, so that what is left of it no longer joins the label to the breast.
    """
    height = film.shape[0]
    bright = ndimage.binary_fill_holes(cv2.GaussianBlur(film, (0, 0), 1.0) > LABEL_LEVEL * float(film.max()))
    regions, _ = ndimage.label(bright)
    found = np.zeros(film.shape, bool)
    gap, ring = max(2, round(0.02 * height)), max(2, round(0.03 * height))  # the ring: beyond the blur
    for index, box in enumerate(ndimage.find_objects(regions), 1):
        blob = regions[box] == index
        if not all(0.02 * height <= side <= 0.25 * height for side in blob.shape) or blob.mean() < LABEL_FILL:
            continue
        around = tuple(slice(max(0, part.start - ring), part.stop + ring) for part in box)
        near = (regions[around] == index).astype(np.uint8)
        outside = (cv2.dilate(near, np.ones((2 * ring + 1,) * 2, np.uint8)) > 0) & ~(
            cv2.dilate(near, np.ones((2 * gap + 1,) * 2, np.uint8)) > 0)
        if outside.any() and air[around][outside].mean() >= LABEL_AIR:
            found[box] |= blob
    if not found.any():
        return found
    margin = max(1, round(0.025 * height))
    return cv2.dilate(found.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)) > 0


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


def _breast_component(binary: np.ndarray) -> np.ndarray:
    """The breast among the thresholded regions, without the film's edges and what thin bridges join to it.

    Thin strips along the image edges (a bright film edge) go first (:func:`_without_edge_strips`);
    an opening with a disk of radius 1.2 % of the height then cuts thin bridges (the stroke of a
    letter, a gap between the breast and a label) and drops what is thinner; the largest region left
    is the breast, and the thresholded pixels within a few pixels of it are put back, so that the
    skin line keeps its detail.
    """
    height = binary.shape[0]
    radius = max(1, round(0.012 * height))
    binary = _without_edge_strips(binary, max(2, round(0.06 * height)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    opened = cv2.morphologyEx(binary.astype(np.uint8), cv2.MORPH_OPEN, disk, borderType=cv2.BORDER_REPLICATE)
    breast = largest_component(opened > 0).astype(np.uint8)
    near = max(1, round(0.004 * height))
    grown = cv2.dilate(breast, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * near + 1,) * 2))
    return largest_component(binary & (grown > 0))


def _without_edge_strips(binary: np.ndarray, thickness: int) -> np.ndarray:
    """``binary`` without the strips, thinner than ``thickness``, that run along its four edges.

    From each edge, in each line across it, the run of True pixels that starts at the edge is
    removed when it is shorter than ``thickness``: a film's bright edge or a scanner's line, not the
    breast, which reaches far into the image wherever it touches an edge.
    """
    binary = binary.copy()
    for view in (binary, binary[::-1], binary.T, binary.T[::-1]):  # views: top, bottom, left, right
        runs = np.where(view.all(axis=0), view.shape[0], np.argmin(view, axis=0))
        short = np.flatnonzero((runs > 0) & (runs < thickness))
        for line in short:
            view[: runs[line], line] = False
    return binary


def chest_wall_on_left(breast: np.ndarray) -> bool:
    """True when the breast touches the left image edge more than the right one."""
    return int(breast[:, 0].sum()) >= int(breast[:, -1].sum())


EDGE_STRENGTHS = (0.05, 0.02)
"""The weakest brightness drop, as a share of the corner's contrast with the breast, that makes an edge
candidate: the stricter first (a digital detector's sharp muscle edge among the tissue's own edges),
the looser when that finds no muscle (a scanned film's blurred edge)."""


def pectoral_muscle(smooth: np.ndarray, breast: np.ndarray) -> np.ndarray:
    """Boolean mask of the pectoral muscle, or all False when none is found.

    On MLO views the muscle is a bright, roughly triangular region in the upper chest-wall
    corner whose edge is close to a straight line. In each upper row the steepest drop in
    brightness between the chest wall and the middle of the image is an edge candidate when it
    is strong enough (:data:`EDGE_STRENGTHS`); a line through the most candidates (every pair
    tried, then a least-squares refit on the inliers) bounds the muscle. The muscle is accepted
    only when the corner is brighter than the breast, the line slopes like a muscle edge, and
    most rows it crosses support it.
    """
    flip = not chest_wall_on_left(breast)
    if flip:
        smooth, breast = smooth[:, ::-1], breast[:, ::-1]
    height, width = breast.shape
    muscle = np.zeros_like(breast)
    if not breast[0, : max(2, width // 20)].all():  # an MLO breast is cut by the top edge
        return muscle
    values = cv2.GaussianBlur(smooth, (0, 0), max(1.0, 0.006 * height))
    patch = values[: max(2, height // 30), : max(2, width // 30)]
    # the tissue beside the muscle: the upper third of the breast, away from the chest wall
    # (a dense breast's bright centre would hide a muscle brighter than the fat around it)
    upper = breast[: height // 3].copy()
    upper[:, : width // 2] = False
    reference = values[: height // 3][upper] if upper.any() else values[breast]
    contrast = float(np.median(patch)) - float(np.median(reference))
    if contrast < 0.1:
        return muscle
    rows = np.arange(int(0.9 * height))
    span = values[rows, : int(0.7 * width)]
    drop = span[:, :-1] - span[:, 1:]
    # The skin edge is a stronger drop than the muscle's: look only well inside the breast.
    inside = ndimage.binary_erosion(breast, iterations=max(2, round(0.03 * height)), border_value=1)
    drop = np.where(inside[rows, : drop.shape[1]] & inside[rows, 1 : drop.shape[1] + 1], drop, 0)
    edges = np.argmax(drop, axis=1) + 0.5
    strength = drop[np.arange(len(rows)), np.argmax(drop, axis=1)]
    for share in EDGE_STRENGTHS:
        strong = strength > share * contrast
        muscle = _muscle_of_line(_fit_line(rows[strong].astype(float), edges[strong],
                                           tolerance=max(1.5, 0.01 * height)), breast)
        if muscle.any():
            break
    return muscle[:, ::-1] if flip else muscle


def _muscle_of_line(line, breast: np.ndarray) -> np.ndarray:
    """The breast left of a fitted muscle edge ``(slope, intercept, inliers)`` (chest wall on the left),
    or all False when the line is missing or does not look like a muscle edge: it must slope down
    towards the chest wall, cross the top and the chest wall inside the image, be supported by enough
    rows, and leave most of the breast."""
    height, width = breast.shape
    none = np.zeros_like(breast)
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
    return none if muscle.sum() > 0.4 * breast.sum() else muscle


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
