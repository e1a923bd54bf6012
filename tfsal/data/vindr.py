"""Build ``labels.csv`` from VinDr-Mammo: its DICOM tree and ``finding_annotations.csv``.

Reference: H. T. Nguyen et al., "VinDr-Mammo: a large-scale benchmark dataset for computer-aided
diagnosis in full-field digital mammography", Scientific Data 10, 277, 2023 (distributed by
PhysioNet under its credentialed licence: the images may not be shared).

Layout (PhysioNet release 1.0.0): ``images/<study_id>/<image_id>.dicom`` and
``finding_annotations.csv`` with one row per finding, and one ``No Finding`` row for an image
without any: ``study_id``, ``image_id``, ``laterality``, ``view_position``, ``height``, ``width``,
``breast_birads``, ``breast_density``, ``finding_categories`` (a list literal such as
``['Mass', 'Suspicious Calcification']``), ``finding_birads``, ``xmin``, ``ymin``, ``xmax``,
``ymax`` (pixels of the image; empty without a box) and ``split`` (``training`` or ``test``).

Labels: an image with a finding whose categories include ``Mass`` is 1, and its mask is the union
of those findings' boxes (clipped to the image, from the CSV's height and width, so no DICOM is
opened), written as ``masks/vindr_00000.png`` in a stable order (the file names carry no
identifier). An image whose only row is ``No Finding`` is 0. An image with other findings only
(calcifications, asymmetries, distortions, ...) is left out unless ``include_other`` (then 0: no
mass). The official test split stays ``test``; a seeded share of the training studies (one exam per
woman) becomes ``val`` (:func:`tfsal.data.splits.assign_splits`).
"""

from __future__ import annotations

import ast
import csv
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfsal.data.image_io import write_mask
from tfsal.data.manifest import Record, write_manifest
from tfsal.data.splits import assign_splits
from tfsal.errors import VindrError

__all__ = ["MASS", "REQUIRED_COLUMNS", "VindrError", "build_manifest"]

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("study_id", "image_id", "height", "width", "finding_categories", "xmin", "ymin", "xmax",
                    "ymax", "split")
MASS = "Mass"
NO_FINDING = "No Finding"



@dataclass
class _Image:
    study: str
    image: str
    split: str
    size: tuple[int, int]
    extra: dict
    categories: set = field(default_factory=set)
    boxes: list = field(default_factory=list)


def _categories(text: str) -> set[str]:
    """The categories of a ``finding_categories`` cell (a list literal, or one bare name)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    values = value if isinstance(value, (list, tuple)) else [value]
    return {str(v).strip() for v in values if str(v).strip()}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def read_findings(path: str | Path) -> list[_Image]:
    """The images of ``finding_annotations.csv`` with their categories and mass boxes, in file order.

    Raises:
        VindrError: the file cannot be read or lacks a required column.
    """
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VindrError(f"{path}: cannot read the VinDr-Mammo findings CSV ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]] if rows else list(REQUIRED_COLUMNS)
    if missing:
        raise VindrError(f"{path}: no rows, or missing columns {missing}")
    images: dict[str, _Image] = {}
    for row in rows:
        height, width = _number(row["height"]), _number(row["width"])
        if not height or not width:
            log.warning("%s: an image without its height and width; skipped", path.name)
            continue
        image = images.setdefault(row["image_id"], _Image(
            study=row["study_id"], image=row["image_id"], split="test" if row["split"].strip() == "test" else "train",
            size=(int(height), int(width)),
            extra={k: row.get(k, "") for k in ("laterality", "view_position", "breast_birads", "breast_density")}))
        categories = _categories(row["finding_categories"])
        image.categories |= categories
        box = [_number(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        if MASS in categories and None not in box:
            image.boxes.append(box)
    return list(images.values())


def box_mask(boxes, size: tuple[int, int]) -> np.ndarray:
    """The union of ``[xmin, ymin, xmax, ymax]`` boxes (pixels, clipped to the image), bool ``size``."""
    mask = np.zeros(size, bool)
    for xmin, ymin, xmax, ymax in boxes:
        top, bottom = int(np.clip(np.floor(ymin), 0, size[0])), int(np.clip(np.ceil(ymax), 0, size[0]))
        left, right = int(np.clip(np.floor(xmin), 0, size[1])), int(np.clip(np.ceil(xmax), 0, size[1]))
        mask[top:bottom, left:right] = True
    return mask


def build_manifest(root: str | Path, out_dir: str | Path, *, include_other: bool = False, val: float = 0.1,
                   seed: int = 0) -> Path:
    """Write ``out_dir/labels.csv`` (and ``out_dir/masks/``) for the VinDr-Mammo release under ``root``.

    Args:
        root: the folder with ``finding_annotations.csv`` and ``images/`` (images named in the CSV
            but absent are left out with a warning, so a part of the release works).
        out_dir: where the manifest and the masks go.
        include_other: keep images whose findings are all other than masses, labelled 0.
        val: share of the training studies moved to the validation split.
        seed: the validation split's seed.

    Raises:
        VindrError: no readable CSV, or none of its images under ``root``.
    """
    root, out_dir = Path(root), Path(out_dir)
    chosen, missing, positives_without_box = [], 0, 0
    for image in read_findings(root / "finding_annotations.csv"):
        path = root / "images" / image.study / f"{image.image}.dicom"
        if not path.is_file():
            missing += 1
            continue
        mass, healthy = MASS in image.categories, image.categories <= {NO_FINDING}
        if not (mass or healthy or include_other):
            continue
        if mass and not image.boxes:
            positives_without_box += 1
        chosen.append((image, path, mass))
    if missing:
        log.warning("%s: %d images of finding_annotations.csv are not under images/; left out", root, missing)
    if positives_without_box:
        log.warning("%s: %d mass images have no box; they have no mask", root, positives_without_box)
    if not chosen:
        raise VindrError(f"{root}: none of the images finding_annotations.csv names is under images/")
    val_studies = assign_splits(sorted({im.study for im, _, _ in chosen if im.split == "train"}), val=val, test=0.0,
                                seed=seed)
    records, counts = [], defaultdict(int)
    for number, (image, path, mass) in enumerate(chosen):
        mask_path = None
        if mass and image.boxes:
            mask_path = out_dir / "masks" / f"vindr_{number:05d}.png"
            write_mask(mask_path, box_mask(image.boxes, image.size))
        split = "test" if image.split == "test" else val_studies[image.study]
        counts[split, int(mass)] += 1
        records.append(Record(image=path, label=int(mass), mask=mask_path, split=split, extra={
            **image.extra, "findings": "|".join(sorted(image.categories - {NO_FINDING}))}))
    log.info("VinDr-Mammo: %s", dict(sorted(counts.items())))
    return write_manifest(out_dir / "labels.csv", records)

