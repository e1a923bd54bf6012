"""The optimiser as the mask network's teacher (``tfsal train explainer``'s distillation phase).

For each image the classifier calls positive (p(target) >= 0.5) the counterfactual explainer
with its defaults (:class:`tfsal.explain.counterfactual.CounterfactualExplainer`) finds its
region, grown until the decision flips; an image called negative has nothing to explain and gets
the empty region, as the optimiser's hinge gives it on almost every such image (without spending
100 steps on it). The target of each mask cell is the share of its organ pixels the region keeps.

The optimiser runs for minutes to hours on a training split, so its results are written in chunks
(``teacher-<split>-NNNN.npz`` in the checkpoint folder, each atomically) and a resumed run
computes only the chunks that are missing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfsal.evaluation.metrics import DECISION_THRESHOLD
from tfsal.util import atomic

__all__ = ["CHUNK", "keep_targets"]

log = logging.getLogger(__name__)

CHUNK = 64
"""Images per teacher file: what an interrupted run loses at most."""


def _regions(explainer, images: np.ndarray, organ: np.ndarray, scores: np.ndarray, target: int) -> np.ndarray:
    """bool ``[N, H, W]``: the optimiser's grown result masks of the positives, empty elsewhere."""
    regions = np.zeros(images.shape[:3], bool)
    positive = np.flatnonzero(scores >= DECISION_THRESHOLD)
    if positive.size:
        explanations = explainer.explain(images[positive], targets=target, organ_masks=organ[positive, ..., 0] > 0.5)
        regions[positive] = np.stack([e.mask for e in explanations])
    return regions


def keep_targets(explainer, prepared: dict, cell: int, target: int, folder: Path, split: str,
                 progress: bool = False) -> np.ndarray:
    """float32 ``[N, ceil(H / cell), ceil(W / cell), 1]``: the share of each cell's organ pixels that
    the teacher's region keeps (1 outside the organ), for the images of ``prepared``
    (``image``, ``organ``, ``score``), chunk by chunk from ``folder`` where computed before."""
    from tqdm import tqdm

    images, organ, scores = prepared["image"], prepared["organ"], prepared["score"]
    size = images.shape[1:3]
    grid = [-(-size[0] // cell), -(-size[1] // cell)]
    padding = [[0, 0], [0, grid[0] * cell - size[0]], [0, grid[1] * cell - size[1]], [0, 0]]
    parts = []
    for start in tqdm(range(0, len(images), CHUNK), desc=f"teacher ({split})", unit="chunk", disable=not progress,
                      leave=False):
        path = folder / f"teacher-{split}-{start // CHUNK:04d}.npz"
        end = min(start + CHUNK, len(images))
        if path.is_file():
            with np.load(path) as saved:
                regions = saved["regions"]
        else:
            regions = _regions(explainer, images[start:end], organ[start:end], scores[start:end], target)
            with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez_compressed(handle, regions=regions)
        if regions.shape != images[start:end].shape[:3]:
            raise ValueError(f"{path}: teacher masks of another data set; remove the checkpoint folder")
        kept = (1.0 - regions[..., None].astype(np.float32)) * organ[start:end]
        area = tf.image.resize(tf.pad(organ[start:end], padding), grid, "area")
        share = tf.image.resize(tf.pad(kept, padding), grid, "area") / tf.maximum(area, 1e-6)
        parts.append(tf.where(area > 0, share, 1.0).numpy())
    return np.concatenate(parts).astype(np.float32)
