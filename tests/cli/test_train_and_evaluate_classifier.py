"""`tfsal train classifier` then `tfsal evaluate-classifier`, through the command line."""

import json

import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.synthetic_dataset import write_dataset

pytestmark = pytest.mark.slow  # training runs


def test_train_resume_and_evaluate(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_mass=6, n_healthy=6, size=(64, 64), seed=5, workers=1)
    model = tmp_path / "clf.keras"
    base = ["train", "classifier", "--data", str(data), "--out", str(model), "--size", "64x64",
            "--pretrain-epochs", "1", "--patches-per-image", "1", "--batch-size", "4"]
    first = CliRunner().invoke(cli, [*base, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    assert "images epoch 1" in first.output and "best validation AUC" in first.output

    resumed = CliRunner().invoke(cli, [*base, "--epochs", "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "images epoch 2" in resumed.output and "images epoch 1," not in resumed.output

    again = CliRunner().invoke(cli, [*base, "--epochs", "1"])
    assert again.exit_code == 1 and "holds an earlier run" in again.output

    result = CliRunner().invoke(cli, ["evaluate-classifier", "--data", str(data), "--classifier", str(model),
                                      "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_mass"] + metrics["n_healthy"] == len(metrics["scores"]) >= 2
    assert 0 <= metrics["roc_auc"] <= 1 and (tmp_path / "eval" / "roc.png").stat().st_size > 1000

    every = CliRunner().invoke(cli, ["evaluate-classifier", "--data", str(data), "--classifier", str(model),
                                     "--split", "all", "--out", str(tmp_path / "all")])
    assert every.exit_code == 0, every.output
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["split"] == "all"
    assert len(json.loads((tmp_path / "all" / "metrics.json").read_text())["scores"]) == 12  # every image


def test_evaluate_classifier_names_a_missing_model(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, n_mass=3, n_healthy=3, size=(64, 64), seed=5, workers=1)
    result = CliRunner().invoke(cli, ["evaluate-classifier", "--data", str(data), "--classifier",
                                      str(tmp_path / "none.keras"), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'none.keras'}: classifier file not found"

