"""Named exceptions of tfsal.

Every error a user can cause with bad input derives from :class:`TfsalError`; the command
line turns these into one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import os


class TfsalError(Exception):
    """Base class of the errors tfsal raises for bad input or bad settings."""


class ImageReadError(TfsalError):
    """An input file could not be read as a single-frame grayscale image.

    The message always names the file and the reason, on one line, e.g.
    ``scan.dcm: DICOM file has no pixel data (SOP class Basic Text SR); it is not an image``.
    Raised for missing or truncated files, non-image files, DICOM without pixel data,
    multi-frame or colour images, zero or oversized dimensions, constant images and NaN or
    infinite values.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever the decoder said
        super().__init__(f"{self.path}: {self.reason}")


class ManifestError(TfsalError):
    """A manifest (``labels.csv``) is missing, malformed or names files that do not exist."""


class CbisDdsmError(TfsalError):
    """A CBIS-DDSM description CSV or its DICOM tree cannot be turned into a manifest."""


class MiasError(TfsalError):
    """A mini-MIAS folder (``Info.txt`` and its films) that cannot be turned into a manifest."""


class VindrError(TfsalError):
    """A VinDr-Mammo release folder or CSV that cannot be turned into a manifest."""


class InbreastError(TfsalError):
    """An INbreast folder or ROI file that cannot be turned into a manifest."""
