"""The inputs of ``tfsal explain-batch``, listed on the launcher: manifests, folders, files and globs."""

from __future__ import annotations

import csv
import glob
import io
from collections.abc import Iterable
from pathlib import Path

from tfsal.data.manifest import resolve_path
from tfsal.errors import ManifestError

__all__ = ["list_inputs"]


def list_inputs(specs: Iterable[str]) -> list[str]:
    """The image files named by each spec, in order: a manifest CSV (its ``image`` or ``path``
    column, relative paths against the CSV's folder), a folder (its image files, as ``tfsal
    explain`` expands one), an image file, or a glob (``**`` recursive; matched folders expanded,
    files kept when they have an image suffix).

    Raises:
        ManifestError: a manifest cannot be read or has neither column.
    """
    from tfsal.outputs.files import IMAGE_SUFFIXES, expand_inputs

    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_file() and path.suffix.lower() == ".csv":
            paths.extend(_manifest_paths(path))
        elif path.exists():
            paths.extend(expand_inputs([path]))
        else:
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            paths.extend(expand_inputs([p for p in matches if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES]))
    return [str(p) for p in paths]


def _manifest_paths(path: Path) -> list[Path]:
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
        columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from None
    column = next((c for c in ("image", "path") if c in columns), None)
    if column is None:
        raise ManifestError(f"{path}: a manifest needs an 'image' or 'path' column (it has {', '.join(columns)})")
    return [p for row in reader if (p := resolve_path(path.parent, row.get(column) or ""))]
