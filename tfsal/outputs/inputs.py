"""What the commands take as inputs: files, folders (a folder with a manifest stands for the
images it lists), manifest CSVs and globs, listed the same way by ``tfsal explain``,
``explain-batch`` and ``predict``."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from tfsal.data.manifest import image_paths
from tfsal.errors import ManifestError

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "list_inputs"]

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy", ".pgm", ""}
"""Suffixes of the files a folder is expanded to (none: DICOM files often have no suffix)."""


def expand_inputs(paths) -> list[Path]:
    """Files as given; folders replaced by the image files under them (by suffix, or none, as
    DICOM files often have), sorted; hidden files skipped. A folder holding a manifest
    (``labels.csv`` with an ``image`` or ``path`` column that lists images) stands for the images it
    lists, in its order, and not for its mask and organ images."""
    expanded = []
    for path in map(Path, paths):
        listed = _manifest_images(path) if path.is_dir() else []
        if listed:
            expanded.extend(listed)
        elif path.is_dir():
            expanded.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                                   and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            expanded.append(path)
    return expanded


def _manifest_images(folder: Path) -> list[Path]:
    """The images ``folder/labels.csv`` lists; none when there is no such manifest or it lists none."""
    if not (folder / "labels.csv").is_file():
        return []
    try:
        return image_paths(folder / "labels.csv")
    except ManifestError:  # a CSV of something else: the folder is a folder of images
        return []


def list_inputs(specs: Iterable[str], keep_missing: bool = False) -> list[str]:
    """The image files named by each spec, in order: a manifest CSV (its ``image`` or ``path``
    column, relative paths against the CSV's folder), a folder (:func:`expand_inputs`), an image
    file, or a glob (``**`` recursive; matched folders expanded, files kept when they have an
    image suffix). With ``keep_missing``, a spec that names no file and is no glob is kept as it
    is (so that the command reports it as unreadable), else it names nothing. What ``tfsal
    explain``, ``explain-batch`` and ``predict`` take as inputs.

    Raises:
        ManifestError: a manifest cannot be read or has neither column.
    """
    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_file() and path.suffix.lower() == ".csv":
            paths.extend(image_paths(path))
        elif path.exists() or (keep_missing and not glob.has_magic(str(spec))):
            paths.extend(expand_inputs([path]))
        else:
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            paths.extend(expand_inputs([p for p in matches if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES]))
    return [str(p) for p in paths]
