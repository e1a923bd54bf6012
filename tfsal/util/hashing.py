"""SHA-256 of files, read in chunks (a 50 MB DICOM or a model file is never held twice)."""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256"]

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of the file's bytes.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
