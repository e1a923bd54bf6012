"""Training end to end on a tiny synthetic set (64x64, 12 images), resuming included."""

import itertools
import json

import keras
import numpy as np
import pytest

from tfsal.data.synthetic_dataset import write_dataset
from tfsal.errors import TfsalError
from tfsal.train.classifier import ClassifierSettings, train_classifier

pytestmark = pytest.mark.slow  # training runs

TINY = {"size": (64, 64), "epochs": 1, "pretrain_epochs": 1, "patches_per_image": 1, "batch_size": 4}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root, n_mass=6, n_healthy=6, size=(64, 64), seed=3, workers=1)
    return root


def _train(data, tmp_path, name="run", resume=False, **changes):
    settings = ClassifierSettings(**{**TINY, **changes})
    out = tmp_path / f"{name}.keras"
    summary = train_classifier(data, out, settings, resume=resume, progress=False)
    state = json.loads((tmp_path / f"{name}.keras.ckpt" / "state.json").read_text())
    return keras.saving.load_model(out), summary, state


@pytest.fixture(scope="module")
def baseline(data, tmp_path_factory):
    return _train(data, tmp_path_factory.mktemp("baseline"))


def _weights(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


def test_end_to_end_writes_a_model_and_checkpoints(baseline, data):
    model, summary, state = baseline
    assert model.input_shape == (None, 64, 64, 1)
    assert [e["phase"] for e in state["history"]] == ["pretrain", "images"]
    assert state["done"] and 0 <= summary["best_val_auc"] <= 1
    assert getattr(model, "optimizer", None) is None  # shipped without optimizer state


def test_same_seed_repeats_the_run(baseline, data, tmp_path):
    again, _, _ = _train(data, tmp_path)
    np.testing.assert_allclose(_weights(again), _weights(baseline[0]), atol=1e-5)


def test_resume_goes_on_from_the_last_epoch(data, tmp_path):
    _train(data, tmp_path, epochs=1)
    model, _, state = _train(data, tmp_path, resume=True, epochs=2)
    assert [(e["phase"], e["epoch"]) for e in state["history"]] == [("pretrain", 0), ("images", 0), ("images", 1)]
    assert model.input_shape == (None, 64, 64, 1)


def test_a_run_killed_between_its_files_and_its_state_resumes_from_one_epoch(data, tmp_path, monkeypatch):
    from tfsal.train import common

    _train(data, tmp_path, epochs=1, pretrain_epochs=0)
    folder = tmp_path / "run.keras.ckpt"
    before = json.loads((folder / "state.json").read_text())
    weights = _weights(keras.saving.load_model(folder / before["files"]["last"]))

    def killed(state, folder):
        raise KeyboardInterrupt  # after the epoch's files, before state.json names them

    with monkeypatch.context() as patch:
        patch.setattr(common, "commit", killed)
        with pytest.raises(KeyboardInterrupt):
            _train(data, tmp_path, resume=True, epochs=2, pretrain_epochs=0)
    assert (folder / "last-0002.keras").exists()  # the new epoch's file was written ...
    after = json.loads((folder / "state.json").read_text())
    assert after == before  # ... but the state still names the finished epoch and its files
    np.testing.assert_array_equal(_weights(keras.saving.load_model(folder / after["files"]["last"])), weights)
    _, _, state = _train(data, tmp_path, resume=True, epochs=2, pretrain_epochs=0)
    assert [(e["phase"], e["epoch"]) for e in state["history"]] == [("images", 0), ("images", 1)]
    names = {p.name for p in folder.iterdir() if p.suffix in (".keras", ".npz")}
    assert names == set(state["files"].values())  # the files of earlier epochs are gone


def test_resume_refuses_other_settings_and_a_fresh_run_refuses_an_old_folder(data, tmp_path):
    _train(data, tmp_path, epochs=1, pretrain_epochs=0)
    with pytest.raises(TfsalError, match=r"other settings.*lr"):
        _train(data, tmp_path, resume=True, epochs=1, pretrain_epochs=0, lr=0.1)
    with pytest.raises(TfsalError, match="holds an earlier run"):
        _train(data, tmp_path, epochs=1, pretrain_epochs=0)
    with pytest.raises(TfsalError, match="cannot resume"):
        _train(data, tmp_path, name="never", resume=True)


IMAGES_ONLY = {"pretrain_epochs": 0}  # whole images only: one phase to trace, not two


@pytest.fixture(scope="module")
def images_only(data, tmp_path_factory):
    """The baseline without patch pre-training: settings of the whole-image phase are compared with it."""
    return _train(data, tmp_path_factory.mktemp("images_only"), **IMAGES_ONLY)


PRETRAINING = [  # settings of the patch pre-training, against the baseline that pre-trains
    ({"pretrain_lr": 1e-2}, "weights"), ({"patch_size": 48}, "weights"), ({"patches_per_image": 3}, "batches"),
    ({"pretrain_epochs": 0}, "history"),
]
WHOLE_IMAGES = [  # the rest, against the baseline without pre-training (one phase to trace, not two)
    ({"seed": 1}, "weights"), ({"lr": 1e-2}, "weights"), ({"augment": False}, "weights"), ({"dropout": 0.6}, "weights"),
    ({"gamma": (0.5, 2.0)}, "weights"), ({"alpha": 0.5}, "parameters"), ({"size": (64, 48)}, "input"),
    ({"pooling": "max"}, "pooling"), ({"backbone": "mobilenet_v3_small"}, "parameters"),
    ({"location_weight": 1.0}, "weights"), ({"film_tone": 1.0}, "weights"),
    ({"batch_size": 2}, "batches"), ({"epochs": 2}, "history"), ({"strategy": "mirrored"}, "strategy"),
]


@pytest.mark.parametrize("change, differs, against", [*((c, d, "baseline") for c, d in PRETRAINING),
                                                      *((c, d, "images_only") for c, d in WHOLE_IMAGES)])
def test_each_setting_changes_what_training_does(data, tmp_path, request, change, differs, against):
    base_model, base_summary, base_state = request.getfixturevalue(against)
    model, summary, state = _train(data, tmp_path, **{**(IMAGES_ONLY if against == "images_only" else {}), **change})
    if differs == "weights":
        assert not np.allclose(_weights(model), _weights(base_model), atol=1e-6)
    elif differs == "parameters":
        assert model.count_params() != base_model.count_params()
    elif differs == "input":
        assert model.input_shape != base_model.input_shape
    elif differs == "pooling":
        assert isinstance(model.get_layer("global_pool"), keras.layers.GlobalMaxPooling2D)
        assert isinstance(base_model.get_layer("global_pool"), keras.layers.GlobalAveragePooling2D)
    elif differs == "batches":
        assert [e["batches"] for e in state["history"]] != [e["batches"] for e in base_state["history"]]
    elif differs == "history":
        assert len(state["history"]) != len(base_state["history"])
    else:
        assert summary["strategy"] != base_summary["strategy"]


def test_bad_gamma_range_is_refused():
    with pytest.raises(ValueError, match="gamma must be"):
        ClassifierSettings(gamma=(2.0, 1.0))


def test_film_tone_is_a_share_and_an_augmentation():
    with pytest.raises(ValueError, match="film_tone must be a share"):
        ClassifierSettings(film_tone=1.5)
    with pytest.raises(ValueError, match="film_tone is an augmentation"):
        ClassifierSettings(film_tone=0.5, augment=False)


def test_unknown_pooling_or_backbone_is_refused():
    with pytest.raises(ValueError, match="pooling must be one of"):
        ClassifierSettings(pooling="sum")
    with pytest.raises(ValueError, match="backbone must be one of"):
        ClassifierSettings(backbone="resnet")


@pytest.mark.parametrize("patch_size", [16, 200])
def test_a_patch_that_does_not_fit_is_refused(patch_size):
    with pytest.raises(ValueError, match="patch_size must be in"):
        ClassifierSettings(size=(256, 192), patch_size=patch_size)


def test_location_supervision_trains_a_grid_head_and_writes_the_classifier_without_it(baseline, data, tmp_path):
    model, _, state = _train(data, tmp_path, epochs=1, pretrain_epochs=0, location_weight=1.0)
    entry = state["history"][-1]
    assert entry["grid_loss"] > 0 and entry["label_loss"] > 0 and 0 <= entry["accuracy"] <= 1
    assert len(model.outputs) == 1 and [w.shape for w in model.get_weights()] == [
        w.shape for w in baseline[0].get_weights()]
    assert [layer.name for layer in model.layers] == [layer.name for layer in baseline[0].layers]
    trained = keras.saving.load_model(tmp_path / "run.keras.ckpt" / state["files"]["last"])
    assert [o.shape[1:] for o in trained.outputs] == [(1,), (2, 2, 1)]  # 64x64 input: a 2x2 grid of cells
    shared = keras.Model(trained.input, trained.get_layer("mass_probability").output)
    np.testing.assert_array_equal(_weights(model), _weights(shared))  # the only epoch is the best one


def test_a_location_supervised_run_resumes_with_its_grid_head(data, tmp_path):
    _train(data, tmp_path, epochs=1, pretrain_epochs=0, location_weight=1.0)
    model, _, state = _train(data, tmp_path, resume=True, epochs=2, pretrain_epochs=0, location_weight=1.0)
    assert [e["epoch"] for e in state["history"]] == [0, 1]
    assert all(e["grid_loss"] > 0 for e in state["history"])  # the head trained on after the resume
    assert len(model.outputs) == 1


def test_location_supervision_needs_masks_and_whole_image_epochs(data, tmp_path):
    text = (data / "labels.csv").read_text()
    header, *rows = text.splitlines()
    column = header.split(",").index("mask")
    stripped = [",".join("" if i == column else v for i, v in enumerate(row.split(","))) for row in rows]
    (tmp_path / "labels.csv").write_text("\n".join([header, *stripped]).replace("images/", f"{data}/images/")
                                         .replace("organ/", f"{data}/organ/") + "\n")
    with pytest.raises(TfsalError, match="needs lesion masks"):
        train_classifier(tmp_path, tmp_path / "x.keras", ClassifierSettings(**{**TINY, "location_weight": 1.0}),
                         progress=False)
    with pytest.raises(ValueError, match="needs epochs > 0"):
        ClassifierSettings(epochs=0, location_weight=1.0)
    with pytest.raises(ValueError, match="location_weight must be >= 0"):
        ClassifierSettings(location_weight=-1.0)


def test_patience_stops_early(data, tmp_path):
    _, _, state = _train(data, tmp_path, epochs=4, pretrain_epochs=0, patience=1)
    ran = [e for e in state["history"] if e["phase"] == "images"]
    aucs = [e["val_auc"] for e in ran]
    if len(ran) == 4:  # stopping needs an epoch without improvement
        assert all(b > a for a, b in itertools.pairwise(aucs[1:]))
    else:
        assert ran[-1]["epoch"] - ran[int(np.argmax(aucs))]["epoch"] == 1


def test_needs_a_validation_split(data, tmp_path):
    text = (data / "labels.csv").read_text().replace(",val,", ",train,")
    (tmp_path / "labels.csv").write_text(text.replace("images/", f"{data}/images/").replace(
        "masks/", f"{data}/masks/").replace("organ/", f"{data}/organ/"))
    with pytest.raises(TfsalError, match="no 'val' split"):
        train_classifier(tmp_path, tmp_path / "x.keras", ClassifierSettings(**TINY), progress=False)


def test_learning_rate_halves_without_improvement(data, tmp_path):
    _, _, state = _train(data, tmp_path, epochs=3, pretrain_epochs=0, patience=2)
    ran = [e for e in state["history"] if e["phase"] == "images"]
    best = float("-inf")
    expected_lr = 5e-4
    for entry in ran:
        if entry["val_auc"] > best:
            best = entry["val_auc"]
        else:
            expected_lr /= 2  # patience 2: halves after every epoch without a better AUC
        assert entry["lr"] == pytest.approx(expected_lr)


def test_init_fine_tunes_a_given_classifier_without_pretraining(baseline, data, tmp_path):
    init = tmp_path / "init.keras"
    baseline[0].save(init)
    model, _, state = _train(data, tmp_path, init=str(init), lr=1e-9)
    assert [e["phase"] for e in state["history"]] == ["images"]
    trained = np.concatenate([w.numpy().ravel() for w in model.trainable_weights])
    given = np.concatenate([w.numpy().ravel() for w in baseline[0].trainable_weights])
    np.testing.assert_allclose(trained, given, atol=1e-4)  # BN statistics move; weights barely do at lr 1e-9


def test_infill_augmentation_changes_training(images_only, data, tmp_path):
    from tfsal.models.inpainter import build_inpainter

    build_inpainter((64, 64), base_filters=4, max_filters=8).save(tmp_path / "inpainter.keras")
    model, _, _ = _train(data, tmp_path, **IMAGES_ONLY, infill_inpainter=str(tmp_path / "inpainter.keras"),
                         infill_probability=1.0)  # in-fill is an augmentation of whole images
    assert not np.allclose(_weights(model), _weights(images_only[0]), atol=1e-6)


def test_infill_probability_changes_training(data, tmp_path):
    from tfsal.models.inpainter import build_inpainter

    build_inpainter((64, 64), base_filters=4, max_filters=8).save(tmp_path / "inpainter.keras")
    runs = [_train(data, tmp_path, name=f"p{p}", **IMAGES_ONLY, infill_inpainter=str(tmp_path / "inpainter.keras"),
                   infill_probability=p)[0] for p in (0.0, 1.0)]
    assert not np.allclose(_weights(runs[0]), _weights(runs[1]), atol=1e-6)


def test_checkpoint_dir_holds_the_run(data, tmp_path):
    settings = ClassifierSettings(**{**TINY, "pretrain_epochs": 0})
    train_classifier(data, tmp_path / "model.keras", settings, checkpoint_dir=tmp_path / "elsewhere", progress=False)
    state = json.loads((tmp_path / "elsewhere" / "state.json").read_text())
    assert state["files"] == {"last": "last-0001.keras", "best": "best-0001.keras"}
    assert {"state.json", *state["files"].values()} <= {p.name for p in (tmp_path / "elsewhere").iterdir()}
    assert not (tmp_path / "model.keras.ckpt").exists()
