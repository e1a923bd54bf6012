"""Tests of tfsal.data.resize: geometry, round trips, padding, errors, the TF twin."""

import subprocess
import sys

import numpy as np
import pytest

from tfsal.data.resize import PadResize, tf_pad_resize


def smooth_image(h, w, c=None):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = 0.5 + 0.25 * np.sin(2 * np.pi * y / h) * np.cos(2 * np.pi * x / w) + 0.2 * x / w
    return image if c is None else np.repeat(image[:, :, None], c, axis=2)


@pytest.mark.parametrize(
    "src, dst, resized, offset",
    [
        ((100, 100), (64, 48), (48, 48), (8, 0)),  # square into portrait: pad rows
        ((200, 100), (64, 48), (64, 32), (0, 8)),  # tall portrait: pad columns
        ((60, 120), (64, 48), (24, 48), (20, 0)),  # landscape: pad rows
        ((128, 96), (64, 48), (64, 48), (0, 0)),  # same aspect, shrink by 2
        ((32, 24), (64, 48), (64, 48), (0, 0)),  # same aspect, enlarge by 2
        ((1000, 1), (64, 48), (64, 1), (0, 23)),  # extreme: at least one pixel
    ],
)
def test_geometry(src, dst, resized, offset):
    t = PadResize.fit(src, dst)
    assert t.resized_hw == resized and t.offset_hw == offset
    assert t.scale == pytest.approx(min(dst[0] / src[0], dst[1] / src[1]))
    out = t.apply(np.ones(src, np.float32))
    assert out.shape == dst and out.dtype == np.float32
    (oy, ox), (rh, rw) = offset, resized
    assert out[oy : oy + rh, ox : ox + rw].min() == pytest.approx(1.0)


def test_padding_is_zero():
    t = PadResize.fit((100, 100), (64, 48))
    out = t.apply(smooth_image(100, 100, 1) + 1.0)
    assert out.shape == (64, 48, 1)
    assert np.all(out[:8] == 0) and np.all(out[56:] == 0)
    assert np.all(out[8:56] > 0)
    mask = t.apply_mask(np.ones((100, 100), bool))
    assert mask.dtype == bool and mask.sum() == 48 * 48 and not mask[:8].any()


@pytest.mark.parametrize("src", [(90, 80), (40, 30), (50, 70)])
def test_round_trip_smooth_image(src):
    image = smooth_image(*src)
    t = PadResize.fit(src, (64, 48))
    back = t.invert(t.apply(image))
    assert back.shape == src
    assert np.abs(back - image).mean() < 0.02


def test_round_trip_channels():
    image = smooth_image(90, 80, 3)
    t = PadResize.fit((90, 80), (64, 48))
    assert t.apply(image).shape == (64, 48, 3)
    assert t.invert(t.apply(image)).shape == (90, 80, 3)


def test_mask_round_trip_exact_for_integer_scale():
    rng = np.random.default_rng(0)
    mask = rng.random((16, 12)) > 0.5
    t = PadResize.fit((16, 12), (64, 48))  # scale 4
    up = t.apply_mask(mask)
    assert up.dtype == bool and up.sum() == 16 * mask.sum()
    np.testing.assert_array_equal(t.invert_mask(up), mask)


def test_mask_round_trip_with_padding():
    mask = np.zeros((20, 30), bool)
    mask[5:12, 10:20] = True
    t = PadResize.fit((20, 30), (64, 48))  # scale 1.6, padded rows
    back = t.invert_mask(t.apply_mask(mask))
    assert back.dtype == bool and back.shape == (20, 30)
    assert (back != mask).mean() < 0.05


@pytest.mark.parametrize(
    "src, dst, match",
    [
        ((0, 10), (64, 48), "src_hw must be two positive integers"),
        ((10, 10, 3), (64, 48), "src_hw must be two positive integers"),
        ((10, 10), (64.5, 48), "dst_hw must be two positive integers"),
        ((10, 10), None, "dst_hw must be two positive integers"),
    ],
)
def test_bad_sizes(src, dst, match):
    with pytest.raises(ValueError, match=match):
        PadResize.fit(src, dst)


def test_bad_shapes():
    t = PadResize.fit((20, 30), (64, 48))
    with pytest.raises(ValueError, match=r"image must have shape \(20, 30\).*Received: shape=\(30, 20\)"):
        t.apply(np.zeros((30, 20)))
    with pytest.raises(ValueError, match=r"mask must have shape"):
        t.apply_mask(np.zeros((20, 30, 1, 1), bool))
    with pytest.raises(ValueError, match=r"map must have shape \(64, 48\)"):
        t.invert(np.zeros((20, 30)))
    with pytest.raises(ValueError, match=r"mask must have shape \(64, 48\)"):
        t.invert_mask(np.zeros((20, 30), bool))


@pytest.mark.parametrize("src", [(100, 100), (200, 100), (60, 120), (32, 24), (90, 80), (37, 91)])
def test_tf_pad_resize_matches_geometry_and_values(src):
    import tensorflow as tf

    image = smooth_image(*src, 1)
    t = PadResize.fit(src, (64, 48))
    # dynamic H, W as in a tf.data graph
    fn = tf.function(lambda x: tf_pad_resize(x, (64, 48)), input_signature=[tf.TensorSpec([None, None, 1])])
    out = fn(tf.constant(image)).numpy()
    ref = t.apply(image)
    assert out.shape == (64, 48, 1)
    np.testing.assert_array_equal(out[..., 0] > 0, ref[..., 0] > 0)  # same placement
    assert np.abs(out - ref).max() < 0.05  # tf.image.resize is not bit-identical to cv2


def test_tf_pad_resize_bad_args():
    import tensorflow as tf

    with pytest.raises(ValueError, match=r"must be a \[H, W, C\] tensor"):
        tf_pad_resize(tf.zeros([4, 4]), (8, 8))
    with pytest.raises(ValueError, match="dst_hw"):
        tf_pad_resize(tf.zeros([4, 4, 1]), (8, 0))


def test_import_does_not_load_tensorflow(tmp_path):
    code = "import sys, tfsal.data.resize; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"
