"""Image formats named from their first bytes, sizes read from headers, and the checks every reader runs.

:func:`sniff` names the format from the magic bytes (never from the suffix), :func:`header_size`
reads ``(H, W)`` from a PNG, JPEG, TIFF, NPY or binary PGM header without decoding anything, and
:func:`check_size` / :func:`check_values` refuse zero, oversized, empty, non-finite or constant
images with a one-line :class:`~tfsal.errors.ImageReadError`. Both readers use them:
:mod:`tfsal.data.image_io` and :mod:`tfsal.data.dicom`.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np

from tfsal.errors import ImageReadError, TfsalError

__all__ = ["FORMATS", "check_size", "check_values", "file_format", "header_size", "sniff"]

FORMATS = ("dicom", "png", "jpeg", "tiff", "npy", "pgm")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"
# A DICOM file without the 128-byte preamble starts with a group 0002 or 0008 tag.
_DICOM_NO_PREAMBLE = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def file_format(path: str | os.PathLike) -> str | None:
    """The format of the file at ``path`` named from its first bytes (as
    :func:`tfsal.data.image_io.read_image` decides it), or None for an unknown format or a file
    that cannot be opened."""
    try:
        with open(path, "rb") as handle:
            return sniff(handle.read(132))
    except OSError:
        return None


def sniff(data: bytes) -> str | None:
    """Name the format of ``data`` from its magic bytes, or ``None``."""
    if data[128:132] == b"DICM":
        return "dicom"  # checked first: a DICOM preamble may itself look like a TIFF header
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    if data.startswith(_NPY_MAGIC):
        return "npy"
    if data[:2] == b"P5" and data[2:3].isspace():
        return "pgm"  # binary greyscale netpbm (mini-MIAS)
    if data[:2] in _DICOM_NO_PREAMBLE and len(data) >= 8:
        return "dicom"
    return None


def check_size(path, height: int, width: int, max_pixels: int) -> None:
    """Refuse a zero or oversized image from the size its header claims.

    Raises:
        ImageReadError: ``height`` or ``width`` is zero, or their product exceeds ``max_pixels``.
    """
    if height <= 0 or width <= 0:
        raise ImageReadError(path, f"image has zero size ({height}x{width} pixels)")
    if height * width > max_pixels:
        raise ImageReadError(
            path, f"image is {height}x{width} = {height * width} pixels, over the limit of "
            f"{max_pixels} (max_pixels)")


def check_values(path, pixels: np.ndarray, *, allow_constant: bool) -> None:
    """Refuse empty, non-finite or (unless allowed) constant pixel arrays.

    Raises:
        ImageReadError: the array is empty, holds NaN or infinite values, or is constant.
    """
    if pixels.size == 0:
        raise ImageReadError(path, "decoder returned an empty image")
    if pixels.dtype.kind == "f" and not np.all(np.isfinite(pixels)):
        raise ImageReadError(path, "image holds NaN or infinite values")
    if not allow_constant and pixels.min() == pixels.max():
        raise ImageReadError(path, f"constant image (every pixel is {float(pixels.flat[0]):g})")


# --- sizes from headers -------------------------------------------------------------------

def header_size(fmt: str, data: bytes, path: Path) -> tuple[int, int]:
    """``(H, W)`` from the header of ``data`` in format ``fmt`` (png, jpeg, tiff, npy or pgm).

    Raises:
        ImageReadError: the header is corrupt or truncated.
    """
    try:
        return {"png": _png_size, "jpeg": _jpeg_size, "tiff": _tiff_size, "npy": _npy_size,
                "pgm": _pgm_size}[fmt](data)
    except (struct.error, IndexError) as exc:
        reason = f"corrupt or truncated {fmt.upper()} file: it ends inside the header ({exc})"
        raise ImageReadError(path, reason) from None
    except ValueError as exc:
        raise ImageReadError(path, f"corrupt or truncated {fmt.upper()} file ({exc})") from None


def _png_size(data: bytes) -> tuple[int, int]:
    """(H, W) from the IHDR chunk; also checks that the IEND chunk is present."""
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ValueError("first chunk is not IHDR")
    width, height = struct.unpack(">II", data[16:24])
    if data.rfind(b"IEND") < 0:
        raise ValueError("no IEND chunk: the file is truncated")
    return height, width


def _pgm_size(data: bytes) -> tuple[int, int]:
    """(H, W) from a binary PGM header (``P5``, width, height, maxval, ``#`` comments allowed); also
    checks that the pixel data is all there."""
    fields, pos = [], 2
    while len(fields) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if pos == start or pos - start > 9:
            raise ValueError("the header does not hold width, height and maximum value")
        fields.append(int(data[start:pos]))
    width, height, maxval = fields
    if not 0 < maxval < 65536:
        raise ValueError(f"maximum value {maxval} outside 1-65535")
    if len(data) < pos + 1 + width * height * (1 if maxval < 256 else 2):
        raise ValueError("the pixel data is shorter than the header says: the file is truncated")
    return height, width


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(H, W) from the first SOF marker; also checks the end-of-image marker."""
    if not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise ValueError("no end-of-image marker: the file is truncated")
    pos = 2
    while True:
        while data[pos] != 0xFF:
            pos += 1
        while data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in (0x01, *range(0xD0, 0xD8)):
            continue  # standalone markers have no length
        if marker in (0xD9, 0xDA):
            raise ValueError("no frame header (SOF) before the image data")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 3:pos + 7])
            return height, width
        pos += length


def _tiff_size(data: bytes) -> tuple[int, int]:
    """(H, W) from the first IFD's ImageLength (257) and ImageWidth (256) tags."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    if big:  # BigTIFF: 8-byte offsets and counts, 20-byte entries
        (offset,) = struct.unpack(order + "Q", data[8:16])
        (count,) = struct.unpack(order + "Q", data[offset:offset + 8])
        entry_size, first, entry_fmt = 20, offset + 8, "HHQ8s"
    else:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset:offset + 2])
        entry_size, first, entry_fmt = 12, offset + 2, "HHI4s"
    if count > 4096:
        raise ValueError(f"implausible IFD with {count} entries")
    found = {}
    for i in range(count):
        start = first + i * entry_size
        tag, kind, _, value = struct.unpack(order + entry_fmt, data[start:start + entry_size])
        if tag in (256, 257):
            code = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if code is None:
                raise ValueError(f"tag {tag} has unexpected type {kind}")
            found[tag] = struct.unpack_from(order + code, value)[0]
    if 256 not in found or 257 not in found:
        raise ValueError("ImageWidth or ImageLength tag missing")
    return found[257], found[256]


def _npy_header(data: bytes):
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return shape, dtype


def _npy_size(data: bytes) -> tuple[int, int]:
    """(H, W) from the NPY header; the array must be 2-D or ``[H, W, 1]`` of a numeric type."""
    shape, dtype = _npy_header(data)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 1)):
        raise ValueError(f"array of shape {shape} is not a single-channel image; expected [H, W] or [H, W, 1]")
    if dtype.kind not in "biuf":
        raise ValueError(f"array dtype {dtype} is not numeric")
    return int(shape[0]), int(shape[1])


DEFAULT_MAX_FILE_MB = 512
"""Input files above this many megabytes are refused before they are read (``TFSAL_MAX_FILE_MB``)."""


def max_file_bytes() -> int:
    """The largest input file tfsal reads: ``TFSAL_MAX_FILE_MB`` megabytes (default
    :data:`DEFAULT_MAX_FILE_MB`), checked with ``stat`` before the file is opened."""
    value = os.environ.get("TFSAL_MAX_FILE_MB", "")
    try:
        megabytes = float(value) if value.strip() else DEFAULT_MAX_FILE_MB
    except ValueError:
        raise TfsalError(f"TFSAL_MAX_FILE_MB must be a number of megabytes, not {value!r}") from None
    return int(megabytes * 1024 * 1024)
