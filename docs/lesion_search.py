"""How far a hand-made search finds a set's lesions with their place unknown (``saved_models/README.md``).

``docs/lesion_visibility.py`` asks how a lesion stands out where it is known to be; a classifier has
to find it. This script scores every image of a split by the most lesion-like place in its breast,
with no learning:

    r_s(x)  = (G_s * I)(x) - (G_2s * I)(x)              a bright blob of radius about s, against its ring
    score_s = max over the breast of r_s / std over the breast of r_s      (a contrast-to-noise peak)
    score   = max over s in {2, 4, 8} px of score_s

``I`` is the image at the classifier's working size (:func:`tfsal.data.pipelines.classification_dataset`)
and the breast is :func:`tfsal.data.organ.breast_mask`, eroded by 4 px so its edge is no blob. The
ROC AUC of each ``score_s`` and of ``score`` over the split's lesion and healthy images says what a
classifier has to beat; no label chose anything (the three scales and the rule are fixed above).

    python docs/lesion_search.py data/mix3 --split test
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from scipy import ndimage

from tfsal.data.manifest import read_manifest
from tfsal.data.organ import breast_mask
from tfsal.data.pipelines import classification_dataset
from tfsal.evaluation.metrics import roc_auc
from tfsal.evaluation.statistics import auc_interval

SCALES = (2.0, 4.0, 8.0)


def search_scores(image: np.ndarray) -> np.ndarray:
    """``score_s`` for each of :data:`SCALES` on one ``[H, W]`` image in [0, 1] (NaN with no breast)."""
    breast = ndimage.binary_erosion(breast_mask(image), iterations=4)
    if breast.sum() < 16:
        return np.full(len(SCALES), np.nan)
    # each blur once: G_2s of one scale is G_s of the next
    blurred = {s: cv2.GaussianBlur(image, (0, 0), s) for s in sorted({*SCALES, *(2 * s for s in SCALES)})}
    scores = []
    for s in SCALES:
        inside = (blurred[s] - blurred[2 * s])[breast]
        scores.append(float(inside.max() / max(inside.std(), 1e-8)))
    return np.array(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="labels.csv or its folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", default="256x192", help="working size HxW (the classifier's)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    records = read_manifest(args.data, split=None if args.split == "all" else args.split)
    labels = np.array([r.label for r in records])
    rows = []
    for images, _ in classification_dataset(records, size, 16, training=False, cache=False):
        rows += [search_scores(image) for image in images.numpy()[..., 0]]
    scores = np.array(rows)
    scores = np.c_[scores, scores.max(1)]
    known = np.isfinite(scores).all(1)
    print(f"{args.data} {args.split}: {int(labels[known].sum())} lesion + {int((1 - labels[known]).sum())} healthy "
          f"images ({int((~known).sum())} without a breast left out)")
    print("| score | ROC AUC (95 % interval) |\n|---|---|")
    for i, name in enumerate([f"s = {s:g} px" for s in SCALES] + ["max over s"]):
        low, high = auc_interval(labels[known], scores[known, i])
        print(f"| {name} | {roc_auc(labels[known], scores[known, i]):.3f} ({low:.3f}-{high:.3f}) |")


if __name__ == "__main__":
    main()
