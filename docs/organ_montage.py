"""A montage of breast masks (``tfsal.data.organ.breast_mask``) over a folder of mammograms.

Each tile is one image, shrunk, with the outline of its breast mask in red, the pectoral cut (the
part of the mask's outline that the muscle removal drew) in yellow, and the image's number in
green; the mask is computed at the image's own size, as the training pipelines and the explainers
do. Look at it to see where the mask fails (a pectoral muscle left in, a label or film edge taken in).

    python docs/organ_montage.py --root ../shared/realdata/mias-dev --out runs/organ_masks_mias.png

mini-MIAS (and INbreast, VinDr-Mammo) may not be redistributed, nor images made from them: the
montage goes under ``runs/`` (ignored by git) by default; do not commit it or copy it to
``docs/images/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from tfsal.data.image_io import read_image
from tfsal.data.organ import breast_mask
from tfsal.outputs.inputs import IMAGE_SUFFIXES

RED, YELLOW, GREEN = (1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 1.0, 0.0)


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` that touch a pixel outside it (8-neighbourhood)."""
    return mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0) > 0)


def shrink(mask: np.ndarray, side: int) -> np.ndarray:
    """A boolean mask resized to ``side`` x ``side``."""
    return cv2.resize(mask.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0


def tile(path: Path, number: int, side: int) -> np.ndarray:
    """One image at ``side`` x ``side`` (RGB uint8) with its mask's outline, its pectoral cut and its number."""
    image = read_image(path)[0][..., 0]
    mask = shrink(breast_mask(image), side)
    whole = shrink(breast_mask(image, remove_pectoral=False), side)
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    rgb = np.stack([small] * 3, axis=-1)
    edge = outline(mask)
    # the cut: the mask's outline where the muscle (in the whole mask, not in the mask) lies beside it
    muscle = cv2.dilate((whole & ~mask).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    rgb[edge] = RED
    rgb[edge & muscle] = YELLOW
    rgb = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    cv2.putText(rgb, str(number), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 0), 1)
    return rgb


def image_paths(root: Path) -> list[Path]:
    """The images directly under ``root``, sorted by name."""
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES - {""})


def montage(paths: list[Path], side: int, columns: int) -> np.ndarray:
    """The tiles of ``paths`` in rows of ``columns`` (RGB uint8), numbered from the file names' digits."""
    numbers = [int("".join(c for c in p.stem if c.isdigit()) or i + 1) for i, p in enumerate(paths)]
    tiles = [tile(path, number, side) for path, number in zip(paths, numbers, strict=True)]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def main() -> None:
    """Parse the arguments, draw the montage and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", "--images", dest="root", type=Path, required=True,
                        help="A folder of mammograms (e.g. ../shared/realdata/mias-dev).")
    parser.add_argument("--out", type=Path, default=Path("runs/organ_masks_mias.png"),
                        help="The montage PNG (default runs/organ_masks_mias.png; never commit one of licensed films).")
    parser.add_argument("--side", type=int, default=96, help="Tile side in pixels.")
    parser.add_argument("--columns", type=int, default=12)
    args = parser.parse_args()
    if not args.root.is_dir():
        sys.exit(f"{args.root}: not a folder")
    paths = image_paths(args.root)
    if not paths:
        sys.exit(f"{args.root}: no images")
    if "docs" in args.out.resolve().parts:
        print(f"warning: {args.out} is under docs/: a montage of licensed films must not be committed", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), montage(paths, args.side, args.columns)[..., ::-1])
    print(f"{args.out}: {len(paths)} images")


if __name__ == "__main__":
    main()
