import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsal.models import pconv
from tfsal.models.pconv import PartialConv2D


def _keras_padding(length, kernel, stride, padding):
    """(before, after, output length) as TensorFlow computes them."""
    if padding == "valid":
        return 0, 0, (length - kernel) // stride + 1
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2, out


def np_partial_conv(x, m, kernel, bias, stride, padding):
    """Liu et al. 2018, eq. 1-2, one window at a time; ``m`` has 1 channel (broadcast) or C."""
    batch, height, width, _ = x.shape
    kh, kw, _, filters = kernel.shape
    top, bottom, out_h = _keras_padding(height, kh, stride, padding)
    left, right, out_w = _keras_padding(width, kw, stride, padding)
    window_size = kh * kw * m.shape[-1]
    pad = ((0, 0), (top, bottom), (left, right), (0, 0))
    xp, mp = np.pad(x * m, pad), np.pad(m, pad)
    out = np.zeros((batch, out_h, out_w, filters))
    new_mask = np.zeros((batch, out_h, out_w, 1))
    for b in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                total = mp[b, rows, cols].sum()
                if total > 0:
                    out[b, i, j] = np.tensordot(xp[b, rows, cols], kernel, axes=3) * window_size / total + bias
                    new_mask[b, i, j] = 1
    return out, new_mask


def _random_case(rng, shape, mask_channels):
    x = rng.normal(size=shape).astype("float32")
    m = (rng.random((*shape[:3], mask_channels)) > 0.6).astype("float32")
    m[0, :5, :5] = 0  # a hole larger than any kernel: all-hole windows
    return x, m


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("mask_channels", [1, 3])
@pytest.mark.parametrize("size", [(9, 8), (10, 7)])
def test_agrees_with_numpy_reference(stride, padding, mask_channels, size):
    rng = np.random.default_rng(stride + 10 * mask_channels + size[1])
    x, m = _random_case(rng, (2, *size, 3), mask_channels)
    layer = PartialConv2D(4, (3, 2), strides=stride, padding=padding, bias_initializer="random_normal")
    y, new_m = layer([x, m])
    ref_y, ref_m = np_partial_conv(x, m, layer.kernel.numpy(), layer.bias.numpy(), stride, padding)
    assert np.max(np.abs(y.numpy() - ref_y)) < 1e-5
    assert new_m.shape[-1] == (1 if mask_channels == 1 else 4)
    np.testing.assert_array_equal(new_m.numpy(), np.broadcast_to(ref_m, new_m.shape))
    assert np.any(ref_m == 0) and np.all(y.numpy()[np.broadcast_to(ref_m, y.shape) == 0] == 0)


def test_gradients_wrt_features_are_finite_with_all_hole_windows():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, 12, 10, 2)).astype("float32"))
    m = np.ones((1, 12, 10, 1), "float32")
    m[0, 2:9, 1:8] = 0
    layer = PartialConv2D(3, 3, strides=2)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, _ = layer([x, tf.constant(m)])
        loss = tf.reduce_sum(y ** 2)
    grad = tape.gradient(loss, [x, *layer.trainable_weights])
    assert all(np.all(np.isfinite(g.numpy())) for g in grad)
    np.testing.assert_array_equal(grad[0].numpy()[0, 2:9, 1:8], 0)  # holes are not read


def test_mask_path_carries_no_gradient():
    m = tf.constant((np.random.default_rng(4).random((1, 6, 6, 1)) > 0.5).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(m)
        y, new_m = PartialConv2D(2, 3)([tf.zeros((1, 6, 6, 1)), m])  # zero features: only the ratio depends on m
        mask_loss, feature_loss = tf.reduce_sum(new_m), tf.reduce_sum(y)
    for loss in (mask_loss, feature_loss):
        grad = tape.gradient(loss, m)
        assert grad is None or np.all(grad.numpy() == 0)


def test_full_mask_equals_plain_convolution_inside():
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 2)).astype("float32")
    layer = PartialConv2D(3, 3, padding="valid")
    y, new_m = layer([x, np.ones((1, 8, 8, 2), "float32")])
    conv = keras.ops.conv(x, layer.kernel, padding="valid") + layer.bias
    np.testing.assert_allclose(y.numpy(), conv.numpy(), atol=1e-5)
    assert np.all(new_m.numpy() == 1)


@pytest.mark.parametrize("size, stride, padding, expected", [
    ((16, 12), 1, "same", (16, 12)), ((16, 12), 2, "same", (8, 6)), ((15, 11), 2, "same", (8, 6)),
    ((16, 12), 1, "valid", (12, 8)), ((16, 12), 2, "valid", (6, 4))])
def test_output_shapes(size, stride, padding, expected):
    layer = PartialConv2D(5, 5, strides=stride, padding=padding)
    y, m = layer([np.zeros((2, *size, 3), "float32"), np.ones((2, *size, 1), "float32")])
    assert y.shape == (2, *expected, 5) and m.shape == (2, *expected, 1)
    assert layer.compute_output_shape([(None, *size, 3), (None, *size, 3)]) == [(None, *expected, 5),
                                                                               (None, *expected, 5)]


def test_only_kernel_and_bias_are_weights_and_trainable():
    layer = PartialConv2D(4, 3)
    layer([np.zeros((1, 8, 8, 2), "float32"), np.ones((1, 8, 8, 2), "float32")])
    assert [w.path.split("/")[-1] for w in layer.trainable_weights] == ["kernel", "bias"]
    assert layer.non_trainable_weights == []
    assert len(PartialConv2D(4, 3, use_bias=False)([np.zeros((1, 8, 8, 2)), np.ones((1, 8, 8, 1))])) == 2


def test_keras_file_round_trip(tmp_path):
    features, mask = keras.Input((None, None, 2)), keras.Input((None, None, 1))
    y, m = PartialConv2D(3, 3, strides=2, padding="valid", name="pconv")([features, mask])
    model = keras.Model([features, mask], [y, m])
    x = np.random.default_rng(2).normal(size=(1, 9, 7, 2)).astype("float32")
    mk = (np.random.default_rng(3).random((1, 9, 7, 1)) > 0.5).astype("float32")
    model.save(tmp_path / "pconv.keras")
    loaded = keras.saving.load_model(tmp_path / "pconv.keras")
    assert loaded.get_layer("pconv").get_config() == model.get_layer("pconv").get_config()
    for a, b in zip(model.predict([x, mk], verbose=0), loaded.predict([x, mk], verbose=0), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_config_round_trip():
    layer = PartialConv2D(3, (5, 3), strides=(2, 1), padding="VALID", use_bias=False, name="p")
    clone = PartialConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.kernel_size == (5, 3) and clone.strides == (2, 1) and clone.padding == "valid"


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": 0}, r"`filters` must be a positive int. Received: filters=0"),
    ({"kernel_size": (3, 3, 3)}, r"`kernel_size` must be an int or a tuple of 2 ints. Received: kernel_size="),
    ({"kernel_size": 0}, r"`kernel_size` must be positive. Received: kernel_size=0"),
    ({"strides": 3}, r"`strides` must be 1 or 2 in each dimension. Received: strides=3"),
    ({"padding": "causal"}, r"`padding` must be one of \('same', 'valid'\). Received: padding=causal"),
])
def test_bad_init_args(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PartialConv2D(**{"filters": 2, "kernel_size": 3, **kwargs})


def test_mask_with_wrong_channels_is_rejected():
    with pytest.raises(ValueError, match=r"1 channel or as many as the features \(3\)"):
        PartialConv2D(2, 3)([np.zeros((1, 8, 8, 3)), np.ones((1, 8, 8, 2))])


def test_single_input_is_rejected():
    with pytest.raises(ValueError, match=r"expects a list \[features, mask\]"):
        PartialConv2D(2, 3).build((1, 8, 8, 3))


def test_docstring_example_runs():
    result = doctest.testmod(pconv, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
