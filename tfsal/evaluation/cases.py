"""``cases.png`` of ``tfsal evaluate`` (the paper's Fig. 3, for every method of the tables),
drawn from the evaluation's own cache, so it shows exactly the regions the tables measured.

One row per classifier-positive mass image (the first ``count`` in the split's order): the image
with the ground-truth outline (orange), then each evaluated method: a mask method's own result
region over its map (absolute scale), a map method's map cut to ours' area on that image (the
area-matched protocol of the headline tables; its top 10 % where ours found nothing). Column
headers name the methods; under the image its score, under each tile its region's share of the
breast and the score after in-filling that region.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tfsal.evaluation.cache import cache_name, load_item, readable
from tfsal.evaluation.evaluate import is_map_method
from tfsal.evaluation.protocols import REFERENCE
from tfsal.explain.explanation import percentile_mask, top_share_mask
from tfsal.outputs.drawing import saliency_overlay, to_bgr, write_grid

__all__ = ["write_cases"]

TRUTH = (0, 160, 255)  # BGR orange


def _chosen(records, cache: Path, count: int) -> list[tuple[object, dict]]:
    """The first ``count`` (record, cached item) pairs whose image the classifier calls positive."""
    chosen = []
    for index, record in enumerate(records):
        path = cache / cache_name(index, record)
        if readable(path):
            item = load_item(path)
            if item["score_original"] >= 0.5:
                chosen.append((record, item))
        if len(chosen) == count:
            break
    return chosen


def _tile(image: np.ndarray, item: dict, method: str) -> tuple[np.ndarray, str]:
    """One method's tile and its label: the region's share of the breast and the score before ->
    after in-filling it (for a map method, the area-matched region's score the tables used)."""
    organ = item["organ"]
    saliency = item[f"map:{method}"].astype(np.float32)
    after = item.get(f"score:{method}")
    if is_map_method(method):
        ours = item.get(f"mask:{REFERENCE}")  # absent when ours was not evaluated
        share = 0.0 if ours is None else float(ours.sum()) / max(1, int(organ.sum()))
        mask = top_share_mask(saliency, organ, share) if share > 0 else percentile_mask(saliency, organ, 90)
        after = item.get(f"area:{method}") if share > 0 else None
        picture = saliency_overlay(image, saliency, mask)
    else:
        mask = item[f"mask:{method}"]
        picture = saliency_overlay(image, saliency, mask, absolute=True)
    text = f"A {100 * mask.sum() / max(1, organ.sum()):.1f}%" + ("" if after is None else f", p->{after:.2f}")
    return picture, text


def write_cases(records, cache: str | Path, size, path: str | Path, methods, count: int = 4) -> int:
    """Write ``path`` for the evaluation whose cache is ``cache`` (made from ``records``, in that
    order, at working ``size``); returns the number of rows drawn (0: none positive, nothing written)."""
    from tfsal.data.pipelines import load_split
    from tfsal.evaluation.report import label

    chosen = _chosen(records, Path(cache), count)
    if not chosen:
        return 0
    images = load_split([record for record, _ in chosen], tuple(size))["image"][..., 0]
    rows, labels = [], []
    for image, (_, item) in zip(images, chosen, strict=True):
        truth = to_bgr(image)
        contours, _ = cv2.findContours(item["truth"].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(truth, contours, -1, TRUTH, 1, cv2.LINE_AA)
        tiles = [_tile(image, item, method) for method in methods]
        rows.append([truth, *(tile for tile, _ in tiles)])
        labels.append([f"p {item['score_original']:.2f}", *(text for _, text in tiles)])
    headers = ["image, truth", *(label(method) for method in methods)]
    write_grid(rows, path, headers=headers, labels=labels)
    return len(rows)
