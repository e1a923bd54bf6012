"""docs/interpolate_classifiers.py: weights on the line between two classifiers of one architecture."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from tfsal.models import build_classifier, load_classifier

_spec = importlib.util.spec_from_file_location(
    "interpolate_classifiers", Path(__file__).resolve().parents[1] / "docs" / "interpolate_classifiers.py")
interpolate_classifiers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(interpolate_classifiers)


def _pair():
    keras.utils.set_random_seed(1)
    a = build_classifier((32, 32), alpha=0.25)
    keras.utils.set_random_seed(2)
    b = build_classifier((32, 32), alpha=0.25)
    return a, b


def test_each_weight_is_the_convex_mix_of_the_two():
    a, b = _pair()
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])
    mixed = interpolate_classifiers.interpolate(a, b, 0.25)
    for x, y, z in zip(a.get_weights(), b.get_weights(), mixed, strict=True):
        np.testing.assert_allclose(z, 0.75 * x + 0.25 * y, rtol=1e-6, atol=1e-7)
    for t, ends in ((0.0, a), (1.0, b)):
        for z, w in zip(interpolate_classifiers.interpolate(a, b, t), ends.get_weights(), strict=True):
            np.testing.assert_allclose(z, w, rtol=0, atol=1e-7)


def test_another_architecture_or_t_outside_the_segment_is_refused():
    a, _ = _pair()
    wider = build_classifier((32, 32), alpha=0.5)
    with pytest.raises(ValueError, match="architecture"):
        interpolate_classifiers.interpolate(a, wider, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_classifiers.interpolate(a, a, 1.5)


def test_the_command_writes_one_loadable_classifier_per_t(tmp_path):
    a, b = _pair()
    a.save(tmp_path / "a.keras")
    b.save(tmp_path / "b.keras")
    interpolate_classifiers.main([str(tmp_path / "a.keras"), str(tmp_path / "b.keras"), "--t", "0,0.5",
                                  "--out", str(tmp_path / "mix_{t}.keras")])
    half = load_classifier(tmp_path / "mix_0.5.keras")
    image = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    reference = build_classifier((32, 32), alpha=0.25)
    reference.set_weights(interpolate_classifiers.interpolate(a, b, 0.5))
    np.testing.assert_allclose(half.predict(image, verbose=0), reference.predict(image, verbose=0), atol=1e-6)
    np.testing.assert_allclose(load_classifier(tmp_path / "mix_0.keras").predict(image, verbose=0),
                               a.predict(image, verbose=0), atol=1e-6)
