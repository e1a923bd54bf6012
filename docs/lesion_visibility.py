"""How visible each lesion kind of a synthetic set is when its place is known (``docs/data.md``).

For every lesion image of a manifest with a ``lesion`` column (``tfsal data synth`` writes one), two
statistics of the lesion's ground-truth mask ``M`` and the ring ``R`` around it (``M`` dilated by its
equivalent radius, less ``M``):

    contrast = mean(I over M) - mean(I over R)
    detail   = mean(|I - G_2 * I| over D) - mean(|I - G_2 * I| over R)

with ``G_2`` a Gaussian blur of 2 px and ``D`` the mask dilated by half its radius (a distortion's
lines reach about its edge). The same mask laid on a healthy image of the set (moved inside that
breast when it does not fit) gives the negatives; the ROC AUC of each statistic, per kind, says how
far the kind stands out from tissue with no search at all: a kind near 0.5 on both has hardly any image
behind its label, and no classifier can be asked to find it.

With ``--search`` the place is not given: the lesion's own mask (its shape and size known, an oracle's
knowledge) slides over the whole breast, of its image and of a healthy one, and each image scores the
largest value of each statistic over the places where the mask and its ring lie in the breast
(:func:`scan`). The ROC AUC of those peaks says how far the lesion stands out from the tissue's own
look-alikes, the question a classifier faces; next to it, the lesion at its place against the healthy
image's peak.

    tfsal data synth --out tune --world mixture --textures gaussian,fibrous,cloudy --seed 11 \\
        --n-mass 300 --n-healthy 150
    python docs/lesion_visibility.py tune
    python docs/lesion_visibility.py tune --search
    python docs/lesion_visibility.py tune --areas      # lesion and breast areas in pixels, no AUC
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import cv2
import numpy as np
from scipy import ndimage

from tfsal.data.image_io import read_image, read_mask
from tfsal.data.manifest import read_manifest
from tfsal.evaluation.metrics import roc_auc

WHITE = 0.999  # a pixel this bright is clipped white
IN_BREAST = 0.9  # share of a scanned place's mask and ring that must lie in the breast


def _regions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mask, the disc ``D`` of the detail statistic and the ring ``R`` around the mask."""
    radius = max(2, int(np.sqrt(mask.sum() / np.pi)))
    ring = ndimage.binary_dilation(mask, iterations=radius) & ~mask
    disc = ndimage.binary_dilation(mask, iterations=radius // 2 + 1)
    return mask, disc, ring


def _detail(image: np.ndarray) -> np.ndarray:
    return np.abs(image - cv2.GaussianBlur(image, (0, 0), 2.0))


def statistics(image: np.ndarray, mask: np.ndarray, detail: np.ndarray | None = None) -> tuple[float, float]:
    """``(contrast, detail)`` of ``image`` over ``mask`` against the ring around it (``detail``: the
    image's :func:`_detail` map, when the caller has it already)."""
    mask, disc, ring = _regions(mask)
    detail = _detail(image) if detail is None else detail
    return (float(image[mask].mean() - image[ring].mean()),
            float(detail[disc].mean() - detail[ring].mean()))


def _means(values: np.ndarray, region: np.ndarray, centre, border: int) -> np.ndarray:
    """Mean of ``values`` over ``region`` moved so that ``centre`` lands on each pixel (``border``: padding)."""
    rows, cols = np.nonzero(region)
    top, left = max(0, rows.min() - 1), max(0, cols.min() - 1)
    kernel = region[top:rows.max() + 2, left:cols.max() + 2].astype(np.float32)
    anchor = (int(centre[1]) - left, int(centre[0]) - top)
    anchor = (min(max(anchor[0], 0), kernel.shape[1] - 1), min(max(anchor[1], 0), kernel.shape[0] - 1))
    return cv2.filter2D(values.astype(np.float32), -1, kernel / kernel.sum(), anchor=anchor, borderType=border)


def scan(image: np.ndarray, mask: np.ndarray, organ: np.ndarray,
         detail: np.ndarray | None = None) -> tuple[float, float]:
    """The largest ``(contrast, detail)`` of :func:`statistics` over every place of ``mask`` in ``image``
    where the mask and its ring lie at least :data:`IN_BREAST` in ``organ`` (NaN where no place does).

    Each statistic is a difference of means over fixed regions, so every place is one correlation of the
    image with each region (``cv2.filter2D``) and the peak is a maximum over the map.
    """
    mask, disc, ring = _regions(mask)
    centre = np.argwhere(mask).mean(0).round().astype(int)
    reflect, zero = cv2.BORDER_REFLECT, cv2.BORDER_CONSTANT
    inside = (_means(organ, mask | ring, centre, zero) >= IN_BREAST)
    if not inside.any():
        return float("nan"), float("nan")
    detail = _detail(image) if detail is None else detail
    contrast = _means(image, mask, centre, reflect) - _means(image, ring, centre, reflect)
    fine = _means(detail, disc, centre, reflect) - _means(detail, ring, centre, reflect)
    return float(contrast[inside].max()), float(fine[inside].max())


def _laid_on(mask: np.ndarray, organ: np.ndarray, rng) -> np.ndarray:
    """``mask`` as it is when 80 % of it lies in ``organ``, else moved to a random place inside it."""
    if (mask & organ).sum() >= 0.8 * mask.sum():
        return mask
    inside = np.argwhere(ndimage.binary_erosion(organ, iterations=5))
    if inside.size == 0:
        return mask
    rows, cols = np.nonzero(mask)
    to_row, to_col = inside[int(rng.integers(len(inside)))]
    return ndimage.shift(mask.astype(np.float32), (to_row - rows.mean(), to_col - cols.mean()), order=0) > 0.5


def visibility(data: str, seed: int = 0) -> dict[str, dict]:
    """Per lesion kind: ``{"n", "contrast", "detail"}`` (the two ROC AUCs) over every split of ``data``."""
    records = read_manifest(data)
    healthy = [r for r in records if r.label == 0 and r.organ is not None]
    if not healthy:
        raise SystemExit(f"{data}: no healthy image with an organ mask to lay the masks on")
    rng = np.random.default_rng(seed)
    lesions, controls = defaultdict(list), defaultdict(list)
    for record in records:
        if record.label != 1 or record.mask is None:
            continue
        mask = read_mask(record.mask)
        if not mask.any():
            continue
        kind = record.extra.get("lesion") or "lesion"
        lesions[kind].append(statistics(read_image(record.image)[0][..., 0], mask))
        other = healthy[int(rng.integers(len(healthy)))]
        laid = _laid_on(mask, read_mask(other.organ), rng)
        if laid.any():
            controls[kind].append(statistics(read_image(other.image)[0][..., 0], laid))
    table = {}
    for kind in sorted(lesions):
        pos, neg = np.array(lesions[kind]), np.array(controls[kind])
        labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        table[kind] = {"n": len(pos), **{name: roc_auc(labels, np.r_[pos[:, i], neg[:, i]])
                                         for i, name in enumerate(("contrast", "detail"))}}
    return table


def _aucs(pos: list, neg: list) -> dict[str, float]:
    pos, neg = np.array(pos, float).reshape(-1, 2), np.array(neg, float).reshape(-1, 2)
    out = {}
    for i, name in enumerate(("contrast", "detail")):
        p, n = pos[:, i][np.isfinite(pos[:, i])], neg[:, i][np.isfinite(neg[:, i])]
        out[name] = roc_auc(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n])
    return out


def search_visibility(data: str, seed: int = 0) -> dict[str, dict]:
    """Per lesion kind, the place unknown (:func:`scan`): ``{"n", "scan": {...}, "placed": {...}}``, the
    ROC AUCs of each statistic's peak over the lesion image (``scan``) or of its value at the lesion
    (``placed``) against its peak over a healthy image, the lesion's mask slid over both."""
    records = read_manifest(data)
    healthy = [r for r in records if r.label == 0 and r.organ is not None]
    if not healthy:
        raise SystemExit(f"{data}: no healthy image with an organ mask to slide the masks over")
    rng = np.random.default_rng(seed)
    found, placed, controls = defaultdict(list), defaultdict(list), defaultdict(list)
    for record in records:
        if record.label != 1 or record.mask is None or record.organ is None:
            continue
        mask = read_mask(record.mask)
        if not mask.any():
            continue
        kind = record.extra.get("lesion") or "lesion"
        image = read_image(record.image)[0][..., 0]
        detail = _detail(image)
        found[kind].append(scan(image, mask, read_mask(record.organ), detail))
        placed[kind].append(statistics(image, mask, detail))
        other = healthy[int(rng.integers(len(healthy)))]
        controls[kind].append(scan(read_image(other.image)[0][..., 0], mask, read_mask(other.organ)))
    return {kind: {"n": len(found[kind]), "scan": _aucs(found[kind], controls[kind]),
                   "placed": _aucs(placed[kind], controls[kind])} for kind in sorted(found)}


def areas(data: str) -> dict[str, np.ndarray]:
    """Quartiles (25, 50, 75 %) of the lesion masks' pixels, of their breasts' and of the lesion's share of
    the breast, over the lesion images of ``data`` with a mask and an organ mask; and ``whitened``: the share
    of those lesions with more than a tenth of their pixels at white (>= :data:`WHITE`), and their count."""
    lesion, breast, white = [], [], []
    for record in read_manifest(data):
        if record.label == 1 and record.mask is not None and record.organ is not None:
            mask = read_mask(record.mask)
            lesion.append(mask.sum())
            breast.append(read_mask(record.organ).sum())
            if mask.any():
                white.append(float((read_image(record.image)[0][..., 0][mask] >= WHITE).mean()))
    lesion, breast = np.array(lesion, float), np.array(breast, float)
    table = {name: np.percentile(values, [25, 50, 75]) for name, values in
             (("lesion", lesion), ("breast", breast), ("share", lesion / np.maximum(breast, 1)))}
    table["whitened"] = np.array([np.mean(np.array(white) > 0.1), len(white)])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="labels.csv or its folder (with lesion and organ columns)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the healthy images the masks are laid on")
    parser.add_argument("--search", action="store_true",
                        help="the place unknown: each statistic's peak over the breast (see scan)")
    parser.add_argument("--areas", action="store_true", help="lesion and breast areas (pixels), no AUC")
    args = parser.parse_args()
    if args.areas:
        table = areas(args.data)
        share, count = table.pop("whitened")
        for name, (low, mid, high) in table.items():
            print(f"{name}: median {mid:.4g} (quartiles {low:.4g}-{high:.4g})")
        print(f"lesions with more than a tenth of their pixels white: {round(share * count)} of {int(count)}")
        return
    if args.search:
        print("| kind | lesions | contrast, peaks | detail, peaks | contrast, lesion v. peak "
              "| detail, lesion v. peak |\n|---|---|---|---|---|---|")
        for kind, row in search_visibility(args.data, args.seed).items():
            print(f"| {kind} | {row['n']} | {row['scan']['contrast']:.3f} | {row['scan']['detail']:.3f} | "
                  f"{row['placed']['contrast']:.3f} | {row['placed']['detail']:.3f} |")
        return
    print("| kind | lesions | contrast AUC | detail AUC |\n|---|---|---|---|")
    for kind, row in visibility(args.data, args.seed).items():
        print(f"| {kind} | {row['n']} | {row['contrast']:.3f} | {row['detail']:.3f} |")


if __name__ == "__main__":
    main()
