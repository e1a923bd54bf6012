"""`tfsal explain-batch`: the Beam pipeline (DirectRunner) against `tfsal explain` and `tfsal predict`, dead
letters, resuming, the results table, and usage errors."""

import csv
import hashlib
import json
import shutil
import sys

import cv2
import keras
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from tfsal.cli.main import cli
from tfsal.serving.export import export_explainer
from tfsal.serving.server import ModelServer

from ..explain.conftest import _blob_classifier, _mean_inpainter, mammogram_like

pytestmark = pytest.mark.slow  # Beam pipelines (DirectRunner worker processes)

GOOD = [f"scan{i}.png" for i in range(8)]
BAD = ["garbage.dcm", "truncated.png"]
TABLES = {"results.csv", "dead_letters.csv"}
# --batch-size 1 in both commands: each image is optimised alone, whatever the pipeline's batches
OPTIONS = ["--steps", 3, "--batch-size", 1]
IN_MEMORY = ["--direct-running-mode", "in_memory"]


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def errors(result):
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


def table(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def assert_same_outputs(out, reference, names, exact=True):
    """Equal JSON records but for the time taken and the batch size, byte-equal masks, and byte-equal other images and
    arrays (``exact``) or within a grey level and 1e-5 (optimised in other batches)."""
    for name in names:
        if name.endswith(".json"):
            ours, theirs = json.loads((out / name).read_text()), json.loads((reference / name).read_text())
            for key in ("score_original", "score_counterfactual", "area_fraction"):
                assert ours.pop(key) == pytest.approx(theirs.pop(key), abs=1e-6), (name, key)
            for key in ("seconds", "timing"):
                ours.pop(key), theirs.pop(key)
            for record in (ours, theirs):  # the batch size changes no result (and no resume)
                record["provenance"]["settings"].pop("batch_size")
            assert ours == theirs, name
        elif exact or name.endswith("_mask.png"):
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
        elif name.endswith(".npy"):
            np.testing.assert_allclose(np.load(out / name), np.load(reference / name), atol=1e-5, err_msg=name)
        else:
            ours, theirs = (cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED).astype(int)
                            for folder in (out, reference))
            assert np.abs(ours - theirs).max() <= 1, name


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """8 mammograms (a bright 'mass' in every other one) at 88x72, not the classifier's 64x64, so
    outputs are padded and mapped back; a truncated PNG and a garbage .dcm among them."""
    folder = tmp_path_factory.mktemp("in")
    for i, name in enumerate(GOOD):
        image = cv2.resize(mammogram_like(i, blob=i % 2 == 0)[..., 0], (72, 88), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(folder / name), (np.clip(image, 0, 1) * 65535).astype(np.uint16))
    data = (folder / GOOD[0]).read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 3])
    (folder / "garbage.dcm").write_bytes(b"neither DICOM nor any image " * 8)
    return folder


@pytest.fixture(scope="module")
def batch_run(images, blob_models, tmp_path_factory):
    """One run with the DirectRunner's default: 2 worker processes."""
    out = tmp_path_factory.mktemp("batch")
    result = run("explain-batch", "--input", images, "--out", out, *OPTIONS, *blob_models,
                 "--direct-num-workers=2", "--direct-running-mode=multi_processing")
    return out, result


def test_rows_ok_and_dead_letters_named_without_stopping_the_pipeline(batch_run, images):
    out, result = batch_run
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert sorted(errors(result)) == sorted(f"Error: {images / name}: {reason}" for name, reason in [
        ("garbage.dcm", "not a recognised image format (expected DICOM, PNG, JPEG, TIFF, NPY or PGM)"),
        ("truncated.png", "corrupt or truncated PNG file (no IEND chunk: the file is truncated)")])
    assert "8 explained, 0 already done, 2 failed" in result.output
    rows = table(out / "results.csv")
    assert [row["input"] for row in rows] == [str(images / n) for n in ["garbage.dcm", *GOOD, "truncated.png"]]
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == 8 and all(row["error"] == "" for row in ok)
    for row in ok:
        stem = row["input"].rsplit("/", 1)[1].split(".")[0]
        record = json.loads((out / f"{stem}.json").read_text())
        assert float(row["score_original"]) == record["score_original"]
        assert float(row["area_fraction"]) == record["area_fraction"]
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED) > 0
        assert int(row["components"]) == ndimage.label(mask, structure=np.ones((3, 3)))[1]
    masses = [row for row in ok if int(row["input"][-5]) % 2 == 0]
    assert all(float(row["score_original"]) > 0.5 and int(row["components"]) > 0 for row in masses)
    failed = {row["input"]: row for row in rows if row["status"] == "error"}
    assert set(failed) == {str(images / name) for name in BAD}
    assert all(row["score_original"] == "" and row["error"] for row in failed.values())
    dead = table(out / "dead_letters.csv")
    assert {row["input"]: row["reason"] for row in dead} == {k: row["error"] for k, row in failed.items()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_outputs_identical_to_tfsal_explain(batch_run, images, blob_models, tmp_path):
    out, _ = batch_run
    reference = run("explain", images, "--out", tmp_path, *OPTIONS, *blob_models)
    assert reference.exit_code == 1 and len(errors(reference)) == 2
    names = {p.name for p in tmp_path.iterdir()}
    assert {p.name for p in out.iterdir()} - TABLES == names and len(names) == 8 * 5
    assert_same_outputs(out, tmp_path, sorted(names))


def test_a_rerun_writes_nothing(batch_run, images, blob_models):
    out, _ = batch_run
    before = snapshot(out)
    result = run("explain-batch", "--input", images, "--out", out, *OPTIONS, *blob_models, *IN_MEMORY)
    assert result.exit_code == 1 and len(errors(result)) == 2  # the bad files are tried again, and fail again
    assert "0 explained, 8 already done, 2 failed" in result.output
    assert snapshot(out) == before


def test_resumes_after_an_output_is_deleted_and_takes_a_manifest(batch_run, images, blob_models, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch_run[0], out)
    done = snapshot(out)
    for path in out.glob("scan3*"):
        path.unlink()
    manifest = tmp_path / "list.csv"  # absolute paths, in the folder's order: the same inputs and stems
    manifest.write_text("path,label\n" + "".join(f"{images / n},1\n" for n in ["garbage.dcm", *GOOD,
                                                                                "truncated.png"]))
    result = run("explain-batch", "--input", manifest, "--out", out, *OPTIONS, *blob_models, *IN_MEMORY)
    assert result.exit_code == 1 and "1 explained, 7 already done, 2 failed" in result.output
    now = snapshot(out)
    assert set(now) == set(done)
    rewritten = {name for name in now if now[name] != done[name]}
    assert {name for name in rewritten if not name.startswith("scan3")} <= {"results.csv"}
    assert_same_outputs(out, batch_run[0], sorted(name for name in now if name.startswith("scan3")))
    rows = {row["input"]: row for row in table(out / "results.csv")}
    assert len(rows) == 10 and sum(row["status"] == "ok" for row in rows.values()) == 8
    assert rows[str(images / "scan3.png")]["status"] == "ok"


def test_an_output_of_another_input_with_the_same_name_is_not_taken_as_done(batch_run, images, blob_models,
                                                                           tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch_run[0], out)
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(images / "scan3.png", other / "scan3.png")  # the same name, another input
    result = run("explain-batch", "--input", other / "scan3.png", "--out", out, *OPTIONS, *blob_models, *IN_MEMORY)
    assert result.exit_code == 0 and "1 explained, 0 already done" in result.output, result.output
    assert json.loads((out / "scan3.json").read_text())["input"] == str(images / "scan3.png")  # kept
    assert json.loads((out / "scan3_2.json").read_text())["input"] == str(other / "scan3.png")


def test_resumes_only_what_was_made_from_the_same_content_with_the_same_settings(images, blob_models, tmp_path):
    """An output is reused only when its JSON holds the input file's current SHA-256 and the same
    method, settings and models; another batch size reuses it (it changes no result)."""
    out, inputs = tmp_path / "out", tmp_path / "in"
    inputs.mkdir()
    for name in GOOD:
        shutil.copy(images / name, inputs / name)
    first = run("explain-batch", "--input", inputs, "--out", out, *OPTIONS, *blob_models, *IN_MEMORY)
    assert "8 explained, 0 already done" in first.output, first.output
    again = run("explain-batch", "--input", inputs, "--out", out, "--steps", 3, "--batch-size", 4, *blob_models,
                *IN_MEMORY)
    assert "0 explained, 8 already done" in again.output, again.output
    image = cv2.imread(str(inputs / "scan2.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(inputs / "scan2.png"), image // 2)  # the same path, other pixels
    changed = run("explain-batch", "--input", inputs, "--out", out, *OPTIONS, *blob_models, *IN_MEMORY)
    assert "1 explained, 7 already done" in changed.output, changed.output
    record = json.loads((out / "scan2.json").read_text())
    assert record["input_sha256"] == hashlib.sha256((inputs / "scan2.png").read_bytes()).hexdigest()
    other_seed = run("explain-batch", "--input", inputs, "--out", out, *OPTIONS, "--seed", 7, *blob_models,
                     *IN_MEMORY)
    assert "8 explained, 0 already done" in other_seed.output, other_seed.output
    assert {json.loads((out / n.replace(".png", ".json")).read_text())["provenance"]["seed"] for n in GOOD} == {7}
    assert not list(out.glob("scan*_2*"))  # the same inputs' outputs replaced, no second set
    other_target = run("explain-batch", "--input", inputs, "--out", out, *OPTIONS, "--seed", 7, "--target", 0,
                       *blob_models, *IN_MEMORY)
    assert "8 explained, 0 already done" in other_target.output, other_target.output
    baseline = run("explain-batch", "--input", inputs, "--out", out, "--batch-size", 1, "--method", "cam",
                   *blob_models, *IN_MEMORY)  # CAM takes no --steps
    assert "8 explained, 0 already done" in baseline.output, baseline.output
    assert not list(out.glob("*_saliency.npy"))  # the counterfactual method's: removed before CAM's run
    assert {p.name for p in out.iterdir()} - TABLES == {f"scan{i}{end}" for i in range(8) for end in (
        ".json", "_overlay.png", "_mask.png", "_counterfactual.png")}  # CAM's, with the inpainter given


def test_a_baseline_with_its_options_writes_what_tfsal_explain_writes(images, blob_models, tmp_path):
    options = ["--method", "sal-blur", "--percentile", 80, "--batch-size", 2]
    inputs = [images / name for name in GOOD[:3]]
    given = [part for path in inputs for part in ("--input", path)]
    batch = run("explain-batch", *given, "--out", tmp_path / "batch", *options, *blob_models, *IN_MEMORY)
    assert batch.exit_code == 0 and "3 explained" in batch.output, batch.output
    single = run("explain", *inputs, "--out", tmp_path / "single", *options, *blob_models)
    assert single.exit_code == 0, single.output
    names = sorted(p.name for p in (tmp_path / "single").iterdir())
    assert {p.name for p in (tmp_path / "batch").iterdir()} - TABLES == set(names)
    assert_same_outputs(tmp_path / "batch", tmp_path / "single", names)
    record = json.loads((tmp_path / "batch" / "scan0.json").read_text())
    assert record["method"] == "sal-blur" and record["provenance"]["settings"]["percentile"] == 80


def test_a_batch_that_cannot_be_explained_fails_its_inputs_not_the_pipeline(images, blob_models, tmp_path):
    result = run("explain-batch", "--input", images, "--out", tmp_path, *OPTIONS, *blob_models, *IN_MEMORY,
                 "--target", 5)  # the classifier has one sigmoid output: classes 0 and 1
    assert result.exit_code == 1 and "0 explained, 0 already done, 10 failed" in result.output
    assert sum("cannot explain: target 5 is out of range" in line for line in errors(result)) == 8
    assert {p.name for p in tmp_path.iterdir()} == TABLES
    assert len(table(tmp_path / "dead_letters.csv")) == 10


def test_an_option_the_method_does_not_take_is_refused(images, tmp_path):
    result = run("explain-batch", "--input", images, "--out", tmp_path / "out", "--method", "cam", "--steps", 300)
    assert result.exit_code == 2 and "--method cam does not use --steps" in result.output
    assert not (tmp_path / "out").exists()


def test_list_inputs_takes_a_manifest_a_folder_a_file_and_a_glob(images, tmp_path):
    from tfsal.outputs.inputs import list_inputs

    (tmp_path / "labels.csv").write_text("image,label,mask,split\nscans/a.png,1,,test\n\n")
    assert list_inputs([tmp_path / "labels.csv"]) == [str(tmp_path / "scans" / "a.png")]
    assert list_inputs([images]) == [str(images / n) for n in ["garbage.dcm", *GOOD, "truncated.png"]]
    assert list_inputs([images / "scan1.png", f"{images}/scan[23].png"]) == [str(images / n) for n in
                                                                              ["scan1.png", "scan2.png", "scan3.png"]]
    assert list_inputs([f"{images}/**/scan7.*"]) == [str(images / "scan7.png")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    from tfsal.explain.amortised import build_mask_network

    keras.utils.set_random_seed(3)
    network = build_mask_network((64, 64), bias=-1.0)  # random weights: some cells deleted, some kept
    export_explainer(base, _blob_classifier(), _mean_inpainter(), version=1, steps=5, cell=4, mask_network=network)
    running = ModelServer(base, port=0, model_name="tfsal", host="127.0.0.1", workers=2)
    running.start()
    yield f"127.0.0.1:{running.port}"
    running.stop(0)


def test_server_writes_what_tfsal_predict_writes(server, images, tmp_path):
    # batches of 3 in one request each, against predict's one image per request
    result = run("explain-batch", "--input", images, "--out", tmp_path / "batch", "--server", server,
                 "--batch-size", 3, *IN_MEMORY)
    assert result.exit_code == 1 and "8 explained, 0 already done, 2 failed" in result.output
    reference = run("predict", images, "--out", tmp_path / "predict", "--server", server)
    assert reference.exit_code == 1
    names = {p.name for p in (tmp_path / "predict").iterdir()}
    assert {p.name for p in (tmp_path / "batch").iterdir()} - TABLES == names
    assert_same_outputs(tmp_path / "batch", tmp_path / "predict", sorted(names), exact=False)
    unreachable = run("explain-batch", "--input", images, "--out", tmp_path / "x", "--server", "127.0.0.1:1")
    assert unreachable.exit_code == 1 and "cannot reach a model server at 127.0.0.1:1" in unreachable.output
    assert "Traceback" not in unreachable.output and not (tmp_path / "x").exists()


def test_server_with_the_amortised_method_asks_explain_fast(server, images, tmp_path):
    result = run("explain-batch", "--input", images, "--out", tmp_path / "batch", "--server", server,
                 "--method", "amortised", "--batch-size", 3, *IN_MEMORY)
    assert result.exit_code == 1 and "8 explained, 0 already done, 2 failed" in result.output
    reference = run("predict", images, "--out", tmp_path / "predict", "--server", server,
                    "--signature", "explain_fast")
    assert reference.exit_code == 1
    names = {p.name for p in (tmp_path / "predict").iterdir()}
    assert_same_outputs(tmp_path / "batch", tmp_path / "predict", sorted(names), exact=False)
    record = json.loads(next((tmp_path / "batch").glob("scan*.json")).read_text())
    assert record["method"] == "amortised" and record["provenance"]["settings"]["signature"] == "explain_fast"


@pytest.mark.parametrize("args", [
    ["--input", "{empty}"],  # a folder without images
    ["--input", "{empty}/*.png"],  # a glob that matches nothing
    ["--input", "{images}", "--input", "{empty}/*.png"],  # each one must match
    ["--input", "{empty}/list.csv"],  # a manifest without an image or path column
    ["--input", "{images}", "--direct-running-mode", "bogus"],
    ["--input", "{images}", "--no_such_option=1"],
    ["--input", "{images}", "stray"],
    ["--input", "{images}", "--direct-num-workers=two"],
    ["--input", "{images}", "--direct_num_workers=2"],  # Beam's spelling: tfsal's option is --direct-num-workers
    ["--input", "{images}", "--runner", "NoSuchRunner"],
    ["--input", "{images}", "--server", "localhost:8500", "--classifier", "{images}/scan0.png"],
    ["--input", "{images}", "--steps", "0"],
    ["--input", "{images}", "--server", "localhost:8500", "--method", "sal"],  # the export is the counterfactual one
    ["--input", "{images}", "--method", "bogus"],
])
def test_usage_errors_exit_2_without_a_traceback(args, images, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "list.csv").write_text("file,label\nx.png,1\n")
    args = [a.format(empty=empty, images=images) for a in args]
    result = run("explain-batch", *args, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_out_is_required(images):
    assert run("explain-batch", "--input", images).exit_code == 2


def test_without_beam_one_line_names_the_extra(images, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    result = run("explain-batch", "--input", images, "--out", tmp_path)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == ("Error: tfsal explain-batch needs Apache Beam: "
                                                      "pip install 'tfsal[beam]'")


def test_redact_paths_keeps_the_folders_out_of_every_output_and_message(images, blob_models, tmp_path):
    from tfsal.outputs.files import shown_path

    patient = tmp_path / "Mass-Training_P_00042_LEFT_CC"  # folder names like CBIS-DDSM's hold patient IDs
    patient.mkdir()
    for name in ("scan0.png", "scan1.png", "garbage.dcm"):
        shutil.copy(images / name, patient / name)
    out = tmp_path / "out"
    first = run("explain-batch", "--input", patient, "--out", out, *OPTIONS, *blob_models, *IN_MEMORY,
                "--redact-paths")
    again = run("explain-batch", "--input", patient, "--out", out, *OPTIONS, *blob_models, *IN_MEMORY,
                "--redact-paths")
    single = run("explain", patient / "scan1.png", "--out", out, *OPTIONS, *blob_models, "--redact-paths")
    assert (first.exit_code, again.exit_code, single.exit_code) == (1, 1, 0), first.output
    assert "0 explained, 2 already done, 1 failed" in again.output  # resumed by the redacted names
    for text in [first.output, again.output, single.output, *(p.read_text() for p in out.iterdir()
                                                               if p.suffix in (".json", ".csv"))]:
        assert "P_00042" not in text and str(patient) not in text  # (the output folder may be shown)
    shown = shown_path(patient / "scan0.png", redact=True)
    assert shown.endswith("/scan0.png") and len(shown.split("/")[0]) == 16
    assert json.loads((out / "scan0.json").read_text())["input"] == shown
    assert [row["input"] for row in table(out / "results.csv")] == [
        shown_path(patient / n, redact=True) for n in ("garbage.dcm", "scan0.png", "scan1.png")]
    assert f"Error: {shown_path(patient / 'garbage.dcm', redact=True)}: not a recognised" in first.output
    assert not list(out.glob("scan1_2*"))  # tfsal explain took the same stem: the same input
