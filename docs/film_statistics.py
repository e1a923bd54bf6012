"""What the classifier sees of a set's breasts: their size on the canvas and their tones (``docs/data.md``).

Every image of a manifest (one split, optionally only the rows whose column has a value) goes through the
pipeline that feeds the classifier (:func:`tfsal.data.pipelines.classification_dataset`: padded and
resized to the working size); on that image, :func:`tfsal.data.organ.breast_mask` finds the breast and
the script prints the 10th, 50th and 90th percentiles over the images of

- the breast's height and width as shares of the canvas, and its area share;
- the mean of the breast's pixels, their spread (90th minus 10th percentile) and their 95th percentile.

No label, mask or lesion of the set is read: these are image statistics only, so they may be taken on
the training films of a real set to compare a generator with (``docs/data.md`` uses mias-dev's
training split).

    python docs/film_statistics.py data/mias --split train
    python docs/film_statistics.py data/mix --split train --where acquisition=film
"""

from __future__ import annotations

import argparse

import numpy as np

from tfsal.data.manifest import SPLITS, read_manifest
from tfsal.data.organ import breast_mask
from tfsal.data.pipelines import classification_dataset

NAMES = ("height", "width", "area", "mean", "spread", "p95")


def breast_statistics(image: np.ndarray) -> tuple[float, ...] | None:
    """The six statistics of one ``[H, W]`` working-size image in [0, 1]; None when no breast is found."""
    breast = breast_mask(image)
    if not breast.any():
        return None
    rows, cols = np.nonzero(breast)
    tissue = image[breast]
    low, high, top = np.percentile(tissue, [10, 90, 95])
    return ((np.ptp(rows) + 1) / image.shape[0], (np.ptp(cols) + 1) / image.shape[1], float(breast.mean()),
            float(tissue.mean()), float(high - low), float(top))


def set_statistics(data: str, split: str | None, where: str | None = None, limit: int = 150,
                   size=(256, 192)) -> np.ndarray:
    """``[N, 6]`` statistics of up to ``limit`` images of ``data`` (``where``: ``column=value``)."""
    records = read_manifest(data, split=split)
    if where:
        column, value = where.split("=", 1)
        records = [r for r in records if r.extra.get(column) == value]
    records = records[:limit]
    if not records:
        raise SystemExit(f"{data}: no image matches split={split} {where or ''}")
    found = []
    for images, _ in classification_dataset(records, size, 16, training=False, cache=False):
        found += [s for s in map(breast_statistics, images.numpy()[..., 0]) if s is not None]
    return np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="labels.csv or its folder")
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="train")
    parser.add_argument("--where", help="only rows whose column has this value, as column=value")
    parser.add_argument("--limit", type=int, default=150, help="at most this many images (the first ones)")
    args = parser.parse_args()
    table = set_statistics(args.data, None if args.split == "all" else args.split, args.where, args.limit)
    cells = ["/".join(f"{v:.2f}" for v in np.percentile(table[:, i], [10, 50, 90])) for i in range(len(NAMES))]
    print(f"| set | images | {' | '.join(NAMES)} |\n|---|---|{'---|' * len(NAMES)}")
    print(f"| {args.data} {args.where or ''} | {len(table)} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
