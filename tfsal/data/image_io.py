"""Read one grayscale image (DICOM, PNG, JPEG, TIFF, NPY or binary PGM) as float32 ``[H, W, 1]`` in [0, 1].

The format is detected from the file's content (magic bytes), never from its suffix. Sizes
are checked from the header before anything is decoded, so a tiny file that claims 30000 x
30000 pixels is refused cheaply. Every failure raises :class:`~tfsal.errors.ImageReadError`
with one line naming the file and the reason; no other exception type escapes.

Normalisation to [0, 1]:

* DICOM: see :mod:`tfsal.data.dicom` (modality LUT, VOI LUT or window, MONOCHROME1).
* PNG, JPEG, TIFF, PGM: unsigned integers divided by their dtype's maximum (255 or 65535).
* NPY and other integer types: unsigned (and non-negative signed) integers divided by the
  dtype's maximum, signed integers with negative values min-max scaled; booleans as 0/1;
  floats taken as they are when all values lie in [0, 1], otherwise min-max scaled.

RGB(A) images whose colour channels are identical are read as grayscale (alpha ignored);
true colour is refused. :class:`ImageMeta` never holds patient identifiers.
"""

from __future__ import annotations

import dataclasses
import io
import os
import stat
from pathlib import Path

import numpy as np

from tfsal.data import dicom
from tfsal.data.formats import (
    FORMATS,
    check_size,
    check_values,
    file_format,
    header_size,
    max_file_bytes,
    sniff,
)
from tfsal.errors import ImageReadError, TfsalError
from tfsal.util import atomic
from tfsal.util.quiet import quiet_stderr

__all__ = ["DEFAULT_MAX_PIXELS", "FORMATS", "ImageMeta", "file_format", "read_image", "read_mask", "write_mask"]

DEFAULT_MAX_PIXELS = 50_000_000


@dataclasses.dataclass(frozen=True)
class ImageMeta:
    """What tfsal keeps of an image's header: geometry and display, never patient data.

    Attributes:
        source: the path the image was read from.
        format: one of ``FORMATS``.
        original_size: ``(H, W)`` as stored in the file.
        pixel_spacing: ``(row_mm, col_mm)`` (DICOM PixelSpacing, else ImagerPixelSpacing),
            or ``None``.
        laterality: ``'L'``, ``'R'`` or ``None``.
        view: the view position (e.g. ``'CC'``, ``'MLO'``) or ``None``.
        photometric: DICOM PhotometricInterpretation, or ``None``.
        bits_stored: DICOM BitsStored, or the bit depth of a raster image, or ``None``.
    """

    source: str
    format: str
    original_size: tuple[int, int]
    pixel_spacing: tuple[float, float] | None = None
    laterality: str | None = None
    view: str | None = None
    photometric: str | None = None
    bits_stored: int | None = None


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, ImageMeta]:
    """Read a single-frame grayscale image as float32 ``[H, W, 1]`` in [0, 1].

    Args:
        path: a DICOM, PNG, JPEG, TIFF, NPY or PGM file (detected by content).
        max_pixels: refuse images whose header claims more than this many pixels.

    Returns:
        ``(image, meta)``: the image and its :class:`ImageMeta`.

    Raises:
        ImageReadError: the file is missing, empty, truncated, not an image, not a
            single-frame grayscale image, too large, constant, or holds NaN/infinite values.
    """
    return _guarded(path, lambda: _read_image(Path(path), max_pixels, mask=False))


def read_mask(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a mask as bool ``[H, W]``: True where the stored value is above zero.

    Stored values are used before any display transform (0/255 and 0/1 masks both work;
    no MONOCHROME1 inversion). An all-zero mask is allowed.

    Args:
        path: a DICOM, PNG, JPEG, TIFF, NPY or PGM file (detected by content).
        max_pixels: refuse masks whose header claims more than this many pixels.

    Returns:
        The boolean mask.

    Raises:
        ImageReadError: as :func:`read_image`, except that a constant mask is accepted.
    """
    return _guarded(path, lambda: _read_image(Path(path), max_pixels, mask=True))


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write a boolean mask as an 8-bit PNG of 0/255, atomically (what :func:`read_mask` reads back).

    Raises:
        TfsalError: the PNG cannot be written.
    """
    import cv2

    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.where(mask, 255, 0).astype(np.uint8)):
            raise TfsalError(f"{path}: cannot write the mask PNG")
    return path


def _guarded(path, read):
    """Run ``read()``; turn any exception into a one-line :class:`ImageReadError`."""
    try:
        return read()
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode the image") from None
    except Exception as exc:  # decoders raise anything; the caller gets one named type
        raise ImageReadError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc


def _read_image(path: Path, max_pixels: int, *, mask: bool):
    data = _read_bytes(path)
    fmt = sniff(data)
    if fmt is None:
        raise ImageReadError(path, "not a recognised image format (expected DICOM, PNG, JPEG, TIFF, NPY or PGM)")
    if fmt == "dicom":
        pixels, info = dicom.read_dicom(path, max_pixels=max_pixels, raw=mask)
        meta = ImageMeta(source=str(path), format=fmt, **info)
    else:
        height, width = header_size(fmt, data, path)
        check_size(path, height, width, max_pixels)
        raw = _load_npy(data) if fmt == "npy" else _decode_raster(fmt, data, path)
        raw = _to_gray(raw, path, tolerance=2 if fmt == "jpeg" else 0)
        if raw.shape != (height, width):
            raise ImageReadError(path, f"decoded size {raw.shape} differs from the header's {(height, width)}")
        bits = raw.dtype.itemsize * 8 if raw.dtype.kind in "ui" else None
        meta = ImageMeta(source=str(path), format=fmt, original_size=(height, width), bits_stored=bits)
        pixels = raw if mask else _normalise(raw)
    if mask:
        check_values(path, pixels, allow_constant=True)
        return np.asarray(pixels) > 0
    check_values(path, pixels, allow_constant=False)
    return pixels.astype(np.float32)[:, :, None], meta


def _read_bytes(path: Path) -> bytes:
    try:
        info = path.stat()  # follows links: a link to /dev/zero is a device
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageReadError(path, "is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):  # never opened: a named pipe would block, a device never end
        kind = "a named pipe" if stat.S_ISFIFO(info.st_mode) else "a device" if (
            stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)) else "a socket or other special file"
        raise ImageReadError(path, f"is {kind}, not a regular file")
    limit = max_file_bytes()
    if info.st_size > limit:
        raise ImageReadError(path, f"file of {info.st_size / 2**20:.3g} MB is over the {limit / 2**20:.3g} MB "
                                   "limit (TFSAL_MAX_FILE_MB)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(path, f"cannot open file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    return data


# --- decoding -----------------------------------------------------------------------------

def _load_npy(data: bytes) -> np.ndarray:
    array = np.load(io.BytesIO(data), allow_pickle=False)
    return array.reshape(array.shape[:2])


def _decode_raster(fmt: str, data: bytes, path: Path) -> np.ndarray:
    """Decode PNG/JPEG/TIFF/PGM bytes with OpenCV, keeping bit depth and channels."""
    import cv2

    with quiet_stderr() as captured:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    said = " ".join("".join(captured).split())
    if image is None or image.size == 0:
        detail = f": {said[:200]}" if said else ""
        raise ImageReadError(path, f"corrupt or truncated {fmt.upper()} file; the decoder failed{detail}")
    if fmt == "jpeg" and ("corrupt jpeg data" in said.lower() or "premature end" in said.lower()):
        # libjpeg fills what is missing with grey and only warns: a cut file with an end marker appended
        raise ImageReadError(path, f"corrupt or truncated JPEG file ({said[:200]})")
    return image


def _to_gray(image: np.ndarray, path: Path, *, tolerance: int = 0) -> np.ndarray:
    """Reduce ``[H, W]``, ``[H, W, 1..4]`` to ``[H, W]``; refuse true colour."""
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(path, f"unsupported image shape {image.shape}")
    if image.shape[2] <= 2:  # gray, or gray + alpha
        return image[:, :, 0]
    colour = image[:, :, :3].astype(np.float64)
    spread = np.max(np.abs(colour - colour[:, :, :1]))
    if spread > tolerance:
        raise ImageReadError(path, f"colour image ({image.shape[2]} channels that differ); a grayscale image is needed")
    if tolerance == 0:
        return image[:, :, 0]
    return np.round(colour.mean(axis=2)).astype(image.dtype)


def _normalise(raw: np.ndarray) -> np.ndarray:
    """Map decoded raster/NPY values to float64 in [0, 1] (rules in the module docstring)."""
    if raw.dtype.kind == "b":
        return raw.astype(np.float64)
    if raw.dtype.kind in "ui":
        top = float(np.iinfo(raw.dtype).max)
        if raw.dtype.kind == "u" or raw.min() >= 0:
            return raw.astype(np.float64) / top
        return _min_max(raw.astype(np.float64))
    values = raw.astype(np.float64)
    if not np.all(np.isfinite(values)):
        return values  # refused by check_values with its own message
    if values.min() >= 0.0 and values.max() <= 1.0:
        return values
    return _min_max(values)


def _min_max(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high > low else np.zeros_like(values)
