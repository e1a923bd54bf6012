"""Checks on a DICOM file's compressed content before pydicom expands it.

Two ways a small file claims a lot of memory: a deflated data set (Deflated Explicit VR Little
Endian) that pydicom would inflate whole before anything is checked (a 1 MB file inflating to
1 GB), and a compressed frame whose own header declares a far larger image than the data set's
Rows x Columns (a JPEG 2000 stream of 8000 x 8000 in a 64 x 64 image) that a decoder would
decode in full. The first is inflated here with a cap; the second is refused by reading the
frame's own header (JPEG SOF, JPEG-LS SOF55, JPEG 2000 SIZ) before decoding.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from tfsal.errors import ImageReadError

__all__ = ["DEFLATED", "check_decoder", "check_frame_size", "declared_frame_size", "decode_failure", "read_deflated"]

DEFLATED = "1.2.840.10008.1.2.1.99"
"""The Deflated Explicit VR Little Endian transfer syntax."""

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}  # 0xF7: JPEG-LS


_HEAD_BYTES = 64 * 1024
"""How much of a deflated data set is inflated first, to read the header that bounds the rest."""


def read_deflated(path: Path, meta, limit: int, max_pixels: int | None = None):
    """The data set of a deflated DICOM file (``meta``: its file meta group, already read), inflated
    to at most ``limit`` bytes, and no further than its own header allows: the first 64 KiB are
    inflated and their Rows, Columns, bits, samples and frames bound the pixel data (plus 1 MiB for
    the other elements), and Rows x Columns over ``max_pixels`` is refused before anything more is
    inflated.

    Raises:
        ImageReadError: the inflated data set would exceed its bound, its image is over
            ``max_pixels``, or it is not valid deflate data.
    """
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    data = path.read_bytes()
    start = (132 if data[128:132] == b"DICM" else 0) + 12 + int(meta.FileMetaInformationGroupLength)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        head = inflater.decompress(data[start:], min(limit, _HEAD_BYTES))
        bound = min(limit, len(head) + _declared_bytes(path, head, max_pixels) + 2**20)
        inflated = head + inflater.decompress(inflater.unconsumed_tail, max(bound - len(head), 0) + 1)
    except zlib.error as exc:
        raise ImageReadError(path, f"corrupt deflated DICOM data set ({exc})") from None
    if len(inflated) > bound or (inflater.unconsumed_tail and not inflater.eof):  # bytes after the end: padding
        if bound < limit:
            raise ImageReadError(path, "deflated DICOM data set inflates to more than its header's image size allows")
        raise ImageReadError(path, f"deflated DICOM data set inflates to more than {limit / 2**20:.3g} MB "
                                   "(TFSAL_MAX_FILE_MB)")
    ds = pydicom.dcmread(io.BytesIO(inflated), force=True)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what the inflated bytes are
    ds.file_meta = meta
    return ds


def _declared_bytes(path: Path, head: bytes, max_pixels: int | None) -> int:
    """The pixel data's size as the header in ``head`` declares it (a large number when the header
    cannot be read from it); Rows x Columns over ``max_pixels`` is refused here."""
    import pydicom

    from tfsal.data.formats import check_size

    try:
        header = pydicom.dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
        rows, cols = int(header.Rows), int(header.Columns)
        bits = int(header.get("BitsAllocated", 16) or 16)
        samples = int(header.get("SamplesPerPixel", 1) or 1)
        frames = int(header.get("NumberOfFrames", 1) or 1)
    except Exception:  # a header longer than the head, or none: only the file-size limit bounds it
        return 2**62
    if max_pixels is not None:
        check_size(path, rows, cols, max_pixels)
    return rows * cols * max(bits // 8, 1) * samples * frames


def declared_frame_size(frame: bytes) -> tuple[int, int] | None:
    """``(rows, columns)`` a compressed frame's own header declares: a JPEG or JPEG-LS start of
    frame, or a JPEG 2000 SIZ segment (raw codestream or inside a JP2 file); None when it has none
    that is recognised (RLE, or an unknown layout)."""
    siz = frame.find(b"\xff\x4f\xff\x51")  # JPEG 2000: SOC then SIZ
    if siz >= 0 and len(frame) >= siz + 24:
        x_size, y_size, x_origin, y_origin = struct.unpack(">4I", frame[siz + 8:siz + 24])
        return y_size - y_origin, x_size - x_origin
    if not frame.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 4 <= len(frame):  # JPEG segments up to the start of frame
        if frame[position] != 0xFF:
            return None
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = struct.unpack(">H", frame[position + 2:position + 4])[0]
        if marker in _JPEG_SOF and position + 9 <= len(frame):
            rows, columns = struct.unpack(">HH", frame[position + 5:position + 9])
            return rows, columns
        position += 2 + length
    return None


def check_frame_size(path: Path, ds, rows: int, cols: int) -> None:
    """Refuse a compressed image whose first frame declares another size than Rows x Columns."""
    from pydicom.encaps import generate_frames

    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:  # not encapsulated as expected: the decoder says what is wrong
        return
    declared = declared_frame_size(frame[:65536])
    if declared is not None and declared != (rows, cols) and declared[0] > 0:
        raise ImageReadError(path, f"the compressed frame declares {declared[0]}x{declared[1]} pixels but the "
                                   f"header says {rows}x{cols}; not decoded")


def decode_failure(tsyntax, exc: Exception) -> str:
    """One line for a decoder's failure: pydicom lists each plugin's refusal on a line of its own,
    and a JPEG syntax without the opt-in GPL decoder says where it comes from."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (f"cannot decode DICOM pixel data ({tsyntax.name}): {type(exc).__name__}: {' '.join(lines[:3])}"
            f"{_jpeg_hint(tsyntax)}")


def _jpeg_hint(tsyntax) -> str:
    """For a JPEG syntax without pylibjpeg-libjpeg: where the decoder it may need comes from."""
    from importlib.util import find_spec

    if "JPEG" not in tsyntax.name or "2000" in tsyntax.name or "LS" in tsyntax.name or find_spec("libjpeg"):
        return ""
    return "; 12-bit JPEG needs pip install 'tfsal[gpl-jpeg]' (pylibjpeg-libjpeg, GPL-3.0)"


def check_decoder(path: Path, tsyntax) -> None:
    """Refuse a compressed transfer syntax that no installed plugin decodes."""
    from pydicom.pixels import get_decoder

    if not tsyntax.is_transfer_syntax:
        raise ImageReadError(path, f"unknown transfer syntax {tsyntax}; pydicom has no decoder for it")
    if not tsyntax.is_compressed:
        return
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise ImageReadError(path, f"no decoder for transfer syntax {tsyntax.name} ({tsyntax}) in pydicom "
                                   "or its installed plugins") from None
    if not decoder.is_available:
        missing = list(decoder.missing_dependencies)
        raise ImageReadError(path, f"no decoder installed for transfer syntax {tsyntax.name} ({tsyntax}); "
                                   f"plugins: {'; '.join(missing) or 'none'}")
