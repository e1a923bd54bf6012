"""`tfsal evaluate` end to end on a tiny synthetic set with tiny models: tables, cache, resume."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.manifest import read_manifest
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.errors import TfsalError
from tfsal.evaluation.evaluate import EvaluationSettings, evaluate, method_keys
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter

pytestmark = pytest.mark.slow  # end-to-end evaluation runs (every method on a data set)

SETTINGS = EvaluationSettings(steps=3, batch_size=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root / "data", n_mass=12, n_healthy=4, size=(64, 64), seed=3, workers=1)
    build_classifier((64, 64)).save(root / "classifier.keras")
    build_inpainter((64, 64), 4, 8).save(root / "inpainter.keras")
    return root


@pytest.fixture(scope="module")
def models(tiny):
    from tfsal.models.classifier import load_classifier
    from tfsal.models.inpainter import load_inpainter

    return load_classifier(tiny / "classifier.keras"), load_inpainter(tiny / "inpainter.keras")


def _masses(tiny):
    return [r for r in read_manifest(tiny / "data", split="test") if r.label == 1]


def test_every_method_and_percentile_is_scored_with_and_without_post_processing(tiny, models, tmp_path):
    result = evaluate(tiny / "data", tmp_path, *models, SETTINGS)
    assert result.images == len(_masses(tiny)) >= 2
    keys = method_keys(SETTINGS.methods)
    assert "ours" in keys and "cam@90" in keys and "gradcam@50" in keys and len(keys) == 3 + 3 * 3
    for post in ("raw", "largest"):
        assert set(result.summary[post]) == set(keys)
        for key in keys:
            entry = result.summary[post][key]
            assert entry["images"] == result.images and 0 <= entry["empty"] <= result.images
            if entry["empty"] < result.images:
                assert entry["D"][0] >= 0 and entry["H"][0] >= entry["D"][0] * 0  # finite, non-negative
                assert entry["D_paper"][0] >= entry["D"][0]  # 576x448 pixels are smaller than 64x64 ones
    baseline = result.summary["raw"]["cam@50"]
    assert baseline["A"][0] == pytest.approx(0.5, abs=0.05)  # P = 50 keeps half the breast
    assert set(result.tests["raw"]) == set(keys) - {"ours"}


def test_a_resumed_run_computes_only_what_is_missing_and_gives_the_same_tables(tiny, models, tmp_path):
    first = evaluate(tiny / "data", tmp_path, *models, SETTINGS)
    cache = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(cache) == first.images
    stamps = {p: p.stat().st_mtime_ns for p in cache}
    # as if the run had been interrupted before its last batch (the same batch is recomputed: a
    # batch of another composition may differ in float rounding, and the tiny random models sit
    # on the 0.5 decision threshold)
    last = cache[len(cache) - 1 - (len(cache) - 1) % SETTINGS.batch_size:]
    for path in last:
        path.unlink()
    second = evaluate(tiny / "data", tmp_path, *models, SETTINGS)
    assert json.dumps(first.summary, sort_keys=True) == json.dumps(second.summary, sort_keys=True)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in cache if p not in last)  # the others were kept
    assert all(p.exists() for p in last)


def test_limit_and_other_settings(tiny, models, tmp_path):
    limited = evaluate(tiny / "data", tmp_path / "a", *models, SETTINGS, limit=1)
    assert limited.images == 1
    with pytest.raises(TfsalError, match="other settings"):
        evaluate(tiny / "data", tmp_path / "a", *models, EvaluationSettings(steps=4, batch_size=2))
    only = evaluate(tiny / "data", tmp_path / "b", *models,
                    EvaluationSettings(methods=("ours", "cam"), lambdas=(("l3", 0.0),), steps=3), limit=1)
    assert set(only.summary["raw"]) == {"ours", "cam@50", "cam@75", "cam@90"}


def test_a_split_without_mass_images_is_refused(models, tmp_path):
    write_dataset(tmp_path / "healthy", n_mass=0, n_healthy=3, size=(64, 64), seed=1, workers=1)
    with pytest.raises(TfsalError, match="no mass image"):
        evaluate(tmp_path / "healthy", tmp_path / "out", *models, SETTINGS)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="methods"):
        EvaluationSettings(methods=("lime",))
    with pytest.raises(ValueError, match="lambdas"):
        EvaluationSettings(lambdas=(("l4", 1.0),))


def test_command_writes_tables_and_figures(tiny, tmp_path):
    out = tmp_path / "eval"
    args = ["evaluate", "--data", str(tiny / "data"), "--out", str(out), "--classifier", str(tiny / "classifier.keras"),
            "--inpainter", str(tiny / "inpainter.keras"), "--steps", "2", "--limit", "2", "--fig2-runs", "1",
            "--cases", "1", "--batch-size", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    markdown = (out / "results.md").read_text()
    assert "Table 1" in markdown and "Table 2" in markdown and "Faithfulness" in markdown and "576x448" in markdown
    document = json.loads((out / "results.json").read_text())
    assert document["images"] == 2 and "ours" in document["summary"]["raw"]
    assert (out / "roc.png").stat().st_size > 1000
    assert CliRunner().invoke(cli, [*args[:5], "--lambda", "l2"]).exit_code == 2
    assert np.isfinite(document["summary"]["raw"]["cam@90"]["A"][0])
