"""`tfsal train all` end to end on a tiny synthetic set: stages, model card, weak classifiers, resuming."""

import json
import logging
import shutil

import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.manifest import counts, fingerprint, read_manifest, write_manifest
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.models.card import CARD_NAME, is_weak, read_card, weak_reason, weak_warning
from tfsal.models.classifier import load_classifier
from tfsal.recipes.model_card import reproduce_command
from tfsal.recipes.train_all import STATE_NAME, Progress, RecipeSettings
from tfsal.util.resources import example_images, saved_model_path

# the network is not the default one: the stages after the classifier must work with any backbone
# (the default MobileNet goes through them in the --init-from-shipped test)
TINY = ["--size", "64x64", "--backbone", "mobilenet_v3_small", "--alpha", "0.5", "--pretrain-epochs", "1",
        "--epochs", "1", "--batch-size", "4", "--inpainter-epochs", "1", "--inpainter-finetune-epochs", "0",
        "--finetune-epochs", "1", "--check-runs", "1", "--gamma", "0.7,1.4", "--check-limit", "8"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A user's own data: a folder of DICOMs, mass masks, and a CSV of labels with two images per
    patient and no split, turned into a manifest by ``tfsal data table`` (breast masks computed)."""
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root / "scans", n_mass=8, n_healthy=10, size=(64, 64), seed=5, workers=1, fmt="dicom")
    rows = ["image,label,mask,patient"]
    for i, record in enumerate(read_manifest(root / "scans")):
        mask = record.mask.relative_to(root).as_posix() if record.mask else ""
        rows.append(f"{record.image.relative_to(root).as_posix()},{record.label},{mask},W{i // 2}")
    (root / "mine.csv").write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["data", "table", "--csv", str(root / "mine.csv"), "--out", str(root / "data"),
                                      "--val", "0.3", "--test", "0.2"])
    assert result.exit_code == 0, result.output
    return root / "data"


def _run(*args):
    return CliRunner().invoke(cli, ["train", "all", *args])


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "m"
    result = _run("--data", str(data), "--out", str(out), *TINY)
    return out, result


# ---- without training ----------------------------------------------------------------------------


def test_fingerprint_follows_content_not_place(data, tmp_path):
    records = read_manifest(data)
    copy = tmp_path / "copy"
    shutil.copytree(data.parent, copy)  # the images lie beside the manifest's folder
    assert fingerprint(read_manifest(copy / data.name)) == fingerprint(records)
    relabelled = [*records[1:], type(records[0])(records[0].image, 1 - records[0].label, None, records[0].split)]
    assert fingerprint(relabelled) != fingerprint(records)
    table = counts(records)
    assert sum(c["mass"] + c["healthy"] for c in table.values()) == len(records) == 18
    assert table["train"]["mass_masks"] == table["train"]["mass"]
    assert all(r.organ is None and r.image.suffix == ".dcm" for r in records)  # as a user's data would be


def test_progress_estimates_the_stage_time_left():
    lines = []
    meter = Progress(lines.append, ("classifier_base", "inpainter"))
    meter.begin("classifier_base", {"pretrain": 3, "images": 5})
    meter.epoch({"phase": "pretrain", "epoch": 0, "seconds": 10.0, "loss": 1.0})
    assert "stage 1/2: classifier_base" in lines[0]
    assert "pretrain epoch 1/3" in lines[1] and "about 1m10s left" in lines[1]  # 2 + 5 epochs of 10 s
    meter.epoch({"phase": "images", "epoch": 3, "seconds": 30.0, "val_auc": 0.5})
    assert "images epoch 4/5, val_auc 0.5000" in lines[2] and "about 0m30s left" in lines[2]


def test_reproduce_command_names_only_what_differs():
    defaults = {**RecipeSettings().__dict__, "size": [256, 192], "gamma": [1.0, 1.0]}
    settings = {**defaults, "size": [128, 96], "init_from_shipped": True, "gamma": [0.5, 2.0], "check_limit": None}
    command = reproduce_command(settings, defaults, "labels.csv", "models")
    assert command == ("tfsal train all --data labels.csv --out models --size 128x96 --init-from-shipped "
                       "--gamma 0.5,2 --check-limit 0")
    with pytest.raises(ValueError, match="gamma must be"):
        RecipeSettings(gamma=(1.0, float("inf")))


def test_weak_means_the_validation_interval_reaches_one_half_or_too_few_images():
    counts_ = {"n_mass": 5, "n_healthy": 9, "roc_auc": 0.7}
    assert is_weak({"val": {**counts_, "roc_auc_interval": [0.45, 0.8]}})
    assert is_weak({"val": {**counts_, "roc_auc_interval": [0.5, 0.8]}})
    assert not is_weak({"val": {**counts_, "roc_auc_interval": [0.51, 0.8]}})
    assert is_weak({"val": {**counts_, "n_mass": 4, "roc_auc_interval": [1.0, 1.0]}})  # one positive proves nothing
    assert "4 mass and 9 healthy images, too few" in weak_reason({"val": {**counts_, "n_mass": 4,
                                                                          "roc_auc_interval": [1.0, 1.0]}})


def test_a_weak_card_beside_a_classifier_warns_when_it_is_loaded(tmp_path, caplog):
    model = tmp_path / "classifier.keras"
    shutil.copy(saved_model_path("classifier.keras"), model)
    card = {"weak": True, "models": {"classifier.keras": {}},
            "metrics": {"val": {"roc_auc": 0.55, "roc_auc_interval": [0.41, 0.69]}}}
    (tmp_path / CARD_NAME).write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        load_classifier(model)
    assert "weak" in caplog.text and "0.410-0.690" in caplog.text
    caplog.clear()
    (tmp_path / CARD_NAME).write_text(json.dumps({**card, "weak": False}))
    with caplog.at_level(logging.WARNING):
        load_classifier(model)
    assert "weak" not in caplog.text
    (tmp_path / CARD_NAME).write_text(json.dumps({**card, "models": {"other.keras": {}}}))
    assert read_card(model) is None  # a card about other files says nothing about this one


def test_explain_warns_with_a_weak_card(tmp_path, caplog):
    model = tmp_path / "classifier.keras"
    shutil.copy(saved_model_path("classifier.keras"), model)
    (tmp_path / CARD_NAME).write_text(json.dumps({"weak": True, "models": {"classifier.keras": {}}, "metrics": {
        "val": {"roc_auc": 0.52, "roc_auc_interval": [0.40, 0.64]}}}))
    image = example_images()[0]
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["explain", str(image), "--out", str(tmp_path / "out"), "--method", "cam",
                                          "--classifier", str(model)])
    assert result.exit_code == 0, result.output
    assert "model card says it is weak" in caplog.text and "no decision to explain" in caplog.text


def test_bad_data_and_settings_are_refused_before_training(data, tmp_path):
    healthy_val = [r for r in read_manifest(data) if not (r.split == "val" and r.label == 1)]
    write_manifest(tmp_path / "labels.csv", healthy_val)
    result = _run("--data", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "m"), *TINY)
    assert result.exit_code == 1 and "'val' split needs mass and healthy images" in result.output
    assert _run("--data", str(data), "--out", str(tmp_path / "m2"), "--epochs", "0").exit_code == 2
    shipped_other_network = _run("--data", str(data), "--out", str(tmp_path / "m3"), "--init-from-shipped",
                                 "--backbone", "mobilenet_v3_small")
    assert shipped_other_network.exit_code == 2 and "a MobileNet of alpha 0.25" in shipped_other_network.output
    assert not (tmp_path / "m3").exists()
    with pytest.raises(ValueError, match="backbone must be one of"):
        RecipeSettings(backbone="resnet50")
    with pytest.raises(ValueError, match="film_tone must be a share"):
        RecipeSettings(film_tone=2.0)


# ---- training (slow) -------------------------------------------------------------------------------


@pytest.mark.slow
def test_trains_checks_evaluates_and_writes_a_card(trained, data):
    out, result = trained
    card = json.loads((out / CARD_NAME).read_text())
    assert result.exit_code == (3 if card["weak"] else 0), result.output
    assert card["weak"] == is_weak(card["metrics"]) and ("WARNING" in result.output) == card["weak"]
    for name in ("classifier_base.keras", "inpainter.keras", "classifier.keras"):
        assert (out / name).is_file() and len(card["models"][name]["sha256"]) == 64
    for path in ("check/fig2.png", "check/examples.png", "check/results.json", "evaluation/val/roc.png",
                 "evaluation/test/metrics.json", "evaluation/val/metrics.json"):
        assert (out / path).is_file(), path
    assert card["data"]["fingerprint"] == fingerprint(read_manifest(data))
    assert card["data"]["counts"] == counts(read_manifest(data))
    assert set(card["metrics"]) == {"val", "test"}
    val = json.loads((out / "evaluation/val/metrics.json").read_text())
    assert card["metrics"]["val"]["roc_auc"] == val["roc_auc"]
    sizes = card["metrics"]["test"]["by_lesion_size"]  # the written set's masses all have masks
    assert sizes and all(g["value"].startswith("third ") for g in sizes)
    assert sum(g["n_mass"] for g in sizes) == card["metrics"]["test"]["n_mass"]
    assert list(json.loads((out / STATE_NAME).read_text())["stages"]) == list(RecipeSettings().stages())
    readme = (out / "README.md").read_text()
    assert ("WEAK CLASSIFIER" in readme) == card["weak"]
    for text in ("## Classifier", "By lesion size", f"| test | {sizes[0]['value']} |",
                 "## Data", "## Stages", "Fig. 2 check", "![ROC on the test split]", card["command"],
                 card["data"]["fingerprint"], "--size 64x64 --backbone mobilenet_v3_small --alpha 0.5 "
                 "--pretrain-epochs 1 --epochs 1"):
        assert text in readme, text
    assert str(data) not in readme  # the card names the manifest, not where the files lie
    stage_lines = [line for line in result.output.splitlines() if "stage " in line]
    assert [line.split("stage ")[1].split(":")[0] for line in stage_lines] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert "left in this stage" in result.output
    # the inpainter learned its perceptual features from this run's classifier, not the shipped one
    assert card["stages"]["inpainter"]["settings"]["feature_model"].endswith("classifier_base.keras")
    # its default feature layers are the MobileNet's names; another network's maps stand in for them
    assert load_classifier(out / "classifier.keras").name == "tfsal_mobilenet_v3_small"
    for stage in ("classifier_base", "classifier"):  # --gamma and the network reach both classifier stages
        settings = card["stages"][stage]["settings"]
        assert settings["gamma"] == [0.7, 1.4] and (settings["backbone"], settings["alpha"]) == (
            "mobilenet_v3_small", 0.5)
    assert "--gamma 0.7,1.4" in card["command"]


@pytest.mark.slow
def test_the_trained_models_explain_the_users_dicoms(trained, data, tmp_path, caplog):
    out, _ = trained
    test_images = [str(r.image) for r in read_manifest(data, split="test")]
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["explain", *test_images, "--out", str(tmp_path / "exp"), "--classifier",
                                          str(out / "classifier.keras"), "--inpainter",
                                          str(out / "inpainter.keras"), "--steps", "5"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "exp").glob("*.json"))) == len(test_images) >= 2
    card = json.loads((out / CARD_NAME).read_text())
    assert ("model card says it is weak" in caplog.text) == card["weak"]


@pytest.mark.slow
def test_resume_skips_finished_stages_and_refuses_other_settings(trained, data):
    out, _ = trained
    card = json.loads((out / CARD_NAME).read_text())
    again = _run("--data", str(data), "--out", str(out), *TINY)
    assert again.exit_code == 1 and "pass --resume" in again.output
    other = _run("--data", str(data), "--out", str(out), *TINY[:-2], "--check-limit", "9", "--resume")
    assert other.exit_code == 1 and "check_limit" in other.output
    state = json.loads((out / STATE_NAME).read_text())
    del state["stages"]["evaluate"]  # as if the run had been killed during the evaluation
    (out / STATE_NAME).write_text(json.dumps(state))
    resumed = _run("--data", str(data), "--out", str(out), *TINY, "--resume", "--allow-weak")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("done earlier, skipped") == 4 and "stage 5/5: evaluate" in resumed.output
    assert json.loads((out / CARD_NAME).read_text())["metrics"] == card["metrics"]
    assert (weak_warning(card) is None) == (not card["weak"])


@pytest.mark.slow
def test_init_from_shipped_fine_tunes_the_shipped_models(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_mass=6, n_healthy=8, seed=6, workers=1, val_fraction=0.3)
    out = tmp_path / "m"
    result = _run("--data", str(data), "--out", str(out), "--init-from-shipped", "--batch-size", "4",
                  "--inpainter-epochs", "1", "--inpainter-finetune-epochs", "0", "--finetune-epochs", "1",
                  "--check-runs", "1", "--check-limit", "6", "--allow-weak")
    assert result.exit_code == 0, result.output
    card = json.loads((out / CARD_NAME).read_text())
    assert set(card["models"]) == {"classifier.keras", "inpainter.keras"}
    assert card["stages"]["classifier"]["settings"]["init"] == str(saved_model_path("classifier.keras"))
    assert card["stages"]["inpainter"]["settings"]["init"] == str(saved_model_path("inpainter.keras"))
    assert "stage 1/4: inpainter" in result.output and "--init-from-shipped" in card["command"]
