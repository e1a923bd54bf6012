"""The canonical manifest: ``labels.csv`` with columns ``image,label,mask,split``.

Paths in the file are relative to the folder holding it (absolute paths are kept as they
are). ``label`` is 1 for an image with a mass and 0 for a healthy one; ``mask`` is the
ground-truth mass mask (empty for healthy images); ``split`` is ``train``, ``val`` or
``test``. Optional extra columns are kept: ``organ`` (a breast mask written by the
synthetic generator) and anything else, in ``Record.extra``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfsal.errors import ManifestError
from tfsal.util import atomic
from tfsal.util.hashing import file_sha256

REQUIRED_COLUMNS = ("image", "label", "mask", "split")
OPTIONAL_COLUMNS = ("organ",)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    """One row of a manifest, with paths resolved against the manifest's folder."""

    image: Path
    label: int
    mask: Path | None = None
    split: str = "train"
    organ: Path | None = None
    extra: dict = field(default_factory=dict, compare=False)


def resolve_path(root: Path, value: str) -> Path | None:
    """A manifest cell as a path: None when empty, absolute as given, else under ``root``."""
    value = value.strip()
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else root / path


def read_manifest(
    path: str | os.PathLike,
    split: str | Sequence[str] | None = None,
    check_files: bool = True,
) -> list[Record]:
    """Read ``labels.csv`` (or a folder holding one) into records.

    Args:
        path: the CSV file, or a folder that holds ``labels.csv``.
        split: keep only rows of this split (or these splits); ``None`` keeps all.
        check_files: raise if an image or mask named in the file does not exist.

    Raises:
        ManifestError: the file is missing, a required column is absent, a label is not
            0 or 1, a split is unknown, or (with ``check_files``) a named file is missing.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "labels.csv"
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    wanted = None if split is None else ({split} if isinstance(split, str) else set(split))
    if wanted and not wanted <= set(SPLITS):
        raise ManifestError(f"unknown split {sorted(wanted - set(SPLITS))}; expected one of {SPLITS}")
    records = []
    for line, row in enumerate(_rows(path), start=2):
        where = f"{path}, line {line}"
        record = _record(row, where, path.parent, wanted)
        if record is None:
            continue
        if check_files:
            for name in ("image", "mask", "organ"):
                file = getattr(record, name)
                if file is not None and not file.is_file():
                    raise ManifestError(f"{where}: {name} file {file} does not exist")
        records.append(record)
    return records


def _rows(path: Path) -> csv.DictReader:
    """The manifest's rows, once its text is read and its header has the required columns."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED_COLUMNS)}")
    return reader


def _record(row: dict, where: str, root: Path, wanted: set | None) -> Record | None:
    """One row as a :class:`Record`, or None when its split is not ``wanted``; ``where`` names the line."""
    label = (row["label"] or "").strip()
    if label not in ("0", "1"):
        raise ManifestError(f"{where}: label must be 0 or 1, got {label!r}")
    row_split = (row["split"] or "").strip()
    if row_split not in SPLITS:
        raise ManifestError(f"{where}: split must be one of {', '.join(SPLITS)}, got {row_split!r}")
    if wanted is not None and row_split not in wanted:
        return None
    image = resolve_path(root, row["image"] or "")
    if image is None:
        raise ManifestError(f"{where}: empty image path")
    return Record(
        image=image,
        label=int(label),
        mask=resolve_path(root, row["mask"] or ""),
        split=row_split,
        organ=resolve_path(root, row.get("organ") or ""),
        extra={k: v for k, v in row.items() if k not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS and k},
    )


def write_manifest(path: str | os.PathLike, records: Iterable[Record]) -> Path:
    """Write records to ``path`` atomically, with paths relative to its folder.

    The ``organ`` column and the keys of ``Record.extra`` are written when any record has
    them. Returns the path written.
    """
    path = Path(path)
    root = path.parent.resolve()
    records = list(records)
    columns = list(REQUIRED_COLUMNS)
    if any(r.organ is not None for r in records):
        columns.append("organ")
    for record in records:
        columns.extend(k for k in record.extra if k not in columns)

    def rel(file: Path | None) -> str:
        if file is None:
            return ""
        try:
            return Path(os.path.relpath(Path(file).resolve(), root)).as_posix()
        except ValueError:  # another drive on Windows
            return Path(file).resolve().as_posix()

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = {"image": rel(r.image), "label": r.label, "mask": rel(r.mask), "split": r.split}
        if "organ" in columns:
            row["organ"] = rel(r.organ)
        row.update(r.extra)
        writer.writerow(row)
    atomic.write_text(path, out.getvalue())
    return path


def merge_manifests(paths: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write one manifest at ``out`` holding every row of the manifests at ``paths``, their splits
    kept and their paths rewritten relative to ``out``'s folder (the files are not copied).

    Raises:
        ManifestError: fewer than two manifests, one of them unreadable, or an image in two rows.
    """
    if len(paths) < 2:
        raise ManifestError(f"merging needs at least two manifests; received {len(paths)}")
    records, seen = [], {}
    for path in paths:
        for record in read_manifest(path):
            key = record.image.resolve()
            if key in seen:
                raise ManifestError(f"{record.image} is in {seen[key]} and in {path}: an image may appear once")
            seen[key] = path
            records.append(record)
    out = Path(out)
    return write_manifest(out / "labels.csv" if out.suffix.lower() != ".csv" else out, records)


def fingerprint(records: Sequence[Record]) -> str:
    """SHA-256 of what the records hold, not where: each image's and mask's bytes with its label and
    split, in a fixed order. Two copies of a data set in other folders have the same fingerprint;
    a changed pixel, label or split gives another."""
    rows = []
    for record in records:
        files = [record.image, record.mask]
        digests = [file_sha256(path) if path else "" for path in files]
        rows.append(f"{digests[0]} {record.label} {record.split} {digests[1]}")
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def counts(records: Sequence[Record]) -> dict:
    """Images per split and label: ``{split: {"mass": n, "healthy": n, "mass_masks": n}}``."""
    table = {}
    for record in records:
        entry = table.setdefault(record.split, {"mass": 0, "healthy": 0, "mass_masks": 0})
        entry["mass" if record.label == 1 else "healthy"] += 1
        entry["mass_masks"] += int(record.mask is not None)
    return {split: table[split] for split in SPLITS if split in table}


def image_paths(path: str | os.PathLike) -> list[Path]:
    """The images a CSV lists, leniently: its ``image`` (or ``path``) column, relative paths against
    the CSV's folder, no other column needed or checked (a list of files for ``explain``).

    Raises:
        ManifestError: the CSV cannot be read or has neither column.
    """
    path = Path(path)
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
        columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from None
    column = next((c for c in ("image", "path") if c in columns), None)
    if column is None:
        raise ManifestError(f"{path}: a manifest needs an 'image' or 'path' column (it has {', '.join(columns)})")
    return [p for row in reader if (p := resolve_path(path.parent, row.get(column) or ""))]
