"""`tfsal explain --method amortised --mask-network` and `tfsal evaluate --method amortised`: the
one-pass method through the command line, its provenance, and a mask network made for another
classifier refused in one line."""

import hashlib
import json

import cv2
import keras
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.explain.amortised import build_feature_mask_network
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter

from .test_explain import mammogram


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("amortised")
    keras.utils.set_random_seed(0)
    classifier = build_classifier((64, 64))
    classifier.save(folder / "classifier.keras")
    build_inpainter((64, 64), 4, 8).save(folder / "inpainter.keras")
    build_feature_mask_network(classifier, bias=-3.0).save(folder / "deletes.keras")  # proposes the whole breast
    build_feature_mask_network(build_classifier((64, 64))).save(folder / "other.keras")  # another classifier's
    cv2.imwrite(str(folder / "scan.png"), mammogram())
    return folder


def test_explain_with_a_mask_network_records_it_and_verifies_the_proposal(files, tmp_path):
    result = CliRunner().invoke(cli, ["explain", str(files / "scan.png"), "--out", str(tmp_path / "out"),
                                      "--method", "amortised", "--mask-network", str(files / "deletes.keras"),
                                      "--classifier", str(files / "classifier.keras"),
                                      "--inpainter", str(files / "inpainter.keras")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert record["method"] == "amortised" and record["verified"]
    assert record["area_fraction"] == pytest.approx(1.0, abs=0.02)  # the bias -3 deletes every breast cell
    assert record["provenance"]["mask_network"] == {
        "file": "deletes.keras", "sha256": hashlib.sha256((files / "deletes.keras").read_bytes()).hexdigest()}


def test_a_mask_network_of_another_classifier_is_refused_in_one_line(files, tmp_path):
    result = CliRunner().invoke(cli, ["explain", str(files / "scan.png"), "--out", str(tmp_path / "out"),
                                      "--method", "amortised", "--mask-network", str(files / "other.keras"),
                                      "--classifier", str(files / "classifier.keras"),
                                      "--inpainter", str(files / "inpainter.keras")])
    assert result.exit_code == 1 and "features of another classifier" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
