"""`tfsal explain` through the command line: outputs, sizes, formats, failures and exit codes."""

import hashlib
import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from click.testing import CliRunner

from tfsal import __version__
from tfsal.cli.main import cli
from tfsal.data.dicom import write_mammogram_dicom
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    # seeded: an unlucky random classifier can give a Grad-CAM map that is 0 over the whole breast,
    # and then every percentile keeps it all (ties are kept)
    keras.utils.set_random_seed(0)
    build_classifier((64, 64)).save(folder / "classifier.keras")
    build_inpainter((64, 64), 4, 8).save(folder / "inpainter.keras")
    return ["--classifier", str(folder / "classifier.keras"), "--inpainter", str(folder / "inpainter.keras")]


def mammogram(height=96, width=80, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    breast = ((y - height / 2) / (0.45 * height)) ** 2 + (x / (0.8 * width)) ** 2 < 1
    image = np.where(breast, 0.4 + 0.2 * rng.random((height, width)), 0.0)
    return (image * 65535).astype(np.uint16)


def run(*args):
    return CliRunner().invoke(cli, ["explain", *map(str, args)])


def test_demo_explains_the_shipped_examples_with_the_shipped_models(tmp_path):
    result = run("--demo", "--out", tmp_path, "--steps", 2)
    assert result.exit_code == 0, result.output
    records = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(records) == {"mass_1", "mass_2", "healthy_1", "healthy_2"}
    mass = records["mass_1"]
    assert mass["method"] == "counterfactual" and mass["target"] == 1 and mass["steps"] == 2
    assert mass["score_original"] > 0.5 and 0 <= mass["score_counterfactual"] <= 1
    assert set(mass["files"]) == {f"mass_1_{s}" for s in ("overlay.png", "mask.png", "counterfactual.png",
                                                          "saliency.npy")}
    assert all((tmp_path / name).stat().st_size > 0 for name in mass["files"])
    assert np.load(tmp_path / "mass_1_saliency.npy").shape == (256, 192)


def test_outputs_at_the_images_size_and_bad_files_named_without_stopping_the_others(tmp_path, models):
    good = tmp_path / "in" / "good.png"
    good.parent.mkdir()
    cv2.imwrite(str(good), mammogram())
    corrupt = tmp_path / "in" / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    notes = tmp_path / "in" / "notes.txt"
    notes.write_text("not an image")
    out = tmp_path / "out"
    result = run(corrupt, good, tmp_path / "in" / "missing.dcm", notes, "--out", out, "--steps", 2, *models)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 3 and "corrupt.png" in errors[0] and "missing.dcm" in errors[1] and "notes.txt" in errors[2]
    assert "Traceback" not in result.output
    mask = cv2.imread(str(out / "good_mask.png"), cv2.IMREAD_UNCHANGED)
    counterfactual = cv2.imread(str(out / "good_counterfactual.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == counterfactual.shape == (96, 80) and counterfactual.dtype == np.uint16
    assert cv2.imread(str(out / "good_overlay.png")).shape == (96, 80, 3)
    assert sorted(p.name for p in out.iterdir()) == sorted(["good.json", *json.loads(
        (out / "good.json").read_text())["files"]])  # nothing for the bad files, no temporary files


def test_each_json_records_its_provenance_and_its_own_seconds(tmp_path, models, monkeypatch):
    """The tfsal version, the models by file name and SHA-256, every setting, the seed, the
    input as given (relative stays relative) with its file's SHA-256, and per-image timing."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"m{i}.png"), mammogram(seed=i))
    monkeypatch.chdir(tmp_path)
    result = run("in/m0.png", "in/m1.png", "in/m2.png", "--out", "out", "--steps", 2, "--seed", 5,
                 "--batch-size", 2, *models)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "m1.json").read_text())
    assert record["input"] == "in/m1.png"
    assert record["input_sha256"] == hashlib.sha256((folder / "m1.png").read_bytes()).hexdigest()
    made = record["provenance"]
    assert made["tfsal"] == __version__ and made["method"] == "counterfactual" and made["seed"] == 5
    for kind, path in (("classifier", models[1]), ("inpainter", models[3])):
        assert made[kind] == {"file": f"{kind}.keras",
                              "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
    assert made["settings"]["steps"] == 2 and made["settings"]["seed"] == 5
    assert made["settings"]["score_floor"] == 0.4 and made["settings"]["init"] == "gradient"  # the defaults too
    timing = record["timing"]
    assert timing["batch_images"] == 2  # m0 and m1 were explained together, m2 alone
    assert json.loads((tmp_path / "out" / "m2.json").read_text())["timing"]["batch_images"] == 1
    share = timing["explain_batch"] / 2
    assert record["seconds"] == pytest.approx(timing["read"] + share + timing["write"], abs=2e-3)
    assert record["seconds"] < timing["explain_batch"] + timing["read"] + timing["write"]


@pytest.mark.slow
def test_dicom_input_and_shared_stems(tmp_path, models):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_mammogram_dicom(tmp_path / folder / "scan.dcm", mammogram(seed=len(folder)) // 16)  # 12 bits
    result = run(tmp_path / "a" / "scan.dcm", tmp_path / "b" / "scan.dcm", "--out", tmp_path / "out", "--steps", 2,
                 *models)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "scan.json").exists() and (tmp_path / "out" / "scan_2.json").exists()


@pytest.mark.parametrize("method", [pytest.param("sal", marks=pytest.mark.slow), "cam",
                                    pytest.param("gradcam", marks=pytest.mark.slow)])
def test_baselines_write_overlay_and_mask_and_take_the_percentile(method, tmp_path, models):
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), mammogram())
    areas = []
    for percentile in (50, 90):
        out = tmp_path / f"out{percentile}"
        result = run(image, "--out", out, "--method", method, "--percentile", percentile, "--classifier", models[1])
        assert result.exit_code == 0, result.output
        record = json.loads((out / "x.json").read_text())
        assert record["method"] == method and record["score_counterfactual"] is None and record["steps"] is None
        assert record["files"] == ["x_mask.png", "x_overlay.png"]
        areas.append(record["area_fraction"])
    assert areas[0] > areas[1]
    run(image, "--out", tmp_path / "inp", "--method", method, *models)
    assert json.loads((tmp_path / "inp" / "x.json").read_text())["score_counterfactual"] is not None


def test_usage_errors_exit_2(tmp_path):
    assert run("--out", tmp_path).exit_code == 2
    assert run(tmp_path / "x.png").exit_code == 2  # no --out
    assert run(tmp_path / "x.png", "--out", tmp_path, "--method", "lime").exit_code == 2


@pytest.mark.parametrize(("method", "option", "value"), [("cam", "--steps", 300), ("sal", "--seed", 3),
                                                        ("counterfactual", "--percentile", 95),
                                                        ("occlusion", "--preset", "paper")])
def test_an_option_the_method_does_not_take_is_refused(tmp_path, models, method, option, value):
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), mammogram())
    result = run(image, "--out", tmp_path / "out", "--method", method, option, value, *models)
    assert result.exit_code == 2 and f"--method {method} does not use {option}" in result.output
    assert not (tmp_path / "out").exists()


def test_an_option_at_its_default_or_taken_by_the_method_passes(tmp_path, models):
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), mammogram())
    result = run(image, "--out", tmp_path / "out", "--method", "smoothgrad", "--seed", 1, "--percentile", 80,
                 "--classifier", models[1])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "x.json").read_text())["method"] == "smoothgrad"


def test_a_folder_of_images(tmp_path, models):
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), mammogram())
    (tmp_path / "labels.csv").write_text("image,label\n")  # not an image suffix: left out of the folder
    result = run(tmp_path, "--out", tmp_path / "out", "--method", "sal", "--classifier", models[1])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["a.json", "b.json"]


@pytest.mark.slow
def test_preset_paper_changes_the_result(tmp_path, models):
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), mammogram())
    for preset in ("default", "paper"):
        assert run(image, "--out", tmp_path / preset, "--steps", 3, "--preset", preset, *models).exit_code == 0
    default = np.load(tmp_path / "default" / "x_saliency.npy")
    paper = np.load(tmp_path / "paper" / "x_saliency.npy")
    assert not np.allclose(default, paper)


@pytest.mark.parametrize("kind", [pytest.param("sequential", marks=pytest.mark.slow), "functional"])
def test_a_users_rgb_softmax_classifier_through_classifier_option(kind, tmp_path, models):
    import keras

    inputs = keras.Input((64, 64, 3))
    layers = [keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
              keras.layers.Dense(3, activation="softmax")]
    if kind == "sequential":
        model = keras.Sequential([inputs, *layers])
    else:
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    model.save(tmp_path / "rgb.keras")
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), mammogram())
    result = run(image, "--out", tmp_path / "out", "--classifier", tmp_path / "rgb.keras", "--inpainter",
                 models[3], "--target", 2, "--steps", 2)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "x.json").read_text())
    assert record["target"] == 2 and record["score_counterfactual"] is not None
    assert run(image, "--out", tmp_path / "bad", "--classifier", tmp_path / "rgb.keras", "--target", 3,
               "--method", "sal").exit_code == 1  # class 3 does not exist: one line, exit 1


def test_stems_never_collide_with_each_other_or_with_another_inputs_outputs(tmp_path, models):
    from tfsal.outputs.files import unique_stems

    assert unique_stems(["d1/a.png", "d2/a_2.png", "d3/a.png"]) == ["a", "a_2", "a_3"]
    assert unique_stems(["a.png", "a.png.dcm", "x/a"]) == ["a", "a_2", "a_3"]
    for folder, seed in (("d1", 1), ("d2", 2), ("d3", 3)):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / ("a_2.png" if folder == "d2" else "a.png")), mammogram(seed=seed))
    inputs = [tmp_path / "d1" / "a.png", tmp_path / "d2" / "a_2.png", tmp_path / "d3" / "a.png"]
    assert run(*inputs, "--out", tmp_path / "out", "--method", "cam", *models).exit_code == 0
    named = {stem: json.loads((tmp_path / "out" / f"{stem}.json").read_text())["input"] for stem in ("a", "a_2", "a_3")}
    assert named == {"a": str(inputs[0]), "a_2": str(inputs[1]), "a_3": str(inputs[2])}  # nothing lost, nothing mixed
    # a later run with another a.png into the same folder leaves the first run's results alone
    (tmp_path / "d4").mkdir()
    cv2.imwrite(str(tmp_path / "d4" / "a.png"), mammogram(seed=4))
    assert run(tmp_path / "d4" / "a.png", "--out", tmp_path / "out", "--method", "cam", *models).exit_code == 0
    assert json.loads((tmp_path / "out" / "a.json").read_text())["input"] == str(inputs[0])
    assert json.loads((tmp_path / "out" / "a_4.json").read_text())["input"] == str(tmp_path / "d4" / "a.png")
    # the same input again overwrites its own results
    assert run(inputs[0], "--out", tmp_path / "out", "--method", "cam", *models).exit_code == 0
    assert not (tmp_path / "out" / "a_5.json").exists()


def test_a_folder_with_a_manifest_stands_for_its_images_not_its_masks(tmp_path, models):
    from tfsal.data.manifest import read_manifest
    from tfsal.data.synthetic_dataset import write_dataset

    write_dataset(tmp_path / "data", n_mass=2, n_healthy=2, size=(64, 64), seed=1, workers=1)
    assert any((tmp_path / "data" / "masks").iterdir()) and any((tmp_path / "data" / "organ").iterdir())
    result = run(tmp_path / "data", "--out", tmp_path / "out", "--method", "cam", *models)
    assert result.exit_code == 0, result.output
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.json"))
    assert written == sorted(r.image.stem for r in read_manifest(tmp_path / "data"))  # 4, not 4 + masks + organs


def test_inputs_are_given_as_explain_batch_takes_them(tmp_path, models):
    """Arguments and --input alike: files, folders, manifest CSVs and globs; a missing file is named."""
    for name, seed in (("a.png", 1), ("b.png", 2), ("c.png", 3)):
        cv2.imwrite(str(tmp_path / name), mammogram(seed=seed))
    (tmp_path / "list.csv").write_text("image,label\nb.png,1\n")
    result = run("--input", tmp_path / "list.csv", "--input", f"{tmp_path}/[ac].png", tmp_path / "missing.png",
                 "--out", tmp_path / "out", "--method", "cam", *models)
    assert result.exit_code == 1 and "missing.png" in result.output, result.output
    named = sorted(json.loads(p.read_text())["input"] for p in (tmp_path / "out").glob("*.json"))
    assert named == [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
    (tmp_path / "other.csv").write_text("name,size\nx,1\n")  # a CSV that is no manifest: a usage error
    bad = run("--input", tmp_path / "other.csv", "--out", tmp_path / "o2")
    assert bad.exit_code == 2 and "'image' or 'path' column" in bad.output, bad.output
