"""DICOM reading (pixel steps in the standard's order) and writing of synthetic mammograms.

Reading, :func:`read_dicom`, applies one function per pixel step, in this order:

1. :func:`modality_step` - the Modality LUT or rescale slope/intercept (PS3.3 C.11.1);
2. :func:`voi_step` - the VOI LUT Sequence, else the first window (PS3.3 C.11.2), with the
   result scaled to [0, 1] by the window's output range; without either, unsigned data
   without rescale is divided by its nominal range ``2**BitsStored - 1`` and anything
   else is min-max scaled;
3. :func:`photometric_step` - MONOCHROME1 inverted as ``1 - x`` (PS3.3 C.7.6.3.1.2).

Compressed transfer syntaxes are decoded by pydicom's plugins: GDCM (JPEG baseline and
lossless), pylibjpeg-openjpeg (JPEG 2000), pyjpegls (JPEG-LS) and pydicom itself (RLE, deflate);
12-bit JPEG Extended needs the opt-in extra ``tfsal[gpl-jpeg]`` (pylibjpeg-libjpeg, GPL-3.0).
Header checks (pixel data present, single frame, grayscale, size) run before any pixel is decoded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfsal.data.dicom_guard import DEFLATED, check_decoder, check_frame_size, decode_failure, read_deflated
from tfsal.data.formats import check_size, max_file_bytes
from tfsal.errors import ImageReadError
from tfsal.util import atomic
from tfsal.util.quiet import quiet_libraries

__all__ = ["modality_step", "photometric_step", "read_dicom", "voi_step", "write_mammogram_dicom"]

# pixel data elements: (7FE0,0010) Pixel Data, (7FE0,0008) Float, (7FE0,0009) Double Float
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
_HEADER_DEFER = "512 KB"  # larger element values are read only when used


def read_dicom(path: str | os.PathLike, *, max_pixels: int, raw: bool = False) -> tuple[np.ndarray, dict]:
    """Read a single-frame grayscale DICOM image.

    Args:
        path: the DICOM file (with or without the 128-byte preamble).
        max_pixels: refuse images whose Rows x Columns exceed this, before decoding.
        raw: return the stored values (for masks) instead of the display values in [0, 1].

    Returns:
        ``(pixels, info)``: float64 ``[H, W]`` in [0, 1] (or the stored values when
        ``raw``), and the :class:`~tfsal.data.image_io.ImageMeta` fields taken from the
        header (size, spacing, laterality, view, photometric, bits stored).

    Raises:
        ImageReadError: not DICOM, no pixel data, multi-frame, colour, bad size, a transfer
            syntax without an installed decoder, or pixel data that cannot be decoded.
    """
    path = Path(path)
    with quiet_libraries("pydicom"):
        ds = _read_header(path, max_pixels)
        rows, cols = _check_header(path, ds)
        check_size(path, rows, cols, max_pixels)
        stored = _decode(path, ds, rows, cols)
        pixels = stored if raw else photometric_step(voi_step(modality_step(stored, ds), ds), ds)
    if not raw and pixels.min() == pixels.max() and stored.min() != stored.max():
        raise ImageReadError(path, f"constant image after the VOI LUT or window ({_window_text(ds)}): "
                                   f"every pixel is {float(pixels.flat[0]):g}")
    return pixels, _meta_fields(ds, rows, cols)


def _window_text(ds) -> str:
    if _has_voi_lut(ds):
        return "VOI LUT Sequence"
    return f"(0028,1050) Window Center {ds.get('WindowCenter')}, (0028,1051) Window Width {ds.get('WindowWidth')}"


def _read_header(path: Path, max_pixels: int | None = None):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except (InvalidDicomError, ValueError, OSError, EOFError):
        meta = None  # no file meta: read as before
    if meta is not None and meta.get("TransferSyntaxUID") == DEFLATED:
        return read_deflated(path, meta, max_file_bytes(), max_pixels)  # inflated here with a cap, not by pydicom
    try:
        return pydicom.dcmread(path, defer_size=_HEADER_DEFER)
    except InvalidDicomError:
        try:  # no preamble / no file meta: let pydicom guess the encoding
            return pydicom.dcmread(path, defer_size=_HEADER_DEFER, force=True)
        except Exception as exc:
            raise ImageReadError(path, f"not a readable DICOM file ({exc})") from exc
    except Exception as exc:
        raise ImageReadError(path, f"corrupt or truncated DICOM header ({type(exc).__name__}: {exc})") from exc


def _sop_class_name(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
    if not uid:
        return "unknown SOP class"
    name = getattr(uid, "name", "") or str(uid)
    return f"SOP class {name}"


def _check_header(path: Path, ds) -> tuple[int, int]:
    """Check that ``ds`` holds one grayscale frame; return (Rows, Columns)."""
    if not any(tag in ds for tag in _PIXEL_TAGS):
        raise ImageReadError(path, f"DICOM file has no pixel data ({_sop_class_name(ds)}); it is not an image")
    frames = _int(ds.get("NumberOfFrames", 1), 1)
    if frames > 1:
        raise ImageReadError(path, f"multi-frame images ({frames} frames) are not supported; "
                                   "export a single frame")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = _int(ds.get("SamplesPerPixel", 1), 1)
    if not photometric:
        raise ImageReadError(path, "DICOM header lacks (0028,0004) Photometric Interpretation")
    if samples != 1 or photometric not in _GRAYSCALE:
        raise ImageReadError(path, f"colour image ((0028,0004) Photometric Interpretation "
                                   f"{photometric}, {samples} samples per pixel); "
                                   "a grayscale image is needed")
    for keyword, tag in (("Rows", "(0028,0010)"), ("Columns", "(0028,0011)")):
        if ds.get(keyword) is None:
            raise ImageReadError(path, f"DICOM header lacks {tag} {keyword}")
    return int(ds.Rows), int(ds.Columns)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _decode(path: Path, ds, rows: int, cols: int) -> np.ndarray:
    """Decode the pixel data of ``ds``; refuse missing decoders and wrong shapes."""
    from tfsal.util.quiet import quiet_stderr

    tsyntax = _transfer_syntax(path, ds)
    check_decoder(path, tsyntax)
    if tsyntax.is_compressed:
        check_frame_size(path, ds, rows, cols)  # the frame's own header, before its decoder runs
    with quiet_stderr():
        try:
            pixels = ds.pixel_array
        except Exception as exc:
            raise ImageReadError(path, decode_failure(tsyntax, exc)) from exc
    if pixels.shape != (rows, cols):
        raise ImageReadError(path, f"decoded pixel data has shape {pixels.shape}, expected {(rows, cols)}")
    return pixels


def _transfer_syntax(path: Path, ds):
    """The dataset's transfer syntax; guessed from the encoding when there is no file meta."""
    from pydicom.uid import (
        UID,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        implicit, little = getattr(ds, "original_encoding", (None, None))
        if implicit is None:
            raise ImageReadError(path, "DICOM file has no (0002,0010) Transfer Syntax UID and its "
                                       "encoding cannot be guessed")
        uid = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        ds.file_meta.TransferSyntaxUID = uid
    return UID(uid)


def modality_step(stored: np.ndarray, ds) -> np.ndarray:
    """Apply the Modality LUT or rescale slope/intercept (DICOM PS3.3 C.11.1).

    Args:
        stored: the stored pixel values.
        ds: the dataset with the Modality LUT module (unchanged values without one).

    Returns:
        The modality values (float64 when rescaled).
    """
    from pydicom.pixels import apply_modality_lut

    return apply_modality_lut(stored, ds)


def voi_step(values: np.ndarray, ds) -> np.ndarray:
    """Apply the VOI LUT (PS3.3 C.11.2) and scale the result to [0, 1].

    The VOI LUT Sequence is preferred, else the first window (Window Center/Width). The
    output is divided by the VOI output range: ``2**n - 1`` for a LUT of ``n`` bits per
    entry, the range pydicom's ``apply_windowing`` maps onto for a window. Without a VOI
    LUT, unsigned data without rescale or Modality LUT is divided by ``2**BitsStored - 1``
    and anything else is min-max scaled.

    Args:
        values: modality values from :func:`modality_step`.
        ds: the dataset with the VOI LUT module.

    Returns:
        float64 values in [0, 1].
    """
    from pydicom.pixels import apply_voi_lut

    out = values.astype(np.float64)
    if _has_voi_lut(ds):
        low, high = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
        out = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64)
    elif ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        low, high = _window_output_range(ds)
        out = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64)
    elif _is_plain_unsigned(ds):
        low, high = 0.0, float(2 ** int(ds.BitsStored) - 1)
    else:
        low, high = float(out.min()), float(out.max())
    if high <= low:
        return np.zeros_like(out) if high == low else np.clip((out - low) / (high - low), 0.0, 1.0)
    return np.clip((out - low) / (high - low), 0.0, 1.0)


def _has_voi_lut(ds) -> bool:
    seq = ds.get("VOILUTSequence")
    return bool(seq) and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None


def _is_plain_unsigned(ds) -> bool:
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    return (int(ds.get("PixelRepresentation", 0)) == 0 and slope == 1 and intercept == 0
            and not ds.get("ModalityLUTSequence") and ds.get("BitsStored") is not None)


def _window_output_range(ds) -> tuple[float, float]:
    """The range pydicom's windowing maps onto (mirrors ``apply_windowing``)."""
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        low, high = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    elif int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return min(low, high), max(low, high)


def photometric_step(values: np.ndarray, ds) -> np.ndarray:
    """Invert MONOCHROME1 as ``1 - x`` so that high always means bright (PS3.3 C.7.6.3.1.2).

    Args:
        values: display values in [0, 1] from :func:`voi_step`.
        ds: the dataset (its Photometric Interpretation).

    Returns:
        Values in [0, 1], MONOCHROME2 sense.
    """
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        return 1.0 - values
    return values


def _meta_fields(ds, rows: int, cols: int) -> dict:
    """Geometry and display fields of the header; never patient data."""
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    try:
        spacing = (float(spacing[0]), float(spacing[1])) if spacing and len(spacing) == 2 else None
    except (TypeError, ValueError):
        spacing = None
    laterality = str(ds.get("ImageLaterality") or ds.get("Laterality") or "").strip().upper()
    view = str(ds.get("ViewPosition") or "").strip().upper()
    bits = ds.get("BitsStored")
    return {
        "original_size": (rows, cols),
        "pixel_spacing": spacing,
        "laterality": laterality if laterality in ("L", "R") else None,
        "view": view or None,
        "photometric": str(ds.get("PhotometricInterpretation", "")).strip().upper() or None,
        "bits_stored": int(bits) if bits is not None else None,
    }


def write_mammogram_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    pixel_spacing: tuple[float, float] = (0.1, 0.1),
    laterality: str = "L",
    view: str = "CC",
    uid_seed: str = "",
) -> Path:
    """Write a synthetic Digital Mammography X-Ray Image (For Presentation), atomically.

    12 bits stored in 16, unsigned, explicit VR little endian, Modality MG, window
    2048/4096 (the full range, so :func:`read_dicom` gives ``pixels / 4095``). For
    MONOCHROME1 the stored values are ``4095 - pixels``, so the displayed picture is the
    same. Patient name and ID are ``SYNTHETIC``; UIDs derive from ``uid_seed``; no dates:
    the same arguments always give the same bytes.

    Args:
        path: the file to write.
        pixels: integer ``[H, W]`` values in 0..4095, high = dense/bright.
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"``.
        pixel_spacing: ``(row_mm, col_mm)`` written as PixelSpacing and ImagerPixelSpacing.
        laterality: ``"L"`` or ``"R"``.
        view: the view position, e.g. ``"CC"`` or ``"MLO"``.
        uid_seed: seed of the study, series, frame-of-reference and instance UIDs.

    Returns:
        ``path``.

    Raises:
        ValueError: ``pixels`` is not 2-D integer data in 0..4095, or an argument is not
            one of its allowed values.
    """
    pixels = _check_mammogram_args(pixels, photometric, laterality)
    stored = 4095 - pixels if photometric == "MONOCHROME1" else pixels
    ds = _mammogram_dataset(stored, photometric, pixel_spacing, laterality, view, uid_seed)
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


def _check_mammogram_args(pixels, photometric: str, laterality: str) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype.kind not in "ui":
        raise ValueError(f"pixels must be 2-D integers; received shape {pixels.shape}, dtype {pixels.dtype}.")
    if pixels.size == 0 or pixels.min() < 0 or pixels.max() > 4095:
        raise ValueError(f"pixels must lie in 0..4095 (12 bits); received range "
                         f"{pixels.min() if pixels.size else None}..{pixels.max() if pixels.size else None}.")
    if photometric not in _GRAYSCALE:
        raise ValueError(f"photometric must be one of {_GRAYSCALE}; received {photometric!r}.")
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R'; received {laterality!r}.")
    return pixels.astype(np.uint16)


def _mammogram_dataset(stored, photometric, pixel_spacing, laterality, view, uid_seed):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def uid(kind: str):
        return generate_uid(entropy_srcs=["tfsal", uid_seed, kind])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = uid("instance")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MG_FOR_PRESENTATION, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("series")
    ds.FrameOfReferenceUID = uid("frame")
    ds.PatientName, ds.PatientID = "SYNTHETIC", "SYNTHETIC"
    ds.Modality, ds.ImageType = "MG", ["DERIVED", "SECONDARY"]
    ds.PresentationIntentType, ds.BurnedInAnnotation = "FOR PRESENTATION", "NO"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    spacing = [f"{float(pixel_spacing[0]):g}", f"{float(pixel_spacing[1]):g}"]
    ds.PixelSpacing, ds.ImagerPixelSpacing = spacing, spacing
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = "2048", "4096", "LINEAR"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    return ds
