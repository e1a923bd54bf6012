"""Tests of tfsal.data.image_io: formats by content, normalisation, one-line errors."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from tfsal.data.image_io import ImageMeta, read_image, read_mask
from tfsal.errors import ImageReadError, TfsalError

from .refusal import refused_quickly


def _ramp(h=64, w=48, top=255, dtype=np.uint8):
    values = np.linspace(0, top, h * w).reshape(h, w)
    return np.round(values).astype(dtype)


def _png(path, array):
    assert cv2.imwrite(str(path), array)
    return path


def _assert_one_line_error(path, excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    return message


# --- formats ------------------------------------------------------------------------------

def test_png_8bit_is_divided_by_255(tmp_path):
    array = _ramp()
    image, meta = read_image(_png(tmp_path / "a.png", array))
    assert image.shape == (64, 48, 1) and image.dtype == np.float32
    np.testing.assert_allclose(image[:, :, 0], array / 255.0, atol=1e-7)
    assert meta == ImageMeta(source=str(tmp_path / "a.png"), format="png", original_size=(64, 48), bits_stored=8)


def test_png_16bit_is_divided_by_65535(tmp_path):
    array = _ramp(top=40000, dtype=np.uint16)
    image, meta = read_image(_png(tmp_path / "a.png", array))
    np.testing.assert_allclose(image[:, :, 0], array / 65535.0, atol=1e-7)
    assert meta.bits_stored == 16


def test_format_is_detected_by_content_not_suffix(tmp_path):
    src = _png(tmp_path / "a.png", _ramp())
    disguised = tmp_path / "scan.dcm"
    disguised.write_bytes(src.read_bytes())
    assert read_image(disguised)[1].format == "png"


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535)])
def test_tiff_is_divided_by_dtype_max(tmp_path, dtype, top):
    array = _ramp(top=top // 2, dtype=dtype)
    image, meta = read_image(_png(tmp_path / "a.tif", array))
    assert meta.format == "tiff" and meta.original_size == (64, 48)
    np.testing.assert_allclose(image[:, :, 0], array / float(top), atol=1e-7)


def test_float_tiff_within_unit_range_is_kept(tmp_path):
    array = _ramp(top=1, dtype=np.float32) * 0.5
    array[0, 0] = 0.25
    image, _ = read_image(_png(tmp_path / "a.tif", array.astype(np.float32)))
    np.testing.assert_allclose(image[:, :, 0], array, atol=1e-7)


def test_jpeg_grayscale_is_read(tmp_path):
    array = _ramp()
    image, meta = read_image(_png(tmp_path / "a.jpg", array))
    assert meta.format == "jpeg" and image.shape == (64, 48, 1)
    assert np.abs(image[:, :, 0] - array / 255.0).max() < 0.05


def test_npy_rules(tmp_path):
    cases = {
        "u16.npy": (_ramp(top=1000, dtype=np.uint16), _ramp(top=1000, dtype=np.uint16) / 65535.0),
        "unit.npy": (np.linspace(0.1, 0.9, 12).reshape(3, 4), np.linspace(0.1, 0.9, 12).reshape(3, 4)),
        "hwc.npy": (np.linspace(0.1, 0.9, 12).reshape(3, 4, 1), np.linspace(0.1, 0.9, 12).reshape(3, 4)),
        "scaled.npy": (np.linspace(-5.0, 15.0, 12).reshape(3, 4), np.linspace(0.0, 1.0, 12).reshape(3, 4)),
    }
    for name, (array, expected) in cases.items():
        np.save(tmp_path / name, array)
        image, meta = read_image(tmp_path / name)
        assert meta.format == "npy"
        np.testing.assert_allclose(image[:, :, 0], expected, atol=1e-6, err_msg=name)


def test_rgb_with_identical_channels_is_grayscale(tmp_path):
    gray = _ramp()
    image, _ = read_image(_png(tmp_path / "a.png", np.dstack([gray, gray, gray, np.full_like(gray, 255)])))
    np.testing.assert_allclose(image[:, :, 0], gray / 255.0, atol=1e-7)


# --- errors -------------------------------------------------------------------------------

def test_true_colour_is_refused(tmp_path):
    gray = _ramp()
    path = _png(tmp_path / "a.png", np.dstack([gray, gray[::-1], gray]))
    with pytest.raises(ImageReadError, match="colour image") as excinfo:
        read_image(path)
    _assert_one_line_error(path, excinfo)


@pytest.mark.parametrize("kind,expected", [
    ("missing", "file not found"),
    ("directory", "is a directory"),
    ("empty", "empty file"),
    ("random", "not a recognised image format"),
])
def test_unreadable_files_give_one_line_errors(tmp_path, kind, expected):
    path = tmp_path / "input.png"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError, match=expected) as excinfo:
        read_image(path)
    _assert_one_line_error(path, excinfo)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_truncated_raster_gives_one_line_error_and_no_decoder_output(tmp_path, capfd, suffix):
    rng = np.random.default_rng(1)
    full = _png(tmp_path / f"full{suffix}", rng.integers(0, 256, (64, 48), dtype=np.uint8))
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(ImageReadError) as excinfo:
        read_image(path)
    _assert_one_line_error(path, excinfo)
    assert capfd.readouterr().err == ""


def _png_claiming(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 4))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_oversized_png_header_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(ImageReadError, match="30000x30000 = 900000000 pixels, over the limit") as excinfo:
        read_image(path)
    _assert_one_line_error(path, excinfo)


def test_oversized_jpeg_header_is_refused(tmp_path):
    path = _png(tmp_path / "a.jpg", _ramp())
    with pytest.raises(ImageReadError, match="over the limit of 100"):
        read_image(path, max_pixels=100)


def test_oversized_npy_header_is_refused_without_loading(tmp_path):
    path = tmp_path / "bomb.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (30000, 30000)})
        handle.write(b"\x00" * 16)
    with pytest.raises(ImageReadError, match="over the limit"):
        read_image(path)


@pytest.mark.parametrize("array,expected", [
    (np.full((8, 8), 0.5), "constant image"),
    (np.zeros((0, 8)), "zero size"),
    (np.where(np.eye(8) > 0, np.nan, 0.5), "NaN or infinite"),
    (np.where(np.eye(8) > 0, np.inf, 0.5), "NaN or infinite"),
    (np.zeros((2, 3, 4)), "not a single-channel image"),
])
def test_bad_values_are_refused(tmp_path, array, expected):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(ImageReadError, match=expected) as excinfo:
        read_image(path)
    _assert_one_line_error(path, excinfo)


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="not numeric"):
        read_image(path)


# --- masks --------------------------------------------------------------------------------

@pytest.mark.parametrize("high", [1, 255])
def test_mask_is_true_above_zero(tmp_path, high):
    values = np.zeros((16, 12), np.uint8)
    values[4:9, 3:7] = high
    mask = read_mask(_png(tmp_path / "m.png", values))
    assert mask.dtype == bool and mask.shape == (16, 12)
    assert mask.sum() == 20 and mask[4:9, 3:7].all()


def test_empty_mask_is_allowed(tmp_path):
    mask = read_mask(_png(tmp_path / "m.png", np.zeros((16, 12), np.uint8)))
    assert not mask.any()


def test_mask_errors_follow_image_rules(tmp_path):
    path = tmp_path / "m.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="not a recognised image format"):
        read_mask(path)


def test_binary_pgm_is_read_with_header_comments_and_its_size_checked(tmp_path):
    pixels = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7) * 3
    good = tmp_path / "film.pgm"
    good.write_bytes(b"P5\n# a scanner's comment\n7 12\n255\n" + pixels.tobytes())
    image, meta = read_image(good)
    assert meta.format == "pgm" and meta.original_size == (12, 7)
    np.testing.assert_allclose(image[..., 0], pixels / 255.0, atol=1e-6)
    wide = np.full((4, 5), 40000, ">u2")
    wide[0, 0] = 0
    (tmp_path / "wide.pgm").write_bytes(b"P5 5 4 65535\n" + wide.tobytes())  # 16-bit: big-endian samples
    assert read_image(tmp_path / "wide.pgm")[0][1, 1, 0] == pytest.approx(40000 / 65535, abs=1e-6)
    short = tmp_path / "short.pgm"
    short.write_bytes(b"P5\n7 12\n255\n" + pixels.tobytes()[:-5])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(short)
    huge = tmp_path / "huge.pgm"
    huge.write_bytes(b"P5\n90000 90000\n255\n" + b"\0" * 64)  # refused from the header, nothing decoded
    with pytest.raises(ImageReadError):
        read_image(huge)
    junk = tmp_path / "junk.pgm"
    junk.write_bytes(b"P5\nseven twelve\n255\n" + pixels.tobytes())
    with pytest.raises(ImageReadError, match="PGM"):
        read_image(junk)


def test_a_named_pipe_is_refused_without_being_opened(tmp_path):
    import os

    fifo = tmp_path / "scan.dcm"
    os.mkfifo(fifo)
    refused_quickly(fifo, "named pipe, not a regular file")  # opening it would block for ever


def test_a_link_to_a_device_is_refused(tmp_path):
    link = tmp_path / "zeros.png"
    link.symlink_to("/dev/zero")
    refused_quickly(link, "device, not a regular file")


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (300, 300), np.uint8))
    assert read_image(path)[0].shape == (300, 300, 1)
    monkeypatch.setenv("TFSAL_MAX_FILE_MB", "0.01")  # 10 KB
    refused_quickly(path, r"file of 0\.0\d+ MB is over the 0\.01 MB limit \(TFSAL_MAX_FILE_MB\)")
    monkeypatch.setenv("TFSAL_MAX_FILE_MB", "lots")
    with pytest.raises(TfsalError, match="TFSAL_MAX_FILE_MB must be a number"):
        read_image(path)


def test_a_truncated_jpeg_with_an_end_marker_appended_is_refused(tmp_path):
    image = (np.random.default_rng(0).random((200, 160)) * 255).astype(np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2] + b"\xff\xd9")  # looks whole to a check of the last bytes
    refused_quickly(path, "corrupt or truncated JPEG file .*premature end of data segment")
    path.write_bytes(data)
    assert read_image(path)[0].shape == (200, 160, 1)  # the whole file is read


def test_a_truncated_png_with_its_end_chunk_appended_is_refused(tmp_path):
    image = (np.random.default_rng(0).random((200, 160)) * 255).astype(np.uint8)
    data = cv2.imencode(".png", image)[1].tobytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2] + data[-12:])  # the IEND chunk
    refused_quickly(path, "corrupt or truncated PNG file")
