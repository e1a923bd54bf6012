"""Subgroup AUCs of `evaluate-classifier --by`: hand-worked groups, and a real run through the command."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tfsal.cli.main import cli
from tfsal.data.manifest import Record
from tfsal.errors import TfsalError
from tfsal.evaluation.classifier_metrics import lesion_size_groups, subgroup_aucs


def _records(rows):
    return [Record(image=Path(f"{i}.png"), label=label, extra=extra) for i, (label, extra) in enumerate(rows)]


def test_a_value_both_classes_have_is_measured_within_its_group():
    # density a: masses 0.9, 0.2 against healthy 0.5 -> AUC 1/2; density b: mass 0.4 against 0.3, 0.6 -> 1/2
    records = _records([(1, {"density": "a"}), (1, {"density": "a"}), (0, {"density": "a"}),
                        (1, {"density": "b"}), (0, {"density": "b"}), (0, {"density": "b"})])
    rows = subgroup_aucs(records, [0.9, 0.2, 0.5, 0.4, 0.3, 0.6], "density")
    assert [(r["value"], r["n_mass"], r["n_healthy"], r["against"]) for r in rows] == [
        ("a", 2, 1, "group"), ("b", 1, 2, "group")]
    assert [r["roc_auc"] for r in rows] == [0.5, 0.5]
    # other healthy scores in b, where the two readings differ:
    rows = subgroup_aucs(records, [0.9, 0.2, 0.5, 0.4, 0.1, 0.35], "density")
    assert rows[1]["roc_auc"] == 1.0  # within b: 0.4 beats 0.1 and 0.35 (against all healthy it would be 2/3)


def test_a_value_only_masses_have_is_measured_against_every_healthy_image():
    records = _records([(1, {"lesion": "round"}), (1, {"lesion": "spiculated"}), (1, {"lesion": "round"}),
                        (0, {"lesion": ""}), (0, {"lesion": ""})])
    rows = subgroup_aucs(records, [0.8, 0.1, 0.3, 0.5, 0.2], "lesion")
    assert [(r["value"], r["n_mass"], r["n_healthy"], r["against"]) for r in rows] == [
        ("round", 2, 2, "all healthy"), ("spiculated", 1, 2, "all healthy")]
    assert rows[0]["roc_auc"] == pytest.approx(3 / 4)  # 0.8 > 0.5, 0.2; 0.3 > 0.2 only
    assert rows[1]["roc_auc"] == 0.0
    low, high = rows[0]["roc_auc_interval"]
    assert 0 <= low <= rows[0]["roc_auc"] <= high <= 1


def _square_mask(path, side, height=100):
    mask = np.zeros((height, 80), np.uint8)
    mask[10:10 + side, 10:10 + side] = 255
    Image.fromarray(mask).save(path)
    return path


def test_lesion_size_puts_the_masses_in_thirds_by_their_masks_equivalent_diameter(tmp_path):
    # squares of side s on 100-px-high masks: d = 2 sqrt(s^2 / pi) / 100 = 1.128 s %
    sides = [14, 4, 10, 6, 12, 8]
    records = [Record(image=Path(f"m{s}.png"), label=1, mask=_square_mask(tmp_path / f"m{s}.png", s)) for s in sides]
    records += [Record(image=Path("nomask.png"), label=1),
                Record(image=Path("empty.png"), label=1, mask=_square_mask(tmp_path / "empty.png", 0)),
                Record(image=Path("h1.png"), label=0), Record(image=Path("h2.png"), label=0)]
    groups = lesion_size_groups(records)
    small, middle, large = ("third 1: 4.5-6.8 % of height", "third 2: 9.0-11.3 % of height",
                            "third 3: 13.5-15.8 % of height")
    assert groups == [large, small, middle, small, large, middle, "no mask", "no mask", "", ""]
    # against healthy 0.2 and 0.6: small 0.1, 0.7 win 2 of 4; middle 0.65, 0.3 win 3 of 4; large 0.9, 0.8 all
    scores = [0.9, 0.1, 0.65, 0.7, 0.8, 0.3, 0.5, 0.5, 0.2, 0.6]
    rows = {r["value"]: r for r in subgroup_aucs(records, scores, "lesion_size")}
    assert list(rows) == ["no mask", small, middle, large]
    assert [rows[v]["roc_auc"] for v in (small, middle, large)] == [0.5, 0.75, 1.0]
    assert {r["against"] for r in rows.values()} == {"all healthy"} and rows[large]["n_healthy"] == 2


def test_a_manifest_column_named_lesion_size_is_used_as_it_is():
    records = _records([(1, {"lesion_size": "big"}), (0, {"lesion_size": ""})])
    assert [r["value"] for r in subgroup_aucs(records, [0.9, 0.1], "lesion_size")] == ["big"]
    with pytest.raises(TfsalError, match=r"it has: lesion_size$"):
        subgroup_aucs(records, [0.9, 0.1], "texture")


def test_an_unknown_column_is_named_with_the_ones_there_are():
    records = _records([(1, {"tissue": "F"}), (0, {"tissue": "G"})])
    with pytest.raises(TfsalError, match="no column 'texture' to group by; it has: tissue \\(and lesion_size"):
        subgroup_aucs(records, [0.5, 0.5], "texture")


@pytest.mark.slow  # predicts with the shipped classifier
def test_evaluate_classifier_by_texture_on_a_written_mixture(tmp_path):
    data = tmp_path / "mix"
    made = CliRunner().invoke(cli, ["data", "synth", "--out", str(data), "--world", "mixture", "--n-mass", "8",
                                    "--n-healthy", "8", "--workers", "1", "--seed", "2"])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(cli, ["evaluate-classifier", "--data", str(data), "--split", "all", "--by", "texture",
                                      "--by", "lesion", "--by", "lesion_size", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert "texture=" in result.output and "(all healthy)" in result.output
    assert "lesion_size=third 1: " in result.output and "lesion_size=third 3: " in result.output
    refused = CliRunner().invoke(cli, ["evaluate-classifier", "--data", str(data), "--by", "scanner",
                                       "--out", str(tmp_path / "e2")])
    assert refused.exit_code == 1 and "no column 'scanner'" in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "e2" / "metrics.json").exists()
