"""The Fig. 2 check and the in-fill measurement, on tiny untrained models (mechanics, not quality)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import load_split
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.evaluation.inpainter_check import (
    check_inpainter,
    fraction_hole_masks,
    healthy_hole_masks,
    infill_score_shift,
    inpaint,
    mass_hole_masks,
)
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    write_dataset(root, n_mass=8, n_healthy=8, size=(64, 64), seed=6, workers=1)
    classifier, inpainter = build_classifier((64, 64)), build_inpainter((64, 64), base_filters=4, max_filters=8)
    classifier.save(root / "clf.keras")
    inpainter.save(root / "inp.keras")
    return root, classifier, inpainter, read_manifest(root)


def test_hole_masks_keep_to_their_regions(setup):
    records = setup[3]
    data = load_split(records, (64, 64))
    healthy = healthy_hole_masks(data["organ"], data["mass"], seed=1)
    assert ((healthy < 0.5) & (data["mass"] > 0.5)).sum() == 0, "a random hole touches a mass"
    assert ((healthy < 0.5) & (data["organ"] < 0.5)).sum() == 0, "a random hole lies outside the breast"
    assert (healthy < 0.5).any()
    assert not np.array_equal(healthy, healthy_hole_masks(data["organ"], data["mass"], seed=2))
    is_mass = data["label"] > 0.5
    holes = mass_hole_masks(data["mass"][is_mass], np.random.default_rng(0))
    assert np.all(holes[data["mass"][is_mass] > 0.5] == 0), "the mass is not entirely a hole"


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.4])
def test_fraction_masks_cover_that_share_of_the_breast(setup, fraction):
    data = load_split(setup[3], (64, 64))
    masks = fraction_hole_masks(data["organ"], fraction, np.random.default_rng(0))
    organ = data["organ"] > 0.5
    shares = [((m < 0.5) & o).sum() / o.sum() for m, o in zip(masks, organ, strict=True)]
    assert np.allclose(shares, fraction, atol=0.02)


def test_inpaint_keeps_known_pixels(setup):
    _, _, inpainter, records = setup
    data = load_split(records[:2], (64, 64))
    masks = np.ones_like(data["image"])
    masks[:, 10:20, 10:20] = 0
    out = inpaint(inpainter, data["image"], masks)
    np.testing.assert_array_equal(out[masks > 0.5], data["image"][masks > 0.5])
    assert not np.allclose(out[masks < 0.5], data["image"][masks < 0.5])


def test_check_reports_three_families_with_runs(setup):
    _, classifier, inpainter, records = setup
    result = check_inpainter(classifier, inpainter, records, runs=2, seed=0)
    assert len(result["original"]["auc"]) == 1 and len(result["healthy_inpainted"]["auc"]) == 2
    assert len(result["mass_inpainted"]["curves"]) == 2 and 0 <= result["mass_score_fell"] <= 1
    assert result["n_mass"] == 8 and result["n_healthy"] == 8
    assert result["inpainting_error"]["hole_l1"] > 0 and result["inpainting_error"]["psnr"] > 0


def test_infill_shift_per_fraction(setup):
    _, classifier, inpainter, records = setup
    shift = infill_score_shift(classifier, inpainter, records, fractions=(0.1, 0.3))
    assert set(shift["fractions"]) == {"0.10", "0.30"} and shift["n_healthy"] == 8
    assert all(np.isfinite(v["mean_change"]) for v in shift["fractions"].values())


@pytest.mark.slow
def test_command_writes_results_and_figures(setup, tmp_path):
    root = setup[0]
    result = CliRunner().invoke(cli, ["check-inpainter", "--data", str(root), "--out", str(tmp_path), "--runs", "2",
                                      "--classifier", str(root / "clf.keras"), "--inpainter", str(root / "inp.keras"),
                                      "--split", "train"])
    assert result.exit_code == 0, result.output
    assert "healthy tissue inpainted: AUC" in result.output and "40% of the breast" in result.output
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"] == 2 and set(saved["infill"]["fractions"]) == {"0.05", "0.20", "0.40"}
    assert (tmp_path / "fig2.png").stat().st_size > 1000 and (tmp_path / "examples.png").stat().st_size > 1000
