"""A montage of breast masks (``tfsal.data.organ.breast_mask``) over a folder of mammograms.

Each tile is one image, shrunk, with its breast mask's outline in red and its number in green;
the mask is computed at the image's own size, as the training pipelines and the explainers do.
Look at it to see where the mask fails (a pectoral muscle left in, a label or film edge taken in).

    python docs/organ_montage.py --images ../shared/realdata/mias-dev --out /tmp/organ_montage.png

Licensed data (mini-MIAS, INbreast, VinDr-Mammo) may not be redistributed: write the montage
outside the repository and do not commit it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from tfsal.data.image_io import read_image
from tfsal.data.organ import breast_mask
from tfsal.outputs.inputs import IMAGE_SUFFIXES


def tile(path: Path, number: int, side: int) -> np.ndarray:
    """One image at ``side`` x ``side`` (RGB uint8) with its mask's outline and its number."""
    image = read_image(path)[0][..., 0]
    mask = breast_mask(image)
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
    rgb = np.stack([small] * 3, axis=-1)
    rgb[small_mask ^ (cv2.erode(small_mask.astype(np.uint8), np.ones((3, 3))) > 0)] = (1.0, 0.0, 0.0)
    rgb = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    cv2.putText(rgb, str(number), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 0), 1)
    return rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="A folder of mammograms.")
    parser.add_argument("--out", type=Path, required=True, help="The montage PNG.")
    parser.add_argument("--side", type=int, default=128, help="Tile side in pixels.")
    parser.add_argument("--columns", type=int, default=12)
    args = parser.parse_args()
    paths = sorted(p for p in args.images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES - {""})
    tiles = [tile(path, i + 1, args.side) for i, path in enumerate(paths)]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % args.columns)
    rows = [np.concatenate(tiles[i:i + args.columns], axis=1) for i in range(0, len(tiles), args.columns)]
    cv2.imwrite(str(args.out), np.concatenate(rows, axis=0)[..., ::-1])
    print(f"{args.out}: {len(paths)} images")


if __name__ == "__main__":
    main()
