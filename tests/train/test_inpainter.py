"""Inpainter training end to end on a tiny synthetic set: two phases, resuming, options."""

import json

import keras
import numpy as np
import pytest

from tfsal.data.synthetic_dataset import write_dataset
from tfsal.errors import TfsalError
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import encoder_batch_norm_layers
from tfsal.train.inpainter import InpainterSettings, train_inpainter

pytestmark = pytest.mark.slow  # training runs

TINY = {"size": (64, 64), "epochs": 1, "finetune_epochs": 1, "batch_size": 2, "base_filters": 4, "max_filters": 8,
        "feature_model": "none"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root, n_mass=3, n_healthy=9, size=(64, 64), seed=4, workers=1)
    return root


def _train(data, tmp_path, name="run", resume=False, **changes):
    out = tmp_path / f"{name}.keras"
    summary = train_inpainter(data, out, InpainterSettings(**{**TINY, **changes}), resume=resume, progress=False)
    state = json.loads((tmp_path / f"{name}.keras.ckpt" / "state.json").read_text())
    return keras.saving.load_model(out), summary, state


@pytest.fixture(scope="module")
def baseline(data, tmp_path_factory):
    return _train(data, tmp_path_factory.mktemp("baseline"))


def _weights(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


def test_two_phases_write_a_model_that_inpaints_any_size(baseline):
    model, summary, state = baseline
    assert [e["phase"] for e in state["history"]] == ["with-bn", "frozen-encoder-bn"]
    assert all(np.isfinite(e["val_hole_l1"]) and e["val_psnr"] > 0 for e in state["history"])
    assert summary["best_val_hole_l1"] == pytest.approx(min(e["val_hole_l1"] for e in state["history"]), abs=1e-4)
    image = np.random.default_rng(0).random((1, 64, 64, 1), np.float32)
    mask = np.ones_like(image)
    mask[:, 20:30, 20:30] = 0
    out = model({"image": image, "mask": mask}, training=False).numpy()
    assert out.shape == image.shape and np.isfinite(out).all()


def test_phase_two_freezes_the_encoder_batch_norm(data, tmp_path):
    _train(data, tmp_path, epochs=1, finetune_epochs=0)
    _train(data, tmp_path, name="phase2", epochs=0, finetune_epochs=1)
    folder = tmp_path / "phase2.keras.ckpt"
    before = keras.saving.load_model(folder / json.loads((folder / "state.json").read_text())["files"]["last"])
    moving = [layer.moving_mean.numpy() for layer in encoder_batch_norm_layers(before)]
    fresh = [layer.moving_mean.numpy() for layer in encoder_batch_norm_layers(keras.models.clone_model(before))]
    # frozen from the start of phase 2: the encoder's moving statistics never left their initial values
    for a, b in zip(moving, fresh, strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_goes_on_into_phase_two(data, tmp_path):
    _train(data, tmp_path, epochs=1, finetune_epochs=1)
    _, _, state = _train(data, tmp_path, resume=True, epochs=1, finetune_epochs=2)
    assert [(e["phase"], e["epoch"]) for e in state["history"]] == [
        ("with-bn", 0), ("frozen-encoder-bn", 0), ("frozen-encoder-bn", 1)]
    with pytest.raises(TfsalError, match="other settings"):
        _train(data, tmp_path, resume=True, finetune_epochs=2, lr=1e-2)


@pytest.mark.parametrize("change, differs", [
    ({"seed": 1}, "weights"), ({"lr": 1e-2}, "weights"), ({"max_holes": 5}, "weights"),
    ({"blob_probability": 0.0}, "weights"),
    ({"base_filters": 6}, "parameters"), ({"max_filters": 4}, "parameters"), ({"size": (48, 64)}, "input"),
    ({"batch_size": 3}, "batches"), ({"epochs": 2}, "history"), ({"finetune_epochs": 0}, "history"),
    ({"strategy": "mirrored"}, "strategy"),
])
def test_each_setting_changes_what_training_does(baseline, data, tmp_path, change, differs):
    base_model, base_summary, base_state = baseline
    model, summary, state = _train(data, tmp_path, **change)
    if differs == "weights":
        assert not np.allclose(_weights(model), _weights(base_model), atol=1e-6)
    elif differs == "parameters":
        assert model.count_params() != base_model.count_params()
    elif differs == "input":
        out = model({"image": np.zeros((1, 48, 64, 1), np.float32), "mask": np.ones((1, 48, 64, 1), np.float32)})
        assert out.shape == (1, 48, 64, 1) and state["settings"]["size"] != base_state["settings"]["size"]
    elif differs == "batches":
        assert [e["batches"] for e in state["history"]] != [e["batches"] for e in base_state["history"]]
    elif differs == "history":
        assert len(state["history"]) != len(base_state["history"])
    else:
        assert summary["strategy"] != base_summary["strategy"]


@pytest.mark.parametrize("backbone", ["mobilenet", "mobilenet_v3_small"])
def test_feature_model_adds_perceptual_and_style_terms(baseline, data, tmp_path, backbone):
    # the default feature layers are the network's maps at strides 2, 4 and 8, whatever the network
    build_classifier((64, 64), backbone=backbone).save(tmp_path / "features.keras")
    _, _, state = _train(data, tmp_path, feature_model=str(tmp_path / "features.keras"))
    assert state["history"][0]["perceptual"] > 0 and baseline[2]["history"][0]["perceptual"] == 0


def test_feature_model_of_another_size_is_refused(data, tmp_path):
    build_classifier((64, 48)).save(tmp_path / "features.keras")
    with pytest.raises(TfsalError, match="feature model's input is 64x48"):
        _train(data, tmp_path, feature_model=str(tmp_path / "features.keras"))


def test_init_starts_from_another_inpainters_weights(baseline, data, tmp_path):
    source_model = keras.models.clone_model(baseline[0])
    rng = np.random.default_rng(0)  # kernels moved away from any fresh start; norms left alone
    source_model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim == 4 else w
                              for w in baseline[0].get_weights()])
    source_model.save(tmp_path / "source.keras")
    from_source, _, _ = _train(data, tmp_path, name="from_source", init=str(tmp_path / "source.keras"), epochs=0,
                               finetune_epochs=1)
    fresh, _, _ = _train(data, tmp_path, name="fresh", epochs=0, finetune_epochs=1)
    # one low-lr epoch moves the weights a little: far closer to the source than a fresh run is
    gap = np.abs(_weights(from_source) - _weights(source_model)).mean()
    assert gap < 0.2 * np.abs(_weights(fresh) - _weights(source_model)).mean()


def test_init_of_another_shape_is_refused(baseline, data, tmp_path):
    source = tmp_path / "source.keras"
    baseline[0].save(source)
    with pytest.raises(TfsalError, match="do not fit"):
        _train(data, tmp_path, init=str(source), base_filters=6)
