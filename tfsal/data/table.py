"""Build ``labels.csv`` from a table of one's own images (``tfsal data table``).

The way in for a folder of DICOMs (or PNG, TIFF, ...) and a spreadsheet of labels: a CSV with
one row per image and the columns

- ``image`` (required): the image file, relative to the CSV's folder or absolute;
- ``label`` (required): 1 for an image with a mass, 0 for a healthy one;
- ``mask`` (optional): a mass mask image of the same size (non-zero inside); empty for healthy
  images and for mass images without an outline (they train a classifier but cannot be scored);
- ``patient`` (optional, recommended): who the image belongs to; the train/val/test split is drawn
  by patient (:func:`tfsal.data.splits.assign_splits`), so that no woman's images are in two splits.
  Without it every image counts as its own patient, with a warning: two views of one breast in
  two splits make validation and test figures too good;
- ``split`` (optional): ``train``, ``val`` or ``test`` on every row keeps your own split;
- any other column is kept in the manifest.

Rows whose image (or mask) file is missing are left out with a warning naming their line, so
that a partly copied folder still works; a bad label, a mask on a healthy image or a partial
``split`` column stops with an error naming the line.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from tfsal.data.manifest import SPLITS, Record, resolve_path, write_manifest
from tfsal.data.splits import assign_splits
from tfsal.errors import ManifestError

__all__ = ["build_manifest"]

log = logging.getLogger(__name__)

MANIFEST = ("image", "label", "mask", "split")  # the manifest's own columns; the others are kept as extras


def _rows(path: Path) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot read the table ({exc})") from None
    missing = [c for c in ("image", "label") if c not in columns]
    if missing:
        raise ManifestError(f"{path}: the table needs the columns image and label (missing: {', '.join(missing)})")
    return rows


def _row(row: dict, table: Path, line: int) -> tuple | None:
    """``(line, row, image, mask, label, split)`` of a table row, or None when a file is missing."""
    where = f"{table.name} line {line}"
    label = (row.get("label") or "").strip()
    if label not in ("0", "1"):
        raise ManifestError(f"{where}: label must be 0 or 1, not {label!r}")
    image = resolve_path(table.parent, row.get("image") or "")
    mask = resolve_path(table.parent, row.get("mask") or "")
    if image is None:
        raise ManifestError(f"{where}: no image")
    if mask is not None and label == "0":
        raise ManifestError(f"{where}: a healthy image (label 0) cannot have a mass mask")
    if any(p is not None and not p.is_file() for p in (image, mask)):
        return None
    split = (row.get("split") or "").strip()
    if split and split not in SPLITS:
        raise ManifestError(f"{where}: split must be one of {', '.join(SPLITS)}, not {split!r}")
    return line, row, image, mask, int(label), split


def build_manifest(table: str | Path, out_dir: str | Path, *, val: float = 0.1, test: float = 0.2,
                   seed: int = 0) -> Path:
    """Write ``out_dir/labels.csv`` for the images a table lists (see the module docstring).

    Args:
        table: the CSV file.
        out_dir: where the manifest goes (its paths are relative to it; images stay where they are).
        val, test: shares of the patients in the validation and test splits (unless the table has
            a ``split`` column).
        seed: the split's seed.

    Returns:
        The path of ``labels.csv``.

    Raises:
        ManifestError: an unreadable table, missing columns, a bad label or split, a mask on a
            healthy image, or no row left.
    """
    table, out_dir = Path(table), Path(out_dir)
    kept, missing = [], []
    for line, row in enumerate(_rows(table), start=2):
        parsed = _row(row, table, line)
        (kept if parsed else missing).append(parsed or line)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        log.warning("%s: %d rows whose image or mask file is missing are left out (lines %s)", table.name,
                    len(missing), shown)
    if not kept:
        raise ManifestError(f"{table}: no row with an existing image")
    given = [split for *_, split in kept]
    if any(given) and not all(given):
        raise ManifestError(f"{table}: the split column is filled on some rows only; fill it on every row or "
                            "leave it empty to draw the split by patient")
    if not any(given):
        if not any((row.get("patient") or "").strip() for _, row, *_ in kept):
            log.warning("%s: no patient column; each image counts as its own patient, so two images of one "
                        "woman may land in two splits", table.name)
        patients = [(row.get("patient") or "").strip() or f"line{line}" for line, row, *_ in kept]
        splits = assign_splits(patients, val=val, test=test, seed=seed)
        given = [splits[p] for p in patients]
    records = [Record(image=image, label=label, mask=mask, split=split,
                      extra={k: (v or "").strip() for k, v in row.items() if k not in MANIFEST and k is not None})
               for (_, row, image, mask, label, _), split in zip(kept, given, strict=True)]
    return write_manifest(out_dir / "labels.csv", records)
