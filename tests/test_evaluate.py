"""`tfsal evaluate` end to end on a tiny synthetic set with tiny models: tables, cache, resume."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.manifest import read_manifest
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.errors import TfsalError
from tfsal.evaluation.cache import load_item
from tfsal.evaluation.evaluate import EvaluationSettings, evaluate
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter

pytestmark = pytest.mark.slow  # end-to-end evaluation runs (every method on a data set)

SETTINGS = EvaluationSettings(methods=("counterfactual", "cam", "sal"), steps=3, batch_size=2)


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


FAST = ("counterfactual", "cam", "sal", "gradcam", "sal-blur")  # a cheap subset; every method runs in test_every_method


def test_every_image_counts_in_every_protocol_and_table(tiny, models, tmp_path):
    settings = EvaluationSettings(methods=FAST, steps=3, batch_size=2)
    result = evaluate(tiny / "data", tmp_path, *models, settings)
    images = len(_masses(tiny))
    assert result.images == images >= 2
    summary = result.summary["all"]
    assert summary["images"] == images
    for post in ("raw", "largest"):
        assert set(summary["paper"][post]) == {f"{m}@{p}" for m in FAST[1:] for p in (50, 75, 90)}
        assert set(summary["own"][post]) == {"counterfactual"} and set(summary["area"][post]) == set(FAST)
        for entry in [*summary["paper"][post].values(), *summary["area"][post].values(),
                      *summary["own"][post].values()]:
            assert entry["n"] == images  # empty regions are counted (as the diagonal), not dropped
            assert 0 <= entry["empty"] <= images and entry["D"]["mean"] >= 0
    assert summary["paper"]["raw"]["cam@50"]["A"]["mean"] == pytest.approx(0.5, abs=0.01)  # exactly the share
    assert summary["paper"]["raw"]["cam@90"]["A"]["mean"] == pytest.approx(0.1, abs=0.01)
    # area-matched: every map keeps ours' own area on each image
    own = summary["own"]["raw"]["counterfactual"]["A"]["mean"]
    assert summary["area"]["raw"]["cam"]["A"]["mean"] == pytest.approx(own, abs=1e-3)
    assert set(summary["curve"]) == set(FAST)
    tests = result.tests["all"]
    assert set(tests["paper"]["raw"]) == {f"{m}@{p}:{d}" for m in FAST[1:] for p in (50, 75, 90) for d in "DH"}
    assert all(t["alternative"] == "less" for t in tests["paper"]["raw"].values())
    assert {t["alternative"] for k, t in tests["curve"]["raw"].items() if "insertion" in k} == {"greater"}
    ps = [t["p_holm"] for t in tests["area"]["raw"].values() if np.isfinite(t["p"])]
    assert all(h >= t["p"] for h, t in zip(ps, [t for t in tests["area"]["raw"].values() if np.isfinite(t["p"])],
                                           strict=True))


def test_every_registered_method_runs_through_the_evaluation(tiny, models, tmp_path):
    from tfsal.explain import registry
    from tfsal.explain.amortised import build_feature_mask_network

    rows = tuple(registry.evaluation_rows())
    build_feature_mask_network(models[0]).save(tmp_path / "head.keras")  # the amortised row's, for this classifier
    settings = EvaluationSettings(methods=rows, steps=2, batch_size=2, mask_network=str(tmp_path / "head.keras"))
    result = evaluate(tiny / "data", tmp_path / "out", *models, settings, limit=2)
    tmp_path = tmp_path / "out"
    assert set(result.summary["all"]["curve"]) == set(rows)
    item = load_item(sorted((tmp_path / "cache").glob("*.npz"))[0])
    assert {f"map:{r}" for r in rows} <= set(item)
    timings = json.loads((tmp_path / "timings.json").read_text())  # where the time went, per part
    assert timings["images"] == 2
    assert set(timings["seconds_per_image"]) == ({f"explain:{r}" for r in rows} | {"area-matched scores"}
                                                 | {f"curves:{m}" for m in ("inpainter", "blur")})
    assert all(v > 0 for v in timings["seconds_per_image"].values())


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
    assert json.dumps(first.summary, sort_keys=True, default=float) == json.dumps(second.summary, sort_keys=True,
                                                                                   default=float)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in cache if p not in last)  # the others were kept
    assert all(p.exists() for p in last)


def test_limit_and_other_settings(tiny, models, tmp_path):
    limited = evaluate(tiny / "data", tmp_path / "a", *models, SETTINGS, limit=1)
    assert limited.images == 1
    with pytest.raises(TfsalError, match="other settings"):
        evaluate(tiny / "data", tmp_path / "a", *models,
                 EvaluationSettings(methods=("counterfactual", "cam", "sal"), steps=4, batch_size=2))
    only = evaluate(tiny / "data", tmp_path / "b", *models,
                    EvaluationSettings(methods=("counterfactual", "cam"), lambdas=(("l3", 0.0),), steps=3), limit=1)
    assert set(only.summary["all"]["paper"]["raw"]) == {"cam@50", "cam@75", "cam@90"}


def test_a_cache_is_reused_only_for_the_same_models_and_explainer_defaults(tiny, models, tmp_path, monkeypatch):
    import inspect

    import keras

    from tfsal.explain import CounterfactualExplainer

    evaluate(tiny / "data", tmp_path, *models, SETTINGS, limit=1)
    other = keras.models.clone_model(models[0])  # the same architecture, other weights
    other.set_weights([w + 0.01 for w in models[0].get_weights()])
    with pytest.raises(TfsalError, match="other settings"):
        evaluate(tiny / "data", tmp_path, other, models[1], SETTINGS, limit=1)
    again = keras.models.clone_model(models[0])
    again.set_weights(models[0].get_weights())  # a copy computes the same: the cache is reused
    assert evaluate(tiny / "data", tmp_path, again, models[1], SETTINGS, limit=1).images == 1
    init = CounterfactualExplainer.__init__  # as if a new release changed ours' default learning rate
    names = [p.name for p in inspect.signature(init).parameters.values() if p.default is not inspect.Parameter.empty]
    defaults = list(init.__defaults__)
    defaults[names.index("lr")] = 0.5
    monkeypatch.setattr(init, "__defaults__", tuple(defaults))
    with pytest.raises(TfsalError, match="other settings"):
        evaluate(tiny / "data", tmp_path, *models, SETTINGS, limit=1)


def test_the_amortised_row_is_cached_for_its_mask_network_only(tiny, models, tmp_path):
    import keras

    from tfsal.explain.amortised import build_feature_mask_network

    for name, seed in (("a.keras", 1), ("b.keras", 2)):
        keras.utils.set_random_seed(seed)
        build_feature_mask_network(models[0]).save(tmp_path / name)
    settings = EvaluationSettings(methods=("counterfactual", "amortised"), steps=2, batch_size=2,
                                  mask_network=str(tmp_path / "a.keras"))
    assert evaluate(tiny / "data", tmp_path / "out", *models, settings, limit=1).images == 1
    with pytest.raises(TfsalError, match="other settings"):  # another network under the same name, too
        (tmp_path / "b.keras").replace(tmp_path / "a.keras")
        evaluate(tiny / "data", tmp_path / "out", *models, settings, limit=1)


def test_a_cache_written_under_the_earlier_row_names_is_reused(tiny, models, tmp_path):
    """The counterfactual rows used to be ``ours`` and ``ours-paper``: such a cache (settings and
    per-image keys) is read under today's names, not computed again, and gives the same tables."""
    from tfsal.evaluation.cache import save_item

    first = evaluate(tiny / "data", tmp_path, *models, SETTINGS, limit=1)
    (path,) = (tmp_path / "cache").glob("*.npz")
    item = load_item(path)
    old = {k.replace(":counterfactual", ":ours"): v for k, v in item.items()}
    assert "mask:ours" in old and not any(":counterfactual" in k for k in old)
    save_item(path, {k: v if isinstance(v, np.ndarray) else np.float64(v) for k, v in old.items()})
    settings = tmp_path / "cache" / "settings.json"
    described = json.loads(settings.read_text())
    described["methods"] = ["ours" if m == "counterfactual" else m for m in described["methods"]]
    described["explainer_defaults"]["ours"] = described["explainer_defaults"].pop("counterfactual")
    settings.write_text(json.dumps(described))
    stamp = path.stat().st_mtime_ns
    again = evaluate(tiny / "data", tmp_path, *models, SETTINGS, limit=1)
    assert path.stat().st_mtime_ns == stamp  # reused, not computed again
    assert json.dumps(again.summary, sort_keys=True, default=float) == json.dumps(first.summary, sort_keys=True,
                                                                                   default=float)
    assert load_item(path).keys() == item.keys()


def test_a_truncated_cache_file_is_computed_again(tiny, models, tmp_path, caplog):
    first = evaluate(tiny / "data", tmp_path, *models, SETTINGS, limit=2)
    path = sorted((tmp_path / "cache").glob("*.npz"))[0]
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a disk that filled up, a copy cut short
    second = evaluate(tiny / "data", tmp_path, *models, SETTINGS, limit=2)
    assert "unreadable cache file; computed again" in caplog.text
    assert load_item(path).keys() == load_item(sorted((tmp_path / "cache").glob("*.npz"))[1]).keys()
    assert json.dumps(first.summary, sort_keys=True, default=float) == json.dumps(second.summary, sort_keys=True,
                                                                                   default=float)


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
            "--cases", "1", "--batch-size", "2", "--method", "counterfactual", "--method", "cam", "--method", "sal"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    markdown = (out / "results.md").read_text()
    for title in ("Paper protocol", "Area-matched", "Search-matched", "Deletion and insertion", "one-sided",
                  "Holm", "576x448", "classifier-positive", "largest connected component"):
        assert title in markdown, title
    document = json.loads((out / "results.json").read_text())
    assert document["images"] == 2 and "counterfactual" in document["summary"]["all"]["own"]["raw"]
    assert "own|counterfactual|raw" in document["per_image"][0] and "image||" in document["per_image"][0]
    assert (out / "roc.png").stat().st_size > 1000
    assert CliRunner().invoke(cli, [*args[:5], "--lambda", "l2"]).exit_code == 2


def test_workers_compute_the_same_results_in_separate_processes(tiny, models, tmp_path):
    serial = evaluate(tiny / "data", tmp_path / "one", *models, SETTINGS)
    shared = evaluate(tiny / "data", tmp_path / "two", *models, SETTINGS, workers=2)
    assert shared.images == serial.images
    for one, two in zip(sorted((tmp_path / "one" / "cache").glob("*.npz")),
                        sorted((tmp_path / "two" / "cache").glob("*.npz")), strict=True):
        a, b = load_item(one), load_item(two)
        assert set(a) == set(b)
        for key in a:  # single-threaded workers: the same numbers up to float rounding
            np.testing.assert_allclose(np.asarray(b[key], float), np.asarray(a[key], float), atol=1e-4, err_msg=key)
    timings = json.loads((tmp_path / "two" / "timings.json").read_text())
    assert timings["workers"] == 2 and timings["images"] == serial.images and timings["wall_seconds_per_image"] > 0
    assert not (tmp_path / "two" / "cache" / ".workers").exists()  # the staged models are removed


def test_seed_and_logits_reach_the_explainers_and_a_default_run_keeps_its_cache(tiny, models, tmp_path):
    """--seed moves ours' start (its hole offsets), --logits is passed to every explainer and the
    scorer, and a cache written before these settings existed (they are recorded only when not at
    their defaults) is reused."""
    from tfsal.evaluation.evaluate import _Chunks

    chunks = _Chunks(EvaluationSettings(methods=("counterfactual", "rise"), seed=5, logits=True), *models, (64, 64))
    assert chunks.adapter.logits and all(e.classifier.logits for e in chunks.explainers.values())
    assert chunks.explainers["counterfactual"].settings.seed == 5 and chunks.explainers["rise"].seed == 5
    evaluate(tiny / "data", tmp_path / "a", *models, SETTINGS, limit=1)
    recorded = json.loads(next((tmp_path / "a" / "cache").glob("*.json")).read_text())
    assert "seed" not in recorded and "logits" not in recorded
    with pytest.raises(TfsalError, match="other settings"):
        evaluate(tiny / "data", tmp_path / "a", *models,
                 EvaluationSettings(methods=("counterfactual", "cam", "sal"), steps=3, batch_size=2, seed=1), limit=1)


def test_results_of_earlier_releases_read_under_todays_row_names():
    from tfsal.evaluation.report import label, today_names

    old = {"own|ours|raw": 1, "ours@50:D": 2, "cam:D": 3, "summary": {"ours-paper": 4, "sal-blur": 5}, "x": [
        {"ours-ablation": 6}]}
    assert today_names(old) == {"own|counterfactual|raw": 1, "counterfactual@50:D": 2, "cam:D": 3,
                                "summary": {"counterfactual-paper": 4, "sal-blur": 5},
                                "x": [{"counterfactual-ablation": 6}]}
    assert label("ours") == label("counterfactual") == "counterfactual"
    assert label("ours-paper") == "counterfactual, paper preset"
