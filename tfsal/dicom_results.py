"""DICOM-native results of ``tfsal explain``: a Segmentation, a Secondary Capture, C-STORE.

For a DICOM source image :func:`write_dicom_results` writes

* ``<stem>_seg.dcm``: a binary DICOM Segmentation (highdicom) with one segment, "salient region",
  on the source's own pixel grid, referencing the source image;
* ``<stem>_overlay.dcm``: a Secondary Capture (RGB) of the saliency overlay,

both in the source's study (patient and study attributes copied from it), each in a new series.
:func:`send_dicom` stores such files on a DICOM node (C-STORE, pynetdicom), and
:func:`parse_dicom_address` checks the ``[AET@]HOST:PORT`` text that names the node.

highdicom and pynetdicom are the optional extra ``tfsal[dicom]``; without them these functions
raise :class:`~tfsal.errors.TfsalError` saying so. Patient data go into the DICOM files only:
error messages name files by path and never quote header values, and log records and warnings
of highdicom, pydicom and pynetdicom (which can quote names and UIDs) are dropped while these
functions run.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tfsal import atomic
from tfsal._version import __version__
from tfsal.data.dicom import quiet_libraries
from tfsal.errors import TfsalError

log = logging.getLogger(__name__)

__all__ = ["DicomAddress", "DicomResultError", "DicomSendError", "parse_dicom_address", "require_dicom_extra",
           "send_dicom", "write_dicom_results"]

LIBRARIES = ("highdicom", "pydicom", "pynetdicom")  # they quote header values in warnings and logs
INSTALL_HINT = "DICOM output needs highdicom and pynetdicom; install tfsal[dicom] (pip install 'tfsal[dicom]')"
SEGMENT_LABEL = "salient region"
SEG_SERIES_NUMBER = 9001
OVERLAY_SERIES_NUMBER = 9002
SEG_SERIES_DESCRIPTION = "tfsal salient region (SEG)"
OVERLAY_SERIES_DESCRIPTION = "tfsal saliency overlay"
DEFAULT_CALLED_AE = "ANY-SCP"

# Type 2 attributes of the patient and study modules: a conforming image has them, possibly empty,
# but highdicom's Segmentation reads them as attributes and fails where a file omits one.
_TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                        "ReferringPhysicianName", "StudyID", "AccessionNumber")
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")
# C-STORE statuses that mean "stored" (0x0000) or "stored with changes" (PS3.4 B.2.3 warnings).
_STORE_WARNINGS = {0xB000: "coercion of data elements", 0xB006: "elements discarded",
                   0xB007: "data set does not match SOP class"}


class DicomResultError(TfsalError):
    """A DICOM result cannot be made from a source file: ``<path>: <reason>``, on one line."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")


class DicomSendError(TfsalError):
    """Files could not be stored on a DICOM node (no association, or a store failed)."""


class DicomAddress(NamedTuple):
    """A DICOM node: the called AE title, host and TCP port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


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
            :func:`tfsal.drawing.saliency_overlay` makes it.
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
        for name, dataset in datasets.items():
            _save(source, dataset, Path(out_dir) / name)
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
    sc.BurnedInAnnotation = "NO"
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


# --- C-STORE ----------------------------------------------------------------------------------------

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable ASCII except backslash
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)*$")


def parse_dicom_address(text: str) -> DicomAddress:
    """The node named by ``HOST:PORT`` or ``AET@HOST:PORT`` (IPv6 hosts in brackets).

    The called AE title defaults to ``ANY-SCP``. Raises ValueError, with the expected form, for
    anything else: an empty or over-long AE title, a missing host, a port outside 1..65535.
    """
    expected = "expected HOST:PORT or AET@HOST:PORT, e.g. PACS@192.168.1.10:104"
    text = str(text).strip()
    ae_title, at, rest = text.rpartition("@")
    ae_title = ae_title.strip() if at else DEFAULT_CALLED_AE
    if not _AE_TITLE.match(ae_title):
        raise ValueError(f"invalid DICOM address {text!r}: the AE title must be 1 to 16 printable characters "
                         f"without backslash; {expected}")
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d{1,5})|(?P<host>[^:\[\]]+):(?P<port2>\d{1,5})", rest)
    if not match:
        raise ValueError(f"invalid DICOM address {text!r}: {expected}")
    host = match["v6"] or match["host"]
    port = int(match["port"] or match["port2"])
    if not match["v6"] and not _HOST.match(host):
        raise ValueError(f"invalid DICOM address {text!r}: {host!r} is not a host name or IP address")
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid DICOM address {text!r}: the port must be 1..65535")
    return DicomAddress(ae_title, host, port)


def send_dicom(paths: Iterable[str | os.PathLike], address: str | DicomAddress, *, calling_ae: str = "TFSAL",
               timeout: float = 30) -> None:
    """Store DICOM files on a node with C-STORE, over one association.

    Presentation contexts are requested for the SOP classes of the files, each with explicit and
    implicit VR little endian (and the file's own transfer syntax where it is another).

    Args:
        paths: DICOM files, e.g. those :func:`write_dicom_results` wrote.
        address: ``HOST:PORT`` or ``AET@HOST:PORT`` (see :func:`parse_dicom_address`), or a
            :class:`DicomAddress`.
        calling_ae: this application's AE title.
        timeout: seconds allowed for connecting and for each network exchange.

    Raises:
        ValueError: ``address`` is malformed.
        TfsalError: the extra ``tfsal[dicom]`` is missing; a file cannot be read as DICOM;
            (:class:`DicomSendError`) the node cannot be reached or rejects or aborts the
            association, or a store returns a failure status. Messages name files, not patients.
    """
    node = address if isinstance(address, DicomAddress) else parse_dicom_address(address)
    _, pynetdicom = require_dicom_extra()
    paths = [Path(p) for p in paths]
    if not paths:
        return
    with quiet_libraries(*LIBRARIES):
        datasets = [_read_for_sending(path) for path in paths]
        ae = pynetdicom.AE(ae_title=calling_ae)
        for sop_class, syntaxes in _contexts(datasets).items():
            ae.add_requested_context(sop_class, syntaxes)
        ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
        if not assoc.is_established:
            state = "rejected" if assoc.is_rejected else "could not be established (unreachable, timed out or aborted)"
            raise DicomSendError(f"cannot store on {node}: association {state}")
        try:
            failures = [failure for path, dataset in zip(paths, datasets, strict=True)
                        if (failure := _store(assoc, path, dataset, node))]
        finally:
            if assoc.is_established:
                assoc.release()
    if failures:
        raise DicomSendError(f"cannot store on {node}: {'; '.join(failures)}")
    log.info("stored %d file(s) on %s", len(paths), node)


def _read_for_sending(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path)
    except FileNotFoundError:
        raise DicomSendError(f"{path}: no such file") from None
    except Exception:
        raise DicomSendError(f"{path}: not a DICOM file") from None


def _contexts(datasets) -> dict[str, list[str]]:
    """Transfer syntaxes to propose per SOP class: the files' own, then explicit and implicit VR LE."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    contexts: dict[str, list[str]] = {}
    for dataset in datasets:
        syntaxes = contexts.setdefault(str(dataset.SOPClassUID), [])
        own = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        for syntax in (own, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if syntax and str(syntax) not in syntaxes:
                syntaxes.append(str(syntax))
    return contexts


def _store(assoc, path: Path, dataset, node: DicomAddress) -> str | None:
    """C-STORE one dataset; None when stored, else a one-line reason naming the file."""
    if not assoc.is_established:
        return f"{path.name}: association lost before it was sent"
    try:
        status = assoc.send_c_store(dataset)
    except ValueError:  # no accepted presentation context for this SOP class / transfer syntax
        return f"{path.name}: {node.ae_title} accepted no presentation context for its SOP class"
    code = status.get("Status") if status else None
    if code is None:
        return f"{path.name}: no response (timed out or aborted)"
    if code in _STORE_WARNINGS:
        log.warning("%s stored on %s with warning 0x%04X (%s)", path.name, node, code, _STORE_WARNINGS[code])
    elif code != 0x0000:
        return f"{path.name}: failure status 0x{code:04X}"
    return None
