"""Draw docs/images/synthetic_montage.png from a synthetic data set.

    tfsal data synth --out data/synth
    python docs/make_montage.py data/synth docs/images/synthetic_montage.png

Top row: images with masses, with their ground-truth contour in red on the copy below them;
bottom row: healthy images; each tile labelled, white gaps between them. 16-bit images are
shown as they are stored (no windowing).
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from tfsal.data.image_io import read_image
from tfsal.data.manifest import read_manifest
from tfsal.outputs.drawing import write_grid


def tile(record, contour: bool) -> np.ndarray:
    image, _ = read_image(record.image)
    bgr = cv2.cvtColor((image[..., 0] * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if contour and record.mask is not None:
        mask = cv2.imread(str(record.mask), cv2.IMREAD_GRAYSCALE) > 0
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(bgr, contours, -1, (40, 40, 255), 1)
    return bgr


def main(data: str, out: str, per_row: int = 6) -> None:
    records = read_manifest(data, split="test")
    masses = [r for r in records if r.label == 1][:per_row]
    healthy = [r for r in records if r.label == 0][:per_row]
    rows = [[tile(r, False) for r in masses], [tile(r, True) for r in masses], [tile(r, False) for r in healthy]]
    labels = [[f"mass: {r.image.name}" for r in masses], ["its mask outlined"] * len(masses),
              [f"healthy: {r.image.name}" for r in healthy]]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_grid(rows, out, labels=labels)


if __name__ == "__main__":
    main(*sys.argv[1:3])
