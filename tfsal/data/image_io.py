"""Read one grayscale image (DICOM, PNG, JPEG, TIFF or NPY) as float32 ``[H, W, 1]`` in [0, 1].

The format is detected from the file's content (magic bytes), never from its suffix. Sizes
are checked from the header before anything is decoded, so a tiny file that claims 30000 x
30000 pixels is refused cheaply. Every failure raises :class:`~tfsal.errors.ImageReadError`
with one line naming the file and the reason; no other exception type escapes.

Normalisation to [0, 1]:

* DICOM: see :mod:`tfsal.data.dicom` (modality LUT, VOI LUT or window, MONOCHROME1).
* PNG, JPEG, TIFF: unsigned integers divided by their dtype's maximum (255 or 65535).
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
import struct
from pathlib import Path

import numpy as np

from tfsal.errors import ImageReadError
from tfsal.util.quiet import quiet_stderr

__all__ = ["DEFAULT_MAX_PIXELS", "FORMATS", "ImageMeta", "file_format", "read_image", "read_mask"]

DEFAULT_MAX_PIXELS = 50_000_000
FORMATS = ("dicom", "png", "jpeg", "tiff", "npy")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"
# A DICOM file without the 128-byte preamble starts with a group 0002 or 0008 tag.
_DICOM_NO_PREAMBLE = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


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
        path: a DICOM, PNG, JPEG, TIFF or NPY file (detected by content).
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
        path: a DICOM, PNG, JPEG, TIFF or NPY file (detected by content).
        max_pixels: refuse masks whose header claims more than this many pixels.

    Returns:
        The boolean mask.

    Raises:
        ImageReadError: as :func:`read_image`, except that a constant mask is accepted.
    """
    return _guarded(path, lambda: _read_image(Path(path), max_pixels, mask=True))


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
    fmt = _sniff(data)
    if fmt is None:
        raise ImageReadError(path, "not a recognised image format (expected DICOM, PNG, JPEG, TIFF or NPY)")
    if fmt == "dicom":
        from tfsal.data import dicom

        pixels, info = dicom.read_dicom(path, max_pixels=max_pixels, raw=mask)
        meta = ImageMeta(source=str(path), format=fmt, **info)
    else:
        height, width = _header_size(fmt, data, path)
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
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(path, f"cannot open file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    return data


def file_format(path: str | os.PathLike) -> str | None:
    """The format of the file at ``path`` named from its first bytes (as :func:`read_image`
    decides it), or None for an unknown format or a file that cannot be opened."""
    try:
        with open(path, "rb") as handle:
            return _sniff(handle.read(132))
    except OSError:
        return None


def _sniff(data: bytes) -> str | None:
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

def _header_size(fmt: str, data: bytes, path: Path) -> tuple[int, int]:
    try:
        return {"png": _png_size, "jpeg": _jpeg_size, "tiff": _tiff_size, "npy": _npy_size}[fmt](data)
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


# --- decoding -----------------------------------------------------------------------------

def _load_npy(data: bytes) -> np.ndarray:
    array = np.load(io.BytesIO(data), allow_pickle=False)
    return array.reshape(array.shape[:2])


def _decode_raster(fmt: str, data: bytes, path: Path) -> np.ndarray:
    """Decode PNG/JPEG/TIFF bytes with OpenCV, keeping bit depth and channels."""
    import cv2

    with quiet_stderr() as captured:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        said = " ".join("".join(captured).split())
        detail = f": {said[:200]}" if said else ""
        raise ImageReadError(path, f"corrupt or truncated {fmt.upper()} file; the decoder failed{detail}")
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
