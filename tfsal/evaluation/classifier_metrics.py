"""How well a classifier separates mass from healthy images on a manifest split.

Feeds ``tfsal evaluate-classifier`` and the figures in ``saved_models/README.md``: ROC AUC,
sensitivity and specificity at a threshold, and the ROC curve; the AUC with a stratified
bootstrap interval (``statistics.auc_interval``); and, with ``by``, the AUC of each subgroup that a
manifest column names (a tissue density, a texture, a lesion kind, a scanner):

- a value that healthy images of the split also have (a density, a scanner): the group's mass
  images against the group's healthy images;
- a value only mass images have (a lesion kind; healthy images have none or another): the group's
  mass images against every healthy image of the split.

Each subgroup's row says which (``against``: ``"group"`` or ``"all healthy"``).

``lesion_size``, when the manifest has no column of that name, is computed from the mass masks
(:func:`lesion_size_groups`): the mass images in thirds by the equivalent diameter of their mask,
``2 sqrt(area / pi)``, as a share of the image height, each third against every healthy image.
"""

from __future__ import annotations

import os

import numpy as np

from tfsal.data.manifest import read_manifest
from tfsal.errors import TfsalError
from tfsal.evaluation.metrics import roc_auc, roc_curve, sensitivity_specificity
from tfsal.evaluation.statistics import LEVEL, auc_interval


def predict_manifest(classifier, records, batch_size: int = 32) -> np.ndarray:
    """Mass probabilities of the records' images at the classifier's input size."""
    from tfsal.data.pipelines import classification_dataset

    size = tuple(classifier.input_shape[1:3])
    if None in size:
        raise TfsalError("the classifier has no fixed input size; it cannot be evaluated on whole images")
    dataset = classification_dataset(records, size, batch_size, training=False, cache=False)
    return np.asarray(classifier.predict(dataset.map(lambda x, y: x), verbose=0)).reshape(-1)


LESION_SIZE = "lesion_size"


def _size_from_masks(records, column: str) -> bool:
    return column == LESION_SIZE and not any(column in r.extra for r in records)


def _require_column(records, column: str) -> None:
    if not any(column in r.extra for r in records) and not _size_from_masks(records, column):
        columns = sorted({k for r in records for k in r.extra})
        also = "" if LESION_SIZE in columns else f" (and {LESION_SIZE}, from the masks)"
        raise TfsalError(f"the manifest has no column {column!r} to group by; it has: {', '.join(columns) or 'none'}"
                         + also)


def lesion_size_groups(records) -> list[str]:
    """Each record's lesion-size group: ``""`` for a healthy image, ``"no mask"`` for a mass image
    without a mask (or with an empty one), else the third of the masked mass images it falls in by
    ``d = 2 sqrt(area / pi) / H`` (the mask's equivalent diameter over its height), named with the
    range of ``d`` in it, e.g. ``"third 1: 2.1-6.3 % of height"``; ties at a boundary go to the
    lower third.

    Raises:
        ImageReadError: a mask cannot be read (the message names the file).
    """
    from tfsal.data.image_io import read_mask

    diameters = np.full(len(records), np.nan)
    for i, record in enumerate(records):
        if record.label == 1 and record.mask is not None:
            mask = read_mask(record.mask)
            if mask.any():
                diameters[i] = 2 * np.sqrt(mask.sum() / np.pi) / mask.shape[0]
    groups = ["no mask" if r.label == 1 else "" for r in records]
    known = np.flatnonzero(~np.isnan(diameters))
    if known.size:
        third = np.searchsorted(np.quantile(diameters[known], [1 / 3, 2 / 3]), diameters[known], side="left")
        for k in np.unique(third):
            members = diameters[known[third == k]]
            name = f"third {k + 1}: {100 * members.min():.1f}-{100 * members.max():.1f} % of height"
            for i in known[third == k]:
                groups[i] = name
    return groups


def group_values(records, column: str) -> list[str]:
    """Each record's value of ``column`` (``""`` where it has none); ``lesion_size`` from the masks
    (:func:`lesion_size_groups`) when no record has that column.

    Raises:
        TfsalError: no record has ``column``; ImageReadError: a mask to size cannot be read.
    """
    _require_column(records, column)
    if _size_from_masks(records, column):
        return lesion_size_groups(records)
    return [str(r.extra.get(column) or "") for r in records]


def subgroup_aucs(records, scores, column: str, values=None) -> list[dict]:
    """The ROC AUC (bootstrap interval) of each value of ``column`` among the mass images (see the
    module docstring for what each group is measured against), sorted by value; ``values``: the
    records' :func:`group_values` of ``column`` when already known.

    Raises:
        TfsalError: no record has ``column``.
    """
    labels = np.array([r.label for r in records], bool)
    values = np.array(group_values(records, column) if values is None else values)
    scores = np.asarray(scores, float)
    rows = []
    for value in sorted(set(values[labels])):
        group = values == value
        within = bool((group & ~labels).any())
        healthy = group & ~labels if within else ~labels
        chosen = (group & labels) | healthy
        low, high = auc_interval(labels[chosen], scores[chosen])
        rows.append({"value": value, "n_mass": int((group & labels).sum()), "n_healthy": int(healthy.sum()),
                     "against": "group" if within else "all healthy",
                     "roc_auc": roc_auc(labels[chosen], scores[chosen]), "roc_auc_interval": [low, high]})
    return rows


def evaluate_classifier(classifier, data: str | os.PathLike, split: str = "test", threshold: float = 0.5,
                        by: tuple[str, ...] = ()) -> dict:
    """ROC AUC, sensitivity and specificity at ``threshold`` and the ROC curve on one split
    (``split="all"``: every image of the manifest); with ``by``, the AUC of each subgroup of those
    manifest columns (:func:`subgroup_aucs`) under ``"by"``."""
    records = read_manifest(data, split=None if split == "all" else split)
    if not records:
        raise TfsalError(f"{data}: the manifest has no {split!r} split")
    by = (by,) if isinstance(by, str) else tuple(by)
    groups = {column: group_values(records, column) for column in by}  # refuse bad columns, masks before predicting
    labels = np.array([r.label for r in records])
    scores = predict_manifest(classifier, records)
    sensitivity, specificity = sensitivity_specificity(labels, scores, threshold)
    fpr, tpr, _ = roc_curve(labels, scores)
    low, high = auc_interval(labels, scores)
    return {
        "split": split, "n_mass": int(labels.sum()), "n_healthy": int((labels == 0).sum()),
        "roc_auc": roc_auc(labels, scores), "roc_auc_interval": [low, high], "interval_level": LEVEL,
        "threshold": threshold,
        "sensitivity": sensitivity, "specificity": specificity,
        "roc": {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()},
        "scores": scores.round(6).tolist(), "labels": labels.tolist(),
        **({"by": {column: subgroup_aucs(records, scores, column, groups[column]) for column in by}} if by else {}),
    }


def write_classifier_report(classifier, data: str | os.PathLike, split: str, out_dir: str | os.PathLike,
                            threshold: float = 0.5, by: tuple[str, ...] = ()) -> dict:
    """:func:`evaluate_classifier` on ``split``, written to ``out_dir`` as ``metrics.json`` and ``roc.png``.
    ``tfsal evaluate-classifier`` and ``tfsal train all`` both use it."""
    import json
    from pathlib import Path

    from tfsal.outputs.plots import plot_roc
    from tfsal.util import atomic

    result = evaluate_classifier(classifier, data, split, threshold, by)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_dir / "metrics.json", json.dumps(result, indent=1) + "\n")
    plot_roc([(f"{split} split, AUC {result['roc_auc']:.3f}", result["roc"]["fpr"], result["roc"]["tpr"])],
             out_dir / "roc.png", title="Mass classifier")
    return result


def classifier_line(result: dict) -> str:
    """One line: the split, its counts, the AUC with its interval, sensitivity and specificity."""
    low, high = result["roc_auc_interval"]
    return (f"{result['split']}: {result['n_mass']} mass + {result['n_healthy']} healthy images, "
            f"ROC AUC {result['roc_auc']:.4f} (95 % bootstrap interval {low:.3f}-{high:.3f}), "
            f"sensitivity {result['sensitivity']:.3f} and specificity {result['specificity']:.3f} "
            f"at {result['threshold']}")


def subgroup_lines(result: dict) -> list[str]:
    """One line per subgroup of ``result["by"]``: column=value, counts, AUC with its interval."""
    lines = []
    for column, rows in result.get("by", {}).items():
        for row in rows:
            low, high = row["roc_auc_interval"]
            lines.append(f"  {column}={row['value']}: {row['n_mass']} mass + {row['n_healthy']} healthy "
                         f"({row['against']}), ROC AUC {row['roc_auc']:.4f} ({low:.3f}-{high:.3f})")
    return lines
