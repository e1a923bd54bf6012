"""How well a location-supervised run's lesion-grid head finds lesions (``saved_models/README.md``).

``tfsal train classifier --location-weight W`` trains, beside the classifier, a head that gives every
cell of the last feature grid (8x6 at 256x192) a lesion logit ``g_c``; the written classifier leaves
it out, but the run's last checkpoint (``OUT.ckpt``, named by ``state.json``) holds it. This script
reads that checkpoint and reports on one split of a manifest:

    image head AUC   ROC AUC of the classifier's own output over the split's images
    max-cell AUC     ROC AUC of max_c g_c (the image scored by its most lesion-like cell)
    cell AUC         over the cells of the lesion images: lesion cells (target > 0, from the masks,
                     :func:`tfsal.data.pipelines.lesion_grid`) against the others, by g_c
    top cell         share of the lesion images whose highest g_c lies on a lesion cell
    grid loss        the head's binary cross-entropy over every cell of every image (unweighted),
                     against that of a constant head, the split's mean target (1 % of cells are lesion,
                     so a head that calls every cell healthy is nearly right)

No augmentation; the targets are the lesion masks at the working size. For the validation split
(model choice) or, reporting only, a test split:

    python docs/lesion_grid_head.py runs/locb_ft.keras.ckpt data/mix3 --split val
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np

from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import classification_dataset
from tfsal.evaluation.metrics import roc_auc


def head_outputs(checkpoint: Path, data: str, split: str):
    """Image probabilities ``[N]``, cell logits and targets ``[N, rows, cols]`` and labels ``[N]``."""
    state = json.loads((checkpoint / "state.json").read_text())
    model = keras.saving.load_model(checkpoint / state["files"]["last"], compile=False)
    if len(model.outputs) != 2:
        raise SystemExit(f"{checkpoint}: its last checkpoint has no lesion-grid head (no --location-weight?)")
    records = read_manifest(data, split=split)
    grid = tuple(model.outputs[1].shape[1:3])
    dataset = classification_dataset(records, tuple(model.input.shape[1:3]), 32, augment=False, grid=grid,
                                      cache=False)
    parts = {"probability": [], "logits": [], "targets": [], "labels": []}
    for images, (labels, targets), _ in dataset:
        probability, logits = model.predict(images, verbose=0)
        for key, value in zip(parts, (probability[:, 0], logits[..., 0], targets.numpy()[..., 0], labels.numpy()),
                              strict=True):
            parts[key].append(value)
    return {key: np.concatenate(value) for key, value in parts.items()}


def _bce(targets: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(np.mean(-(targets * np.log(p) + (1 - targets) * np.log(1 - p))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a location-supervised run's checkpoint folder (OUT.ckpt)")
    parser.add_argument("data", help="labels.csv or its folder")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    out = head_outputs(args.checkpoint, args.data, args.split)
    labels, logits, targets = out["labels"], out["logits"], out["targets"]
    lesion = labels == 1
    cell_auc = roc_auc((targets[lesion] > 0).ravel().astype(int), logits[lesion].ravel())
    flat = logits[lesion].reshape(int(lesion.sum()), -1)
    top = np.mean(targets[lesion].reshape(len(flat), -1)[np.arange(len(flat)), flat.argmax(1)] > 0)
    print(f"grid loss {_bce(targets, 1 / (1 + np.exp(-logits))):.4f} (constant head: "
          f"{_bce(targets, np.full_like(targets, targets.mean())):.4f})")
    print(f"{args.split}: {int(lesion.sum())} lesion + {int((~lesion).sum())} healthy images; image head AUC "
          f"{roc_auc(labels, out['probability']):.3f}; max-cell AUC {roc_auc(labels, logits.max(axis=(1, 2))):.3f}; "
          f"cell AUC within lesion images {cell_auc:.3f}; top cell on the lesion in {top:.3f} of lesion images")


if __name__ == "__main__":
    main()
