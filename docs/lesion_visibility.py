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

    tfsal data synth --out tune --world mixture --textures gaussian,fibrous,cloudy --seed 11 \\
        --n-mass 300 --n-healthy 150
    python docs/lesion_visibility.py tune
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


def statistics(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """``(contrast, detail)`` of ``image`` over ``mask`` against the ring around it."""
    radius = max(2, int(np.sqrt(mask.sum() / np.pi)))
    ring = ndimage.binary_dilation(mask, iterations=radius) & ~mask
    disc = ndimage.binary_dilation(mask, iterations=radius // 2 + 1)
    detail = np.abs(image - cv2.GaussianBlur(image, (0, 0), 2.0))
    return (float(image[mask].mean() - image[ring].mean()),
            float(detail[disc].mean() - detail[ring].mean()))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="labels.csv or its folder (with lesion and organ columns)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the healthy images the masks are laid on")
    args = parser.parse_args()
    print("| kind | lesions | contrast AUC | detail AUC |\n|---|---|---|---|")
    for kind, row in visibility(args.data, args.seed).items():
        print(f"| {kind} | {row['n']} | {row['contrast']:.3f} | {row['detail']:.3f} |")


if __name__ == "__main__":
    main()
