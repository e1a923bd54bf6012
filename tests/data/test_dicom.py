"""Tests of tfsal.data.dicom: pixel steps, header checks, pydicom's test files, writing."""

from __future__ import annotations

import dataclasses
import importlib.util
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset

from tfsal.data import dicom
from tfsal.data.image_io import read_image, read_mask
from tfsal.errors import ImageReadError

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"

# Single-frame grayscale files with pixel data whose data is itself defective; pydicom's
# test_files/README.txt describes each. No installed plugin (nor GDCM, tried) decodes them,
# so the expectation is the one-line error.
DEFECTIVE = {
    "JPEG-lossy.dcm": "12-bit JPEG with invalid SOS parameters (JPGExtended.dcm is the fixed copy)",
    "JPEG2000-embedded-sequence-delimiter.dcm": "J2K codestream overwritten by a sequence delimiter",
    "MR_truncated.dcm": "pixel data shorter than Rows x Columns",
}


NEEDS_GPL_JPEG = {"JPGExtended.dcm"}
"""12-bit JPEG Extended: only the opt-in tfsal[gpl-jpeg] decodes it (else refused in one line naming it)."""


def _all_test_files():
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def _is_single_frame_grayscale(path: Path) -> bool:
    """Whether the header (read by pydicom) describes one grayscale frame with pixel data."""
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=False, defer_size="1 KB")
        return (
            "PixelData" in ds
            and int(ds.get("NumberOfFrames", 1) or 1) == 1
            and int(ds.get("SamplesPerPixel", 1)) == 1
            and ds.get("PhotometricInterpretation") in ("MONOCHROME1", "MONOCHROME2")
            and int(ds.Rows) > 0 and int(ds.Columns) > 0
            and int(ds.BitsStored) > 0
        )
    except Exception:
        return False


def _is_constant(path: Path) -> bool:
    """Whether the displayed image (pydicom's modality and VOI steps) holds one value only.

    Two reduced CT images in dicomdirtests/77654033/CT2 (17166, 17196) hold values 991..1489
    HU under a 30/100 window: every pixel is white, and they are refused as constant.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path, force=True)
    shown = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    return bool(shown.min() == shown.max())


@pytest.mark.parametrize("path", _all_test_files(), ids=lambda p: p.relative_to(TEST_FILES).as_posix())
def test_pydicom_test_file_is_read_or_refused_in_one_line(path, capfd):
    readable = (_is_single_frame_grayscale(path) and path.name not in DEFECTIVE
                and not (path.name in NEEDS_GPL_JPEG and not importlib.util.find_spec("libjpeg"))
                and not _is_constant(path))
    if readable:
        image, meta = read_image(path)
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 1
        assert image.shape[:2] == meta.original_size and meta.format == "dicom"
        assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
        assert image.max() > image.min()
    else:
        with pytest.raises(ImageReadError) as excinfo:
            read_image(path)
        message = str(excinfo.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
    assert capfd.readouterr().err == ""


def test_compressed_grayscale_files_are_among_those_read():
    names = {"MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
             "JPEG2000.dcm", "JPEGLSNearLossless_16.dcm", "image_dfl.dcm"}
    reference = read_image(TEST_FILES / "MR_small.dcm")[0]
    for name in names:
        assert _is_single_frame_grayscale(TEST_FILES / name), name
        read_image(TEST_FILES / name)
    for lossless in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        np.testing.assert_array_equal(read_image(TEST_FILES / lossless)[0], reference)


def test_jpeg_baseline_and_lossless_are_read_without_the_gpl_decoder(tmp_path):
    import pydicom
    from pydicom.uid import JPEGLosslessSV1

    gdcm = pytest.importorskip("gdcm")
    pixels = (np.arange(48 * 40).reshape(48, 40) * 37 % 4096).astype(np.uint16)
    plain = dicom.write_mammogram_dicom(tmp_path / "plain.dcm", pixels)
    # JPEG lossless (the usual syntax of mammograms), written by GDCM
    reader = gdcm.ImageReader()
    reader.SetFileName(str(plain))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(tmp_path / "lossless.dcm"))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    assert pydicom.dcmread(tmp_path / "lossless.dcm").file_meta.TransferSyntaxUID == JPEGLosslessSV1
    np.testing.assert_array_equal(read_image(tmp_path / "lossless.dcm")[0], read_image(plain)[0])


def test_twelve_bit_jpeg_extended_is_read_or_names_the_opt_in_decoder():
    path = TEST_FILES / "JPGExtended.dcm"
    if importlib.util.find_spec("libjpeg"):  # tfsal[gpl-jpeg] installed
        assert read_image(path)[0].shape[-1] == 1
        return
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    message = str(excinfo.value)
    assert "\n" not in message and "pip install 'tfsal[gpl-jpeg]'" in message


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_dicom_gives_one_line_error(tmp_path, fraction):
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    assert str(excinfo.value).startswith(f"{path}: ") and "\n" not in str(excinfo.value)


# --- writing ------------------------------------------------------------------------------

def _pixels(h=32, w=24):
    return (np.arange(h * w).reshape(h, w) * 7 % 4096).astype(np.uint16)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_written_mammogram_reads_back_as_pixels_over_4095(tmp_path, photometric):
    pixels = _pixels()
    path = dicom.write_mammogram_dicom(tmp_path / "m.dcm", pixels, photometric=photometric,
                                       pixel_spacing=(0.07, 0.08), laterality="R", view="MLO", uid_seed="a")
    ds = pydicom.dcmread(path)
    assert ds.Modality == "MG" and ds.SOPClassUID == dicom.MG_FOR_PRESENTATION
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert ds.PhotometricInterpretation == photometric
    image, meta = read_image(path)
    np.testing.assert_allclose(image[:, :, 0], pixels / 4095.0, atol=1e-6)
    assert (meta.laterality, meta.view, meta.photometric, meta.bits_stored) == ("R", "MLO", photometric, 12)
    assert meta.pixel_spacing == (0.07, 0.08)


def test_rewrite_gives_the_same_bytes_and_seed_changes_uids(tmp_path):
    a = dicom.write_mammogram_dicom(tmp_path / "a.dcm", _pixels(), uid_seed="s")
    b = dicom.write_mammogram_dicom(tmp_path / "b.dcm", _pixels(), uid_seed="s")
    c = dicom.write_mammogram_dicom(tmp_path / "c.dcm", _pixels(), uid_seed="t")
    assert a.read_bytes() == b.read_bytes()
    assert pydicom.dcmread(a).SOPInstanceUID != pydicom.dcmread(c).SOPInstanceUID
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("kwargs,match", [
    ({"pixels": np.full((4, 4), 5000, np.uint16)}, "0..4095"),
    ({"pixels": np.zeros((2, 4, 4), np.uint16)}, "2-D integers"),
    ({"photometric": "RGB"}, "photometric must be"),
    ({"laterality": "B"}, "laterality must be"),
])
def test_write_refuses_bad_arguments(tmp_path, kwargs, match):
    args = {"pixels": _pixels(), **kwargs}
    with pytest.raises(ValueError, match=match):
        dicom.write_mammogram_dicom(tmp_path / "x.dcm", args.pop("pixels"), **args)


def _edited(tmp_path, name="e.dcm", pixels=None, **changes) -> Path:
    """A written mammogram with header elements changed (None deletes one)."""
    path = dicom.write_mammogram_dicom(tmp_path / name, _pixels() if pixels is None else pixels)
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)
    return path


def test_meta_holds_no_patient_identifiers(tmp_path):
    identifiers = {"PatientName": "Doe^Jane", "PatientID": "PID12345", "PatientBirthDate": "19510203",
                   "AccessionNumber": "ACC998877", "InstitutionName": "St Example Hospital",
                   "StudyDate": "20200101", "StudyInstanceUID": "1.2.3.444555666"}
    path = _edited(tmp_path, **identifiers)
    _, meta = read_image(path)
    text = repr(meta) + repr(dataclasses.asdict(meta))
    for value in identifiers.values():
        assert value not in text
    assert "Doe" not in text and pydicom.dcmread(path).SOPInstanceUID not in text


# --- pixel steps --------------------------------------------------------------------------

def _ds(**values) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation, ds.BitsStored, ds.PixelRepresentation = "MONOCHROME2", 12, 0
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_modality_step_applies_rescale():
    out = dicom.modality_step(np.array([[0, 10]], np.uint16), _ds(RescaleSlope=2, RescaleIntercept=-10))
    np.testing.assert_allclose(out, [[-10, 10]])


def test_voi_step_with_window_uses_window_output_range():
    ds = _ds(WindowCenter=100, WindowWidth=101)  # LINEAR (PS3.3 C.11.2.1.2.1): ((x - 99.5) / 100 + 0.5)
    out = dicom.voi_step(np.array([[0, 50, 100, 150, 4000]], np.uint16), ds)
    np.testing.assert_allclose(out, [[0.0, 0.005, 0.505, 1.0, 1.0]], atol=1e-9)


def test_voi_step_with_lut_sequence_uses_lut_bits():
    item = Dataset()
    item.LUTDescriptor, item.LUTData = [4, 0, 8], [0, 85, 170, 255]
    ds = _ds(VOILUTSequence=[item], WindowCenter=1, WindowWidth=1)  # the LUT wins over the window
    out = dicom.voi_step(np.array([[0, 1, 2, 3, 9]], np.uint16), ds)
    np.testing.assert_allclose(out, [[0.0, 1 / 3, 2 / 3, 1.0, 1.0]], atol=1e-9)


def test_voi_step_without_voi_uses_nominal_range_or_min_max():
    stored = np.array([[0, 1023, 2047]], np.uint16)
    np.testing.assert_allclose(dicom.voi_step(stored, _ds()), stored / 4095.0)
    rescaled = dicom.voi_step(stored.astype(float) - 5, _ds(RescaleSlope=1, RescaleIntercept=-5))
    np.testing.assert_allclose(rescaled, [[0.0, 0.5, 1.0]], atol=1e-3)


def test_photometric_step_inverts_monochrome1_only():
    values = np.array([[0.0, 0.25, 1.0]])
    np.testing.assert_allclose(dicom.photometric_step(values, _ds(PhotometricInterpretation="MONOCHROME1")),
                               [[1.0, 0.75, 0.0]])
    np.testing.assert_allclose(dicom.photometric_step(values, _ds()), values)


# --- header refusals ----------------------------------------------------------------------

def test_dicom_without_pixel_data_names_the_sop_class(tmp_path):
    path = _edited(tmp_path, PixelData=None, SOPClassUID="1.2.840.10008.5.1.4.1.1.88.11")
    with pytest.raises(ImageReadError, match=r"no pixel data \(SOP class Basic Text SR Storage\)"):
        read_image(path)


def test_multi_frame_dicom_is_refused(tmp_path):
    path = _edited(tmp_path, pixels=np.zeros((8, 8), np.uint16), NumberOfFrames=2, Rows=4)
    with pytest.raises(ImageReadError, match=r"multi-frame images \(2 frames\) are not supported"):
        read_image(path)


def test_header_claiming_huge_size_is_refused_before_decoding(tmp_path):
    path = _edited(tmp_path, Rows=30000, Columns=30000)
    with pytest.raises(ImageReadError, match="30000x30000 = 900000000 pixels, over the limit"):
        read_image(path)


def test_constant_dicom_is_refused_but_constant_mask_allowed(tmp_path):
    path = dicom.write_mammogram_dicom(tmp_path / "c.dcm", np.zeros((8, 8), np.uint16))
    with pytest.raises(ImageReadError, match="constant image"):
        read_image(path)
    assert not read_mask(path).any()


def test_dicom_mask_uses_stored_values(tmp_path):
    values = np.zeros((8, 6), np.uint16)
    values[2:5, 1:3] = 255
    mask = read_mask(dicom.write_mammogram_dicom(tmp_path / "m.dcm", values))
    assert mask.sum() == 6 and mask[2:5, 1:3].all()


def test_transfer_syntax_without_decoder_is_named(tmp_path):
    from pydicom.encaps import encapsulate

    path = _edited(tmp_path, PixelData=encapsulate([b"\x00" * 16]))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: pydicom has no decoder
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    with pytest.raises(ImageReadError, match=r"no decoder for transfer syntax MPEG2 Main Profile / Main Level "
                                             r"\(1\.2\.840\.10008\.1\.2\.4\.100\)"):
        read_image(path)


def test_dicom_without_preamble_or_file_meta_is_detected_by_content(tmp_path):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    pixels = _pixels()
    ds = pydicom.dcmread(dicom.write_mammogram_dicom(tmp_path / "m.dcm", pixels))
    del ds.file_meta
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    path = tmp_path / "bare"
    path.write_bytes(buffer.getvalue())
    assert path.read_bytes()[:2] == b"\x08\x00"  # starts with group 0008, no preamble
    image, meta = read_image(path)
    assert meta.format == "dicom"
    np.testing.assert_allclose(image[:, :, 0], pixels / 4095.0, atol=1e-6)


def _deflated_mammogram(path, pixels):
    """A deflated (Deflated Explicit VR Little Endian) MG image of ``pixels`` (uint16, 12 bits stored)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SamplesPerPixel, ds.PhotometricInterpretation = "MG", 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_deflate_bomb_is_inflated_with_a_cap(tmp_path, monkeypatch):
    pixels = np.zeros((2048, 2048), "<u2")
    pixels[100:200, 100:200] = 4000  # not constant
    path = _deflated_mammogram(tmp_path / "bomb.dcm", pixels)  # 8 MB that deflate to a few kB
    assert path.stat().st_size < 200_000
    monkeypatch.setenv("TFSAL_MAX_FILE_MB", "2")
    with pytest.raises(ImageReadError, match=r"deflated DICOM data set inflates to more than 2 MB"):
        read_image(path)
    monkeypatch.setenv("TFSAL_MAX_FILE_MB", "16")
    image, _ = read_image(path)  # under the cap it is read as before
    assert image.shape == (2048, 2048, 1) and image.max() > image.min()


def test_a_deflate_bomb_under_the_file_limit_is_bounded_by_its_own_header(tmp_path):
    from .refusal import refused_quickly

    small = _deflated_mammogram(tmp_path / "small.dcm", (np.arange(64 * 64) % 4096).reshape(64, 64))
    data = small.read_bytes()
    start = 132 + 12 + int(pydicom.filereader.read_file_meta_info(small).FileMetaInformationGroupLength)
    body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[start:])
    # after the pixel data, one private OB element of 480 MB of zeros: a file of half a megabyte
    # that inflates to nearly TFSAL_MAX_FILE_MB's default of 512 MB
    size = 480 * 2**20
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [packer.compress(body + struct.pack("<HH2sHI", 0x7FE1, 0x1010, b"OB", 0, size))]
    chunk = bytes(2**20)
    parts += [packer.compress(chunk) for _ in range(size // len(chunk))]
    bomb = tmp_path / "bomb.dcm"
    bomb.write_bytes(data[:start] + b"".join(parts) + packer.flush())
    assert bomb.stat().st_size < 2 * 2**20
    refused_quickly(bomb, "deflated DICOM data set inflates to more than its header's image size allows")


def test_a_jpeg_2000_frame_declaring_8000_x_8000_in_a_64_x_64_image_costs_nothing(tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    from .refusal import refused_quickly

    source = pydicom.dcmread(TEST_FILES / "MR_small_jp2klossless.dcm")
    frame = bytearray(next(generate_frames(source.PixelData, number_of_frames=1)))
    siz = frame.find(b"\xff\x4f\xff\x51")
    frame[siz + 8:siz + 16] = struct.pack(">2I", 8000, 8000)  # the codestream now claims 8000 x 8000
    source.PixelData = encapsulate([bytes(frame)])
    path = tmp_path / "claims.dcm"
    source.save_as(path)
    refused_quickly(path, r"frame declares 8000x8000 pixels but the header says 64x64; not decoded")


def test_a_compressed_frame_declaring_another_size_is_refused_before_decoding(tmp_path):
    import pydicom

    from tfsal.data.dicom_guard import declared_frame_size

    source = pydicom.dcmread(TEST_FILES / "MR_small_jp2klossless.dcm")
    frame = next(pydicom.encaps.generate_frames(source.PixelData, number_of_frames=1))
    assert declared_frame_size(frame) == (source.Rows, source.Columns)
    source.Rows, source.Columns = 16, 16  # a small header over a larger codestream
    path = tmp_path / "lying.dcm"
    source.save_as(path)
    with pytest.raises(ImageReadError, match=r"frame declares 64x64 pixels but the header says 16x16; not decoded"):
        read_image(path)
    import cv2

    jpeg = cv2.imencode(".jpg", np.full((200, 160), 128, np.uint8))[1].tobytes()
    assert declared_frame_size(jpeg) == (200, 160) and declared_frame_size(b"RLE data") is None
