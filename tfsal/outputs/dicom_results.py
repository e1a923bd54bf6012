"""DICOM-native results of ``tfsal explain``: a Segmentation and a Secondary Capture.

For a DICOM source image :func:`write_dicom_results` writes

* ``<stem>_seg.dcm``: a binary DICOM Segmentation (highdicom) with one segment, "salient region",
  on the source's own pixel grid, referencing the source image;
* ``<stem>_overlay.dcm``: a Secondary Capture (RGB) of the saliency overlay,

both in the source's study (patient and study attributes copied from it), each in a new series.
:func:`tfsal.outputs.dicom_send.send_dicom` stores such files on a DICOM node (C-STORE).

highdicom and pynetdicom are the optional extra ``tfsal[dicom]``; without them these functions
raise :class:`~tfsal.errors.TfsalError` saying so. Patient data go into the DICOM files only:
error messages name files by path and never quote header values, and log records and warnings
of highdicom, pydicom and pynetdicom (which can quote names and UIDs) are dropped while these
functions run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from tfsal import __version__
from tfsal.errors import TfsalError
from tfsal.util import atomic
from tfsal.util.quiet import quiet_libraries

log = logging.getLogger(__name__)

__all__ = ["LIBRARIES", "DicomResultError", "require_dicom_extra", "write_dicom_results"]

LIBRARIES = ("highdicom", "pydicom", "pynetdicom")
"""Libraries whose log records and warnings are dropped: they quote header values (patient data)."""
INSTALL_HINT = "DICOM output needs highdicom and pynetdicom; install tfsal[dicom] (pip install 'tfsal[dicom]')"
"""The one line that names the missing extra."""
SEGMENT_LABEL = "salient region"
"""The label of the Segmentation's one segment."""
SEG_SERIES_NUMBER, OVERLAY_SERIES_NUMBER = 9001, 9002
"""Series numbers of the new Segmentation and Secondary Capture series."""
SEG_SERIES_DESCRIPTION = "tfsal salient region (SEG)"
"""Series description of the Segmentation."""
OVERLAY_SERIES_DESCRIPTION = "tfsal saliency overlay"
"""Series description of the Secondary Capture."""

# Type 2 attributes of the patient and study modules: a conforming image has them, possibly empty,
# but highdicom's Segmentation reads them as attributes and fails where a file omits one.
_TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                        "ReferringPhysicianName", "StudyID", "AccessionNumber")
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")


class DicomResultError(TfsalError):
    """A DICOM result cannot be made from a source file: ``<path>: <reason>``, on one line."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")


# --- optional dependencies and quiet libraries --------------------------------------------------

def require_dicom_extra():
    """The highdicom and pynetdicom modules, or a :class:`TfsalError` saying how to install them."""
    try:
        import highdicom
        import pynetdicom
    except ImportError as exc:
        raise TfsalError(f"{INSTALL_HINT}: {exc}") from None
    return highdicom, pynetdicom


# --- Segmentation and Secondary Capture -----------------------------------------------------------

def write_dicom_results(source: str | os.PathLike, mask: np.ndarray, overlay_bgr: np.ndarray,
                        out_dir: str | os.PathLike, stem: str) -> list[str]:
    """Write ``<stem>_seg.dcm`` and ``<stem>_overlay.dcm`` for one DICOM source image, atomically.

    Args:
        source: the source DICOM file (single frame); its pixel data are not read.
        mask: the result mask at the source's pixels, ``Rows x Columns``, True = salient.
        overlay_bgr: the saliency overlay, ``Rows x Columns x 3`` uint8 in OpenCV (BGR) order, as
            :func:`tfsal.outputs.drawing.explanation_overlay` makes it.
        out_dir: the output folder (created).
        stem: the output file names' stem.

    Returns:
        The names of the files written, Segmentation first.

    Raises:
        TfsalError: the extra ``tfsal[dicom]`` is missing; or (:class:`DicomResultError`, naming
            ``source``) the source is not a usable DICOM image, the mask or overlay does not match
            its Rows x Columns, highdicom refuses to build either object, or a file cannot be written.
    """
    hd, _ = require_dicom_extra()
    with quiet_libraries(*LIBRARIES):
        header = _read_source(source)
        mask, rgb = _check_arrays(source, header, mask, overlay_bgr)
        try:
            datasets = {f"{stem}_seg.dcm": _segmentation(hd, header, mask),
                        f"{stem}_overlay.dcm": _overlay(hd, header, rgb)}
        except Exception as exc:  # highdicom raises many kinds for headers it cannot use
            raise DicomResultError(source, f"cannot make DICOM results: {_build_failure(exc, header)}") from None
        saved = []
        try:
            for name, dataset in datasets.items():
                _save(source, dataset, Path(out_dir) / name)
                saved.append(Path(out_dir) / name)
        except BaseException:  # both or neither
            for path in saved:
                path.unlink(missing_ok=True)
            raise
    log.info("wrote %s", ", ".join(datasets))
    return list(datasets)


def _read_source(path: str | os.PathLike):
    """The source's header (no pixel data), with missing Type 2 patient/study attributes added empty."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:  # no preamble or file meta: accept only if the content is DICOM
            header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except FileNotFoundError:
        raise DicomResultError(path, "no such file") from None
    except OSError as exc:
        raise DicomResultError(path, f"cannot read: {exc.strerror or exc}") from None
    except Exception:  # pydicom raises many kinds on garbage; none is worth more than this
        raise DicomResultError(path, "not a DICOM file") from None
    try:
        missing = [keyword for keyword in _REQUIRED if keyword not in header or header[keyword].value in (None, "")]
    except Exception:  # a forced read of garbage can fail on first access of an element
        raise DicomResultError(path, "not a DICOM file") from None
    if len(missing) == len(_REQUIRED):
        raise DicomResultError(path, "not a DICOM file")
    if missing:
        raise DicomResultError(path, f"DICOM file lacks {', '.join(missing)}; it is not a usable image")
    if int(header.get("NumberOfFrames", 1) or 1) != 1:
        raise DicomResultError(path, "multi-frame DICOM images are not supported")
    _complete_patient_study(path, header)
    return header


def _complete_patient_study(path, header) -> None:
    """Make the patient/study attributes acceptable to highdicom, or refuse without quoting them.

    Missing Type 2 attributes are added empty; a Patient's Sex outside M/F/O (``U`` is common)
    becomes empty, as highdicom refuses it; a malformed date or time is refused by name, since
    highdicom's own message would quote the value.
    """
    from pydicom.valuerep import DA, TM

    for keyword in _TYPE2_PATIENT_STUDY:
        if keyword not in header:
            setattr(header, keyword, "")
    if str(header.PatientSex or "").strip().upper() not in ("", "M", "F", "O"):
        header.PatientSex = ""
    for keyword, kind in (("PatientBirthDate", DA), ("StudyDate", DA), ("StudyTime", TM)):
        try:
            kind(header[keyword].value or "")
        except (ValueError, TypeError):
            raise DicomResultError(path, f"DICOM {keyword} is not a valid DICOM {kind.__name__} value") from None


def _check_arrays(source, header, mask, overlay_bgr) -> tuple[np.ndarray, np.ndarray]:
    """The mask as bool and the overlay as RGB, after checking both against Rows x Columns."""
    size = (int(header.Rows), int(header.Columns))
    mask = np.asarray(mask)
    if mask.shape != size:
        raise DicomResultError(source, f"mask shape {mask.shape} does not match the image's Rows x Columns {size}")
    if mask.dtype != bool and not (mask.dtype.kind in "ui" and np.isin(mask, (0, 1)).all()):
        raise DicomResultError(source, f"mask must be boolean (or 0/1); received dtype {mask.dtype}")
    overlay_bgr = np.asarray(overlay_bgr)
    if overlay_bgr.shape != (*size, 3) or overlay_bgr.dtype != np.uint8:
        raise DicomResultError(source, f"overlay must be uint8 of shape {(*size, 3)}; received "
                                       f"{overlay_bgr.dtype} of shape {overlay_bgr.shape}")
    return mask.astype(bool), np.ascontiguousarray(overlay_bgr[:, :, ::-1])


def _segmentation(hd, header, mask: np.ndarray):
    """A BINARY Segmentation of ``mask`` (one frame, kept even when empty) derived from ``header``."""
    seg = hd.seg.Segmentation(
        source_images=[header], pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment_description(hd)],
        series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="tfsal", manufacturer_model_name="tfsal", software_versions=__version__,
        device_serial_number="1", content_label="SALIENCY",
        content_description="Salient region of a counterfactual saliency map",
        omit_empty_frames=False, series_description=SEG_SERIES_DESCRIPTION,
    )
    _drop_incomplete_pixel_measures(seg)
    return seg


def _segment_description(hd):
    from pydicom.sr.codedict import codes

    return hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.SpatialAndRelationalConcept,
        segmented_property_type=codes.DCM.Saliency,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="tfsal", version=__version__, family=codes.DCM.ArtificialIntelligence),
    )


def _drop_incomplete_pixel_measures(seg) -> None:
    """Remove a shared Pixel Measures item that has Pixel Spacing but no Slice Thickness.

    highdicom 0.28 writes one for projection images (mammograms have Pixel Spacing but no
    Slice Thickness), and its own reader (``segread``) then refuses the file. The frame is the
    source's pixel grid (Derivation Image Sequence, Spatial Locations Preserved YES), so the
    spacing is the source's anyway.
    """
    shared = seg.SharedFunctionalGroupsSequence[0]
    measures = shared.get("PixelMeasuresSequence")
    if measures and "SliceThickness" not in measures[0]:
        del shared.PixelMeasuresSequence


def _overlay(hd, header, rgb: np.ndarray):
    """A Secondary Capture of ``rgb`` in ``header``'s study, referencing it as its source."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian

    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header, pixel_array=rgb, photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8, coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=hd.UID(), series_number=OVERLAY_SERIES_NUMBER, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="tfsal", pixel_spacing=_pixel_spacing(header),
        laterality=_laterality(header),
        # highdicom accepts single-letter orientations only (mammograms use e.g. "A\FR"): pass a
        # placeholder and put the source's value, the right one for the same pixel grid, after.
        patient_orientation=("L", "F"), transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=OVERLAY_SERIES_DESCRIPTION,
    )
    sc.PatientOrientation = header.get("PatientOrientation", "")
    # the overlay is drawn on the source's pixels, so it carries whatever text they carry; a source
    # that does not say is taken to carry some (a receiver then treats the image with care)
    burned_in = str(header.get("BurnedInAnnotation", "")).upper()
    sc.BurnedInAnnotation = burned_in if burned_in in ("YES", "NO") else "YES"
    sc.DerivationDescription = "Saliency overlay made by tfsal"
    source_item = Dataset()
    source_item.ReferencedSOPClassUID = header.SOPClassUID
    source_item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    sc.SourceImageSequence = [source_item]
    return sc


def _pixel_spacing(header) -> tuple[float, float] | None:
    try:
        row, col = (float(v) for v in header.PixelSpacing)
    except (AttributeError, TypeError, ValueError):
        return None
    return (row, col) if row > 0 and col > 0 else None


def _laterality(header) -> str | None:
    for keyword in ("Laterality", "ImageLaterality"):
        value = str(header.get(keyword, "") or "").strip().upper()
        if value in ("L", "R"):
            return value
    return None


def _save(source, dataset, path: Path) -> None:
    """Write ``dataset`` as a DICOM file (preamble and file meta) at ``path``, atomically."""
    import pydicom

    try:
        with atomic.atomic_path(path) as tmp:
            pydicom.dcmwrite(tmp, dataset, enforce_file_format=True)
    except OSError as exc:
        raise DicomResultError(source, f"cannot write {path}: {exc.strerror or exc}") from None


def _build_failure(exc: Exception, header) -> str:
    """Why highdicom could not build an object from ``header``, on one line, without patient data."""
    if isinstance(exc, KeyError) and exc.args and exc.args[0] == header.SOPClassUID:
        return f"SOP class {header.SOPClassUID} is not a standard storage class; highdicom cannot derive from it"
    text = " ".join(str(exc).split())
    text = text if isinstance(exc, ValueError) and text else f"{type(exc).__name__}: {text}"
    return _redact(text, header)


# Values that can identify a patient: names, dates and ages, the patient group (0010,xxxx) and
# the study's and site's identifiers.
_IDENTIFYING_VRS = {"PN", "DA", "TM", "DT", "AS"}
_IDENTIFYING_KEYWORDS = {"AccessionNumber", "StudyID", "StudyDescription", "InstitutionName", "InstitutionAddress",
                         "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber"}


def _redact(text: str, header) -> str:
    """``text`` with the identifying values of ``header`` replaced by ``<redacted>``.

    Library messages quote the values they refuse (a birth date, a name); ours must not. Short
    values (a sex, a digit) are only replaced where quoted, so words stay readable.
    """
    values: set[str] = set()
    for element in header:
        identifying = (element.VR in _IDENTIFYING_VRS or element.tag.group == 0x0010
                       or element.keyword in _IDENTIFYING_KEYWORDS)
        if not identifying or element.VR == "SQ" or element.value in (None, ""):
            continue
        for item in element.value if element.VM > 1 else [element.value]:
            values.add(str(item))
            values.update(str(item).split("^"))  # person name components
    for value in sorted((v.strip() for v in values if v.strip()), key=len, reverse=True):
        for quoted in (f"'{value}'", f'"{value}"'):
            text = text.replace(quoted, "'<redacted>'")
        if len(value) >= 3:
            text = text.replace(value, "<redacted>")
    return text
