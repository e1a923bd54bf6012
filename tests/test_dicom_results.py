"""Tests of tfsal.outputs.dicom_results: the Segmentation and Secondary Capture written for a DICOM source,
C-STORE to a loopback storage SCP, addresses, and errors that name files but never patients."""

from __future__ import annotations

import logging
import socket
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from tfsal.errors import TfsalError
from tfsal.outputs import dicom_results
from tfsal.outputs.dicom_results import DicomResultError, write_dicom_results
from tfsal.outputs.dicom_send import DicomAddress, DicomSendError, parse_dicom_address, send_dicom

from .conftest import SECONDARY_CAPTURE_STORAGE, SEGMENTATION_STORAGE

hd = pytest.importorskip("highdicom")
pynetdicom = pytest.importorskip("pynetdicom")

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID12345"
ROWS, COLS = 64, 48


def write_mammogram(path: Path, **changes) -> Path:
    """A small MONOCHROME2 16-bit Digital Mammography X-Ray Image (For Presentation) with patient
    data; ``changes`` set (or, given None, delete) header elements."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MG_FOR_PRESENTATION, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = PATIENT_NAME, PATIENT_ID, "19510203", "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20200101", "101010", "ACC998877", "S1"
    ds.ReferringPhysicianName = "Who^Doctor"
    ds.Modality, ds.ImageType = "MG", ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType, ds.BurnedInAnnotation = "FOR PRESENTATION", "NO"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImageLaterality, ds.ViewPosition, ds.PatientOrientation = "L", "MLO", ["A", "FR"]
    ds.PixelSpacing = ds.ImagerPixelSpacing = ["0.07", "0.07"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(ROWS * COLS).reshape(ROWS, COLS) * 7 % 4096).astype("<u2").tobytes()
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def result_arrays(rows: int = ROWS, cols: int = COLS) -> tuple[np.ndarray, np.ndarray]:
    """A mask with an off-centre rectangle and a BGR overlay whose channels differ."""
    mask = np.zeros((rows, cols), bool)
    mask[rows // 5:rows // 2, cols // 8:cols // 2] = True
    overlay = np.zeros((rows, cols, 3), np.uint8)
    overlay[:, :, 0] = 200  # blue in BGR
    overlay[:, :, 1] = np.arange(cols, dtype=np.uint8)[None, :]
    overlay[:, :, 2] = np.arange(rows, dtype=np.uint8)[:, None]
    return mask, overlay


@pytest.fixture
def mammogram(tmp_path) -> Path:
    return write_mammogram(tmp_path / "source.dcm")


@pytest.fixture
def written(tmp_path, mammogram):
    """(source, mask, overlay, out folder, names) after writing the results of the mammogram."""
    mask, overlay = result_arrays()
    out = tmp_path / "out"
    names = write_dicom_results(mammogram, mask, overlay, out, "case1")
    return mammogram, mask, overlay, out, names


# --- the files ------------------------------------------------------------------------------------

def test_writes_seg_and_overlay_and_no_temporary_files(written):
    _, _, _, out, names = written
    assert names == ["case1_seg.dcm", "case1_overlay.dcm"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


def test_seg_reads_back_with_the_mask_and_references_the_source(written):
    source, mask, _, out, _ = written
    src = pydicom.dcmread(source)
    seg = hd.seg.segread(out / "case1_seg.dcm")
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.SegmentationType == "BINARY"
    assert (seg.Rows, seg.Columns, int(seg.NumberOfFrames)) == (ROWS, COLS, 1)
    assert np.array_equal(seg.pixel_array.astype(bool), mask)
    by_source = seg.get_pixels_by_source_instance([src.SOPInstanceUID], segment_numbers=[1])
    assert by_source.shape == (1, ROWS, COLS, 1) and np.array_equal(by_source[0, :, :, 0].astype(bool), mask)
    assert seg.get_source_image_uids() == [(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID)]
    assert seg.StudyInstanceUID == src.StudyInstanceUID
    assert seg.SeriesInstanceUID != src.SeriesInstanceUID and seg.SOPInstanceUID != src.SOPInstanceUID
    assert (seg.PatientName, seg.PatientID) == (PATIENT_NAME, PATIENT_ID)  # copied, as highdicom does


def test_seg_describes_one_automatic_tfsal_segment(written):
    *_, out, _ = written
    seg = hd.seg.segread(out / "case1_seg.dcm")
    assert seg.number_of_segments == 1
    description = seg.get_segment_description(1)
    assert description.segment_label == "salient region"
    assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    algorithm = description.algorithm_identification
    assert (algorithm[0].AlgorithmName, algorithm[0].AlgorithmVersion) == ("tfsal", dicom_results.__version__)
    assert description.segmented_property_type.value == "130404"  # DCM Saliency
    assert seg.SeriesNumber == dicom_results.SEG_SERIES_NUMBER and "tfsal" in seg.SeriesDescription


def test_overlay_reads_back_as_rgb_in_the_study_in_a_new_series(written):
    source, _, overlay, out, _ = written
    src = pydicom.dcmread(source)
    seg = pydicom.dcmread(out / "case1_seg.dcm")
    sc = pydicom.dcmread(out / "case1_overlay.dcm")
    assert sc.SOPClassUID == SECONDARY_CAPTURE_STORAGE and sc.PhotometricInterpretation == "RGB"
    assert np.array_equal(sc.pixel_array, overlay[:, :, ::-1])
    assert sc.StudyInstanceUID == src.StudyInstanceUID
    assert len({sc.SeriesInstanceUID, seg.SeriesInstanceUID, src.SeriesInstanceUID}) == 3
    assert sc.SeriesNumber == dicom_results.OVERLAY_SERIES_NUMBER and "overlay" in sc.SeriesDescription
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert list(sc.PatientOrientation) == ["A", "FR"] and sc.Laterality == "L"
    assert (sc.PatientName, sc.PatientID) == (PATIENT_NAME, PATIENT_ID)


@pytest.mark.parametrize("source, expected", [("NO", "NO"), ("YES", "YES"), (None, "YES")])
def test_the_overlay_says_what_the_source_says_about_burned_in_text(tmp_path, source, expected):
    mammogram = write_mammogram(tmp_path / "source.dcm", BurnedInAnnotation=source)
    mask, overlay = result_arrays()
    write_dicom_results(mammogram, mask, overlay, tmp_path, "b")
    assert pydicom.dcmread(tmp_path / "b_overlay.dcm").BurnedInAnnotation == expected  # unknown: assume some


def test_empty_mask_gives_one_empty_frame(tmp_path, mammogram):
    mask, overlay = result_arrays()
    write_dicom_results(mammogram, np.zeros_like(mask), overlay, tmp_path, "empty")
    seg = hd.seg.segread(tmp_path / "empty_seg.dcm")
    assert int(seg.NumberOfFrames) == 1 and not seg.pixel_array.any()


def test_ct_source_keeps_its_geometry(tmp_path):
    source = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    src = pydicom.dcmread(source)
    mask, overlay = result_arrays(src.Rows, src.Columns)
    write_dicom_results(source, mask, overlay, tmp_path, "ct")
    seg = hd.seg.segread(tmp_path / "ct_seg.dcm")
    assert np.array_equal(seg.pixel_array.astype(bool), mask)
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]  # kept: it has a thickness
    assert [float(v) for v in measures.PixelSpacing] == [float(v) for v in src.PixelSpacing]
    assert seg.StudyInstanceUID == src.StudyInstanceUID


def test_compressed_source_and_sparse_header_are_accepted(tmp_path):
    source = write_mammogram(tmp_path / "rle.dcm", PatientSex="U", PatientBirthDate=None, StudyID=None,
                             AccessionNumber=None, PatientOrientation=None, PixelSpacing=None)
    ds = pydicom.dcmread(source)
    ds.compress(RLELossless)
    ds.save_as(source)
    mask, overlay = result_arrays()
    write_dicom_results(source, mask, overlay, tmp_path, "rle")
    seg = hd.seg.segread(tmp_path / "rle_seg.dcm")
    assert np.array_equal(seg.pixel_array.astype(bool), mask) and seg.PatientSex == ""
    assert pydicom.dcmread(tmp_path / "rle_overlay.dcm").PatientOrientation == ""


# --- errors -------------------------------------------------------------------------------------------

def _assert_one_line_naming(exc: BaseException, path: Path) -> None:
    message = str(exc)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert PATIENT_NAME not in message and "Doe" not in message and PATIENT_ID not in message


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    b"garbage bytes that are not DICOM at all" * 8,
    b"",
])
def test_non_dicom_source_is_refused_naming_the_file(tmp_path, content):
    source = tmp_path / "scan.png"
    source.write_bytes(content)
    mask, overlay = result_arrays()
    with pytest.raises(DicomResultError) as excinfo:
        write_dicom_results(source, mask, overlay, tmp_path / "out", "scan")
    _assert_one_line_naming(excinfo.value, source)
    assert "not a DICOM file" in str(excinfo.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_source_is_refused(tmp_path):
    mask, overlay = result_arrays()
    with pytest.raises(TfsalError, match="no such file"):
        write_dicom_results(tmp_path / "absent.dcm", mask, overlay, tmp_path, "absent")


@pytest.mark.parametrize("which,shape", [("mask", (ROWS - 1, COLS)), ("mask", (COLS, ROWS)),
                                          ("overlay", (ROWS, COLS)), ("overlay", (ROWS, COLS + 2, 3))])
def test_arrays_that_do_not_match_rows_x_columns_are_refused(tmp_path, mammogram, which, shape):
    mask, overlay = result_arrays()
    if which == "mask":
        mask = np.zeros(shape, bool)
    else:
        overlay = np.zeros(shape, np.uint8)
    with pytest.raises(TfsalError) as excinfo:
        write_dicom_results(mammogram, mask, overlay, tmp_path / "out", "bad")
    _assert_one_line_naming(excinfo.value, mammogram)
    assert "Rows x Columns" in str(excinfo.value) or "shape" in str(excinfo.value)


def test_source_without_required_attributes_is_refused(tmp_path):
    source = write_mammogram(tmp_path / "noseries.dcm", SeriesInstanceUID=None)
    mask, overlay = result_arrays()
    with pytest.raises(DicomResultError, match="lacks SeriesInstanceUID") as excinfo:
        write_dicom_results(source, mask, overlay, tmp_path / "out", "x")
    _assert_one_line_naming(excinfo.value, source)


def test_non_standard_sop_class_is_refused(tmp_path):
    source = write_mammogram(tmp_path / "private.dcm", SOPClassUID="1.2.3.4.5.6")
    mask, overlay = result_arrays()
    with pytest.raises(DicomResultError, match=r"SOP class 1\.2\.3\.4\.5\.6 is not a standard") as excinfo:
        write_dicom_results(source, mask, overlay, tmp_path / "out", "x")
    _assert_one_line_naming(excinfo.value, source)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")  # pydicom, writing the test file
def test_malformed_birth_date_is_named_but_not_quoted(tmp_path):
    source = write_mammogram(tmp_path / "date.dcm", PatientBirthDate="1951-02-03")
    mask, overlay = result_arrays()
    with pytest.raises(DicomResultError, match="PatientBirthDate") as excinfo:
        write_dicom_results(source, mask, overlay, tmp_path / "out", "x")
    _assert_one_line_naming(excinfo.value, source)
    assert "1951" not in str(excinfo.value)


def test_library_messages_are_redacted(mammogram):
    header = pydicom.dcmread(mammogram, stop_before_pixels=True)
    text = "bad name 'Doe^Jane', id PID12345, birth \"19510203\", sex 'F', Doe, MONOCHROME2 stays"
    redacted = dicom_results._redact(text, header)
    assert "Doe" not in redacted and PATIENT_ID not in redacted and "19510203" not in redacted
    assert "'F'" not in redacted and "MONOCHROME2 stays" in redacted


def test_missing_extra_is_named(monkeypatch, tmp_path, mammogram):
    monkeypatch.setitem(sys.modules, "highdicom", None)  # import now raises ImportError
    mask, overlay = result_arrays()
    with pytest.raises(TfsalError, match=r"tfsal\[dicom\]"):
        write_dicom_results(mammogram, mask, overlay, tmp_path, "x")
    with pytest.raises(TfsalError, match=r"tfsal\[dicom\]"):
        send_dicom([mammogram], "127.0.0.1:104")


def test_no_patient_data_in_logs_warnings_or_messages(tmp_path, caplog):
    # A one-component name: highdicom warns about its form, quoting it, unless quietened.
    mammogram = write_mammogram(tmp_path / "source.dcm", PatientName="DOEJANE")
    caplog.set_level(logging.DEBUG)
    mask, overlay = result_arrays()
    messages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = write_dicom_results(mammogram, mask, overlay, tmp_path / "out", "case")
        for bad in (np.zeros((3, 3), bool), np.zeros((ROWS, COLS), np.float32)):
            with pytest.raises(TfsalError) as excinfo:
                write_dicom_results(mammogram, bad, overlay, tmp_path / "out", "bad")
            messages.append(str(excinfo.value))
        with pytest.raises(TfsalError) as excinfo:
            send_dicom([tmp_path / "out" / n for n in names], f"127.0.0.1:{_closed_port()}", timeout=2)
        messages.append(str(excinfo.value))
    texts = messages + [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    assert caplog.records  # something was logged, so the check below means something
    for text in texts:
        assert "DOEJANE" not in text and PATIENT_ID not in text and "19510203" not in text, text


# --- addresses ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("pacs.example.org:104", DicomAddress("ANY-SCP", "pacs.example.org", 104)),
    ("ORTHANC@127.0.0.1:4242", DicomAddress("ORTHANC", "127.0.0.1", 4242)),
    (" STORE SCP@localhost:11112 ", DicomAddress("STORE SCP", "localhost", 11112)),
    ("PACS@[::1]:104", DicomAddress("PACS", "::1", 104)),
])
def test_parse_dicom_address(text, expected):
    assert parse_dicom_address(text) == expected


@pytest.mark.parametrize("text", ["", "pacs", "pacs:", ":104", "pacs:0", "pacs:65536", "pacs:abc", "@pacs:104",
                                  "A_TITLE_LONGER_THAN_16@pacs:104", "BAD\\AE@pacs:104", "pa cs:104", "pacs:104:5",
                                  "[::1]104"])
def test_bad_dicom_address_is_a_value_error(text):
    with pytest.raises(ValueError, match="DICOM address"):
        parse_dicom_address(text)


# --- C-STORE ---------------------------------------------------------------------------------------

def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_c_store_round_trip(written, scp_factory):
    *_, out, names = written
    scp = scp_factory()
    paths = [out / name for name in names]
    send_dicom(paths, f"STORESCP@127.0.0.1:{scp.port}", timeout=5)
    sent = {pydicom.dcmread(p).SOPInstanceUID for p in paths}
    assert {ds.SOPInstanceUID for ds in scp.received} == sent and len(scp.received) == 2
    assert {ds.SOPClassUID for ds in scp.received} == {SEGMENTATION_STORAGE, SECONDARY_CAPTURE_STORAGE}


def test_failure_status_names_the_files(written, scp_factory):
    *_, out, names = written
    scp = scp_factory(status=0xA700)
    with pytest.raises(DicomSendError) as excinfo:
        send_dicom([out / n for n in names], DicomAddress("STORESCP", "127.0.0.1", scp.port), timeout=5)
    message = str(excinfo.value)
    assert "case1_seg.dcm" in message and "case1_overlay.dcm" in message and "0xA700" in message
    assert "\n" not in message and "Doe" not in message


def test_sop_class_the_node_refuses_is_named(written, scp_factory):
    *_, out, names = written
    scp = scp_factory(sop_classes=[SECONDARY_CAPTURE_STORAGE])
    with pytest.raises(DicomSendError, match=r"case1_seg\.dcm: .*presentation context") as excinfo:
        send_dicom([out / n for n in names], f"STORESCP@127.0.0.1:{scp.port}", timeout=5)
    assert "case1_overlay.dcm" not in str(excinfo.value)
    assert [ds.SOPClassUID for ds in scp.received] == [SECONDARY_CAPTURE_STORAGE]


def test_wrong_called_ae_title_is_rejected(written, scp_factory):
    *_, out, names = written
    scp = scp_factory()
    with pytest.raises(DicomSendError, match="rejected"):
        send_dicom([out / n for n in names], f"OTHER@127.0.0.1:{scp.port}", timeout=5)
    assert scp.received == []


def test_closed_port_fails_quickly(written):
    *_, out, names = written
    tick = time.monotonic()
    with pytest.raises(DicomSendError, match="could not be established") as excinfo:
        send_dicom([out / n for n in names], f"127.0.0.1:{_closed_port()}", timeout=2)
    assert time.monotonic() - tick < 5
    assert "ANY-SCP@127.0.0.1" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_sending_a_non_dicom_file_is_refused(tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("not dicom")
    with pytest.raises(DicomSendError, match="not a DICOM file"):
        send_dicom([path], f"127.0.0.1:{_closed_port()}", timeout=2)


def test_bad_address_is_refused_before_anything_else(tmp_path):
    with pytest.raises(ValueError, match="DICOM address"):
        send_dicom([tmp_path / "absent.dcm"], "no-port-here")
