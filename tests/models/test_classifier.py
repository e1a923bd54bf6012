import subprocess
import sys

import keras
import numpy as np
import pytest

from tfsal.errors import TfsalError
from tfsal.models.classifier import LAST_CONV_LAYER, OUTPUT_LAYER, build_classifier, last_features, load_classifier


def test_shapes_and_layers_cam_needs():
    model = build_classifier((64, 48), alpha=0.25)
    assert model.input_shape == (None, 64, 48, 1) and model.output_shape == (None, 1)
    assert model.get_layer(LAST_CONV_LAYER).output.shape[-1] == 256
    assert isinstance(model.get_layer(OUTPUT_LAYER), keras.layers.Dense)
    out = model.predict(np.random.default_rng(0).random((2, 64, 48, 1), np.float32), verbose=0)
    assert out.shape == (2, 1) and np.all((out > 0) & (out < 1))


def test_alpha_and_dropout_change_the_model():
    assert build_classifier((64, 64), alpha=0.5).count_params() > build_classifier((64, 64), alpha=0.25).count_params()
    assert build_classifier((64, 64), dropout=0.5).get_layer("dropout").rate == 0.5


def test_patch_weights_load_into_the_image_model():
    patch, image = build_classifier((32, 32)), build_classifier((64, 48))
    image.set_weights(patch.get_weights())
    np.testing.assert_array_equal(image.get_layer(OUTPUT_LAYER).kernel.numpy(),
                                  patch.get_layer(OUTPUT_LAYER).kernel.numpy())


def test_the_v3_backbone_is_another_network_under_the_same_head():
    keras.utils.set_random_seed(6)
    v1, v3 = build_classifier((64, 48)), build_classifier((64, 48), backbone="mobilenet_v3_small")
    assert v3.name == "tfsal_mobilenet_v3_small" and v3.count_params() != v1.count_params()
    assert any(isinstance(layer, keras.layers.Add) for layer in v3.layers)  # residual blocks; v1 has none
    assert not any(isinstance(layer, keras.layers.Add) for layer in v1.layers)
    assert last_features(v1) is v1.get_layer(LAST_CONV_LAYER).output
    x = np.random.default_rng(6).random((2, 64, 48, 1), np.float32)
    features = keras.Model(v3.inputs, last_features(v3)).predict(x, verbose=0)
    assert features.shape[1:3] == (2, 2)  # stride 32, as MobileNet's
    kernel, bias = v3.get_layer(OUTPUT_LAYER).get_weights()
    logit = features.mean((1, 2)) @ kernel + bias  # the head pools the last features and weighs them
    np.testing.assert_allclose(v3.predict(x, verbose=0), 1 / (1 + np.exp(-logit)), rtol=1e-4, atol=1e-6)


def test_max_pooling_takes_each_features_largest_value():
    keras.utils.set_random_seed(5)
    averaged, maxed = build_classifier((64, 48)), build_classifier((64, 48), pooling="max")
    maxed.set_weights(averaged.get_weights())  # the pool has no weights
    x = np.random.default_rng(5).random((2, 64, 48, 1), np.float32)
    features = keras.Model(averaged.inputs, averaged.get_layer(LAST_CONV_LAYER).output).predict(x, verbose=0)
    kernel, bias = averaged.get_layer(OUTPUT_LAYER).get_weights()
    for model, pooled in ((averaged, features.mean((1, 2))), (maxed, features.max((1, 2)))):
        logit = pooled @ kernel + bias
        np.testing.assert_allclose(model.predict(x, verbose=0), 1 / (1 + np.exp(-logit)), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [({"size": (16, 64)}, "at least 32x32"), ({"alpha": 0}, "alpha"),
                                             ({"dropout": 1.0}, "dropout"), ({"pooling": "sum"}, "pooling"),
                                             ({"backbone": "resnet"}, "backbone")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(**{"size": (64, 64), **kwargs})


@pytest.mark.slow  # a fresh Python process loads TensorFlow
def test_round_trip_in_a_fresh_process(tmp_path):
    model = build_classifier((64, 48))
    x = np.random.default_rng(1).random((1, 64, 48, 1), np.float32)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "clf.keras")
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, tfsal.models as m; model = m.load_classifier('clf.keras'); "
            "print(float(model.predict(np.load('x.npy'), verbose=0)[0, 0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(float(expected[0, 0]), abs=1e-6)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TfsalError, match=r"missing\.keras: classifier file not found"):
        load_classifier(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TfsalError, match=r"bad\.keras: cannot load the classifier"):
        load_classifier(bad)
