"""The inputs of ``tfsal explain-batch``, listed on the launcher: manifests, folders, files and globs."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from tfsal.data.manifest import image_paths

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
            paths.extend(image_paths(path))
        elif path.exists():
            paths.extend(expand_inputs([path]))
        else:
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            paths.extend(expand_inputs([p for p in matches if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES]))
    return [str(p) for p in paths]
