"""The method registry: a method added in one class and one registry line is offered by
``tfsal explain``, runs through the explainer contract, and is evaluated by ``tfsal evaluate``."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.explain import registry
from tfsal.explain.baselines import MapExplainer

from .conftest import SIZE, blob_pixels, mammogram_like
from .test_contract import INPUTS, check_batching_does_not_change_the_result, check_every_input_kind


class BrightnessExplainer(MapExplainer):
    """A toy map method: the brighter the pixel, the more salient."""

    method = "toy"

    def saliency_maps(self, images, targets, organ):
        return images[..., 0]


TOY = registry.Method("toy", BrightnessExplainer, "Toy")


@pytest.fixture
def toy():
    registry.register(TOY)  # the one registry line
    yield registry.get("toy")
    registry.unregister("toy")


def test_a_registered_method_is_offered_and_used_by_tfsal_explain(toy, tmp_path, blob_classifier, tiny_inpainter):
    help_text = CliRunner().invoke(cli, ["explain", "--help"]).output
    assert "toy" in help_text and "gradcam" in help_text
    blob_classifier.save(tmp_path / "classifier.keras")
    tiny_inpainter.save(tmp_path / "inpainter.keras")
    cv2.imwrite(str(tmp_path / "scan.png"), (mammogram_like(0)[..., 0] * 255).astype(np.uint8))
    result = CliRunner().invoke(cli, ["explain", str(tmp_path / "scan.png"), "--out", str(tmp_path / "out"),
                                      "--method", "toy", "--percentile", "99",
                                      "--classifier", str(tmp_path / "classifier.keras"),
                                      "--inpainter", str(tmp_path / "inpainter.keras")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert record["method"] == "toy" and record["steps"] is None
    assert 0 < record["area_fraction"] <= 0.05  # P = 99: the brightest pixels (with their ties)
    mask = cv2.imread(str(tmp_path / "out" / "scan_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert mask.any() and blob_pixels()[mask].all()  # all of them in the bright 'mass'


def test_an_unregistered_method_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["explain", "x.png", "--out", str(tmp_path), "--method", "toy"])
    assert result.exit_code == 2 and "toy" in result.output


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("kind", list(INPUTS))
def test_a_registered_method_meets_the_contract(toy, kind, batch_size, tiny_classifier, tiny_inpainter):
    check_every_input_kind("toy", kind, batch_size, tiny_classifier, tiny_inpainter)


def test_a_registered_method_batches_like_the_others(toy, tiny_classifier, tiny_inpainter):
    check_batching_does_not_change_the_result("toy", tiny_classifier, tiny_inpainter)


@pytest.mark.slow  # an evaluation run
def test_a_registered_method_is_evaluated(toy, tmp_path, tiny_classifier, tiny_inpainter):
    write_dataset(tmp_path / "data", n_mass=4, n_healthy=2, size=(SIZE, SIZE), seed=3, workers=1)
    tiny_classifier.save(tmp_path / "classifier.keras")
    tiny_inpainter.save(tmp_path / "inpainter.keras")
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "eval"),
                                      "--method", "counterfactual", "--method", "toy", "--steps", "2",
                                      "--fig2-runs", "0", "--cases", "0",
                                      "--classifier", str(tmp_path / "classifier.keras"),
                                      "--inpainter", str(tmp_path / "inpainter.keras")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "results.json").read_text())["summary"]["all"]
    assert set(summary["paper"]["raw"]) == {"toy@50", "toy@75", "toy@90"}
    assert set(summary["curve"]) == {"counterfactual", "toy"}
    assert summary["paper"]["raw"]["toy@90"]["A"]["mean"] == pytest.approx(0.10, abs=0.01)
    table = (tmp_path / "eval" / "results.md").read_text()
    assert "| Toy, P = 90 |" in table and "| Toy |" in table


def test_names_are_unique_and_kinds_known():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.Method("cam", BrightnessExplainer, "CAM again"))
    with pytest.raises(ValueError, match="kind"):
        registry.Method("odd", BrightnessExplainer, "Odd", kind="other")
    with pytest.raises(ValueError, match="unknown method"):
        registry.get("bogus")
    assert registry.names()[0] == "counterfactual"
    assert list(registry.evaluation_rows())[:3] == ["counterfactual", "counterfactual-paper", "counterfactual-ablation"]


def test_every_registered_explainer_is_importable_from_tfsal_explain():
    import tfsal.explain

    for name in registry.names():
        cls = registry.get(name).load()
        assert getattr(tfsal.explain, cls.__name__) is cls, name


def test_method_names_stand_for_their_evaluation_rows():
    """`tfsal evaluate --method` takes `tfsal explain`'s names too: one vocabulary."""
    assert registry.expand_rows(["counterfactual", "sal", "counterfactual-paper", "counterfactual"]) == (
        "counterfactual", "sal", "counterfactual-paper")
    # the rows' earlier names are still taken, as today's
    assert registry.expand_rows(["ours", "ours-paper", "ours-ablation", "counterfactual"]) == (
        "counterfactual", "counterfactual-paper", "counterfactual-ablation")
    assert set(registry.expand_rows(registry.names())) == set(registry.default_evaluation_rows()) - {
        "counterfactual-paper"} | {"amortised"}  # a method's name is the method with its defaults, as in tfsal
    # explain; the amortised row runs only when asked for (it needs a mask network for the classifier)
    with pytest.raises(ValueError, match="unknown method 'bogus'"):
        registry.expand_rows(["bogus"])
