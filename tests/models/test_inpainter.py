import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsal.errors import TfsalError
from tfsal.models.inpainter import (
    PadToMultiple,
    RepeatChannels,
    build_inpainter,
    composite,
    count_downsamplings,
    encoder_batch_norm_layers,
    freeze_encoder_batch_norm,
    load_inpainter,
)
from tfsal.models.pconv import PartialConv2D

TINY = {"base_filters": 4, "max_filters": 8}


def _inputs(size, seed=0, batch=1, hole_fraction=0.3):
    rng = np.random.default_rng(seed)
    image = rng.random((batch, *size, 1)).astype("float32")
    mask = (rng.random((batch, *size, 1)) > hole_fraction).astype("float32")
    return {"image": image, "mask": mask}


def _pconvs(model):
    return [layer for layer in model.layers if isinstance(layer, PartialConv2D)]


@pytest.mark.parametrize("size", [(37, 29), (64, 48), (16, 16), (3, 5)])
def test_output_has_the_input_shape_for_any_fixed_size(size):
    model = build_inpainter(size, **TINY)
    out = model(_inputs(size, batch=2)).numpy()
    assert model.output_shape == (None, *size, 1) and out.shape == (2, *size, 1)
    assert np.all((out >= 0) & (out <= 1))


def test_a_model_without_size_takes_any_size():
    model = build_inpainter((None, None), **TINY)
    assert sum(layer.strides == (2, 2) for layer in _pconvs(model)) == count_downsamplings((256, 192))
    for size in [(37, 29), (20, 52)]:
        assert model(_inputs(size)).shape == (1, *size, 1)


def test_all_ones_mask_gives_a_finite_prediction():
    model = build_inpainter((24, 20), **TINY)
    out = model({"image": np.ones((1, 24, 20, 1), "float32"), "mask": np.ones((1, 24, 20, 1), "float32")})
    assert np.all(np.isfinite(out.numpy()))


def test_pixels_in_holes_are_never_read():
    model = build_inpainter((24, 20), **TINY)
    inputs = _inputs((24, 20), hole_fraction=0.5)
    changed = dict(inputs, image=np.where(inputs["mask"] == 0, 1.0 - inputs["image"], inputs["image"]))
    np.testing.assert_allclose(model(changed).numpy(), model(inputs).numpy(), atol=1e-6)
    moved = dict(inputs, image=np.where(inputs["mask"] == 1, 1.0 - inputs["image"], inputs["image"]))
    assert np.max(np.abs(model(moved).numpy() - model(inputs).numpy())) > 1e-4  # known pixels are read


def test_training_gradients_are_finite_with_a_large_hole():
    model = build_inpainter((24, 20), **TINY)
    inputs = _inputs((24, 20), seed=1, batch=2)
    inputs["mask"][:, 2:20, 2:18] = 0  # all-hole windows in the first layers
    with tf.GradientTape() as tape:
        out = model(inputs, training=True)
        loss = tf.reduce_mean(tf.abs(out - inputs["image"]))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)


@pytest.mark.parametrize("size, expected", [((256, 192), 5), ((576, 448), 6), ((64, 48), 3), ((37, 29), 2),
                                            ((16, 16), 2), ((7, 100), 0), ((4096, 4096), 8)])
def test_downsampling_rule(size, expected):
    assert count_downsamplings(size) == expected


@pytest.mark.parametrize("size", [(64, 48), (37, 29)])
def test_sixteen_partial_convolutions_and_stride_two_layers_follow_the_rule(size):
    pconvs = _pconvs(build_inpainter(size, **TINY))
    assert len(pconvs) == 16
    strides = [layer.strides for layer in pconvs]
    k = count_downsamplings(size)
    assert strides == [(2, 2)] * k + [(1, 1)] * (16 - k)
    assert [layer.kernel_size[0] for layer in pconvs[:8]] == [7, 5, 5, 3, 3, 3, 3, 3]
    assert pconvs[-1].filters == 1


def test_explicit_downsamplings_and_widths():
    pconvs = _pconvs(build_inpainter((32, 32), base_filters=2, max_filters=8, downsamplings=1))
    assert [layer.strides[0] for layer in pconvs[:8]] == [2, 1, 1, 1, 1, 1, 1, 1]
    assert [layer.filters for layer in pconvs] == [2, 4, 8, 8, 8, 8, 8, 8,  # encoder
                                                   8, 8, 8, 8, 8, 4, 2, 1]  # decoder


def test_encoder_batch_norm_is_named_and_can_be_frozen():
    model = build_inpainter((16, 16), **TINY)
    assert [layer.name for layer in encoder_batch_norm_layers(model)] == [f"enc{i}_bn" for i in range(2, 9)]
    assert freeze_encoder_batch_norm(model) == [f"enc{i}_bn" for i in range(2, 9)]
    assert not any(layer.trainable for layer in encoder_batch_norm_layers(model))
    assert model.get_layer("dec1_bn").trainable
    no_bn = build_inpainter((16, 16), batch_norm=False, **TINY)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in no_bn.layers)


def test_linear_output_is_the_sigmoid_s_argument():
    sigmoid = build_inpainter((16, 12), **TINY)
    linear = build_inpainter((16, 12), output_activation="linear", **TINY)
    linear.set_weights(sigmoid.get_weights())
    inputs = _inputs((16, 12))
    np.testing.assert_allclose(keras.ops.sigmoid(linear(inputs)).numpy(), sigmoid(inputs).numpy(), atol=1e-6)


def test_composite_keeps_known_pixels_and_fills_holes():
    image, prediction = np.array([[0.2, 0.4]]), np.array([[0.9, 0.7]])
    np.testing.assert_allclose(composite(image, np.array([[1.0, 0.0]]), prediction), [[0.2, 0.7]])
    np.testing.assert_allclose(composite(image, np.array([[0.5, 0.5]]), prediction), [[0.55, 0.55]])


def test_helper_layers():
    x = np.ones((1, 5, 7, 1), "float32")
    assert PadToMultiple(4)(x).shape == (1, 8, 8, 1) and float(PadToMultiple(4)(x).numpy().sum()) == 35
    assert PadToMultiple(4).compute_output_shape((None, 5, None, 1)) == (None, 8, None, 1)
    assert RepeatChannels(3)(x).shape == (1, 5, 7, 3)


@pytest.mark.slow  # a fresh Python process loads TensorFlow
def test_round_trip_in_a_fresh_process(tmp_path):
    model = build_inpainter((None, None), downsamplings=2, **TINY)
    inputs = _inputs((13, 11), seed=3)
    expected = model.predict(inputs, verbose=0)
    model.save(tmp_path / "inp.keras")
    np.savez(tmp_path / "inputs.npz", **inputs)
    np.testing.assert_allclose(load_inpainter(tmp_path / "inp.keras").predict(inputs, verbose=0), expected, atol=1e-6)
    code = ("import numpy as np, tfsal.models.inpainter as m; model = m.load_inpainter('inp.keras'); "
            "d = np.load('inputs.npz'); out = model.predict({'image': d['image'], 'mask': d['mask']}, verbose=0); "
            "print(out.shape, repr(float(out.sum())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    shape, total = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert shape == "(1, 13, 11, 1)" and float(total) == pytest.approx(float(expected.sum()), abs=1e-4)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TfsalError, match=r"missing\.keras: inpainter file not found"):
        load_inpainter(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TfsalError, match=r"bad\.keras: cannot load the inpainter"):
        load_inpainter(bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": (16,)}, r"`size` must be \(height, width\)"),
    ({"size": (16, 0)}, r"`size` must be a positive int. Received: size=0"),
    ({"base_filters": 0}, r"`base_filters` must be a positive int. Received: base_filters=0"),
    ({"max_filters": -1}, r"`max_filters` must be a positive int"),
    ({"min_side": 0}, r"`min_side` must be a positive int"),
    ({"kernel_sizes": ()}, r"`kernel_sizes` must not be empty"),
    ({"kernel_sizes": (3, 0)}, r"`kernel_sizes` must be a positive int. Received: kernel_sizes=0"),
    ({"downsamplings": 9}, r"`downsamplings` must be an int in \[0, 8\]. Received: downsamplings=9"),
    ({"output_activation": "relu"}, r"`output_activation` must be one of \('sigmoid', 'linear'\)"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_inpainter(**{"size": (16, 16), **TINY, **kwargs})


@pytest.mark.parametrize("layer, message", [(lambda: PadToMultiple(0), "`multiple` must be a positive int"),
                                            (lambda: RepeatChannels(0), "`channels` must be a positive int")])
def test_helper_layer_bad_arguments(layer, message):
    with pytest.raises(ValueError, match=message):
        layer()
