"""The SavedModel export: signatures, parity with the Python explainer in a fresh process,
Keras's TFSMLayer, the warm-up requests and the command."""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.explain import CounterfactualExplainer
from tfsal.serving.export import export_explainer, tf_organ_mask

from .explain.conftest import _blob_classifier, _mean_inpainter, mammogram_like
from .explain.conftest import organ as true_organ

pytestmark = pytest.mark.slow  # export: builds and reloads SavedModels

OPTIONS = {"steps": 30, "cell": 2}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    classifier, inpainter = _blob_classifier(), _mean_inpainter()
    folder = export_explainer(tmp_path_factory.mktemp("model"), classifier, inpainter, **OPTIONS)
    return folder, classifier, inpainter


def _images():
    return np.stack([mammogram_like(0), mammogram_like(1), mammogram_like(2, blob=False)])


FRESH = """
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
images = np.load(sys.argv[2])
out = model.signatures["serving_default"](image=tf.constant(images), target=tf.constant([1, 1, 1], tf.int32))
probability = model.signatures["classify"](image=tf.constant(images))["probability"]
np.savez(sys.argv[3], probability=probability.numpy(), **{k: v.numpy() for k, v in out.items()})
print(json.dumps(sorted(model.signatures)))
"""


def test_a_fresh_process_gets_the_python_explainers_result(exported, tmp_path):
    folder, classifier, inpainter = exported
    images = _images()
    np.save(tmp_path / "images.npy", images)
    run = subprocess.run([sys.executable, "-c", FRESH, str(folder), str(tmp_path / "images.npy"),
                          str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == ["classify", "explain_steps", "serving_default"]
    served = np.load(tmp_path / "out.npz")
    organ = tf_organ_mask(images).numpy()[..., 0] > 0.5
    expected = CounterfactualExplainer(classifier, inpainter=inpainter, **OPTIONS).explain(
        images, targets=[1, 1, 1], organ_masks=organ)
    for i, e in enumerate(expected):
        np.testing.assert_allclose(served["saliency"][i, ..., 0], e.saliency, atol=1e-4)
        np.testing.assert_allclose(served["counterfactual"][i, ..., 0], e.counterfactual, atol=1e-4)
        np.testing.assert_array_equal(served["mask"][i, ..., 0] > 0.5, e.mask)
        assert served["score_original"][i] == pytest.approx(e.score_original, abs=1e-4)
        assert served["score_counterfactual"][i] == pytest.approx(e.score_counterfactual, abs=1e-4)
    assert expected[0].mask.any() and not expected[2].mask.any()  # a real explanation, not a trivial one
    np.testing.assert_allclose(served["probability"], classifier.predict(images, verbose=0)[:, 0], atol=1e-5)


def test_outputs_are_batch_major_and_steps_are_an_input(exported):
    folder, *_ = exported
    model = tf.saved_model.load(str(folder))
    images = tf.constant(_images())
    one = model.signatures["explain_steps"](image=images, target=tf.constant([1, 1, 1]), steps=tf.constant(1))
    many = model.signatures["explain_steps"](image=images, target=tf.constant([1, 1, 1]), steps=tf.constant(30))
    for name in ("saliency", "mask", "counterfactual"):
        assert one[name].shape == (3, 64, 64, 1)
    assert one["score_original"].shape == (3,)
    assert not np.allclose(one["saliency"], many["saliency"])


def test_loads_as_a_keras_tfsm_layer(exported):
    import keras

    folder, classifier, _ = exported
    layer = keras.layers.TFSMLayer(str(folder), call_endpoint="classify")
    out = layer(tf.constant(_images()))
    np.testing.assert_allclose(out["probability"], classifier.predict(_images(), verbose=0)[:, 0], atol=1e-5)


def test_warmup_requests_are_predict_logs_for_both_signatures(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    folder, *_ = exported
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in
            tf.data.TFRecordDataset(str(folder / "assets.extra" / "tf_serving_warmup_requests"))]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == ["serving_default", "classify"]
    image = tf.make_ndarray(logs[0].predict_log.request.inputs["image"])
    assert image.shape == (1, 64, 64, 1) and image.dtype == np.float32


def test_organ_mask_in_the_graph_covers_the_breast():
    organ = tf_organ_mask(_images()).numpy()[..., 0] > 0.5
    agreement = (organ == true_organ()[None]).mean()
    assert agreement > 0.95
    assert not (tf_organ_mask(np.zeros((1, 64, 64, 1), np.float32)).numpy() > 0).any()  # constant: no organ


def test_command_writes_the_version_folder_and_refuses_to_overwrite(tmp_path):
    from tfsal.models.classifier import build_classifier
    from tfsal.models.inpainter import build_inpainter

    build_classifier((64, 64)).save(tmp_path / "c.keras")
    build_inpainter((64, 64), 4, 8).save(tmp_path / "i.keras")
    args = ["export", "--out", str(tmp_path / "model"), "--version", "3", "--classifier", str(tmp_path / "c.keras"),
            "--inpainter", str(tmp_path / "i.keras"), "--steps", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model" / "3" / "saved_model.pb").exists()
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["3"]  # written aside, renamed: nothing left over
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "model" / "3").stat().st_mode) == 0o777 & ~umask  # a server user can read it
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "exists" in again.output


def test_the_gradient_initialisation_exports_too(tmp_path):
    options = {"steps": 10, "cell": 2, "init": "gradient", "init_share": 0.1, "init_sigma": 2.0}
    classifier, inpainter = _blob_classifier(), _mean_inpainter()
    folder = export_explainer(tmp_path / "model", classifier, inpainter, **options)
    images = _images()
    served = tf.saved_model.load(str(folder)).signatures["serving_default"](
        image=tf.constant(images), target=tf.constant([1, 1, 1], tf.int32))
    organ = tf_organ_mask(images).numpy()[..., 0] > 0.5
    expected = CounterfactualExplainer(classifier, inpainter=inpainter, **options).explain(
        images, targets=[1, 1, 1], organ_masks=organ)
    for i, e in enumerate(expected):
        np.testing.assert_allclose(served["saliency"][i, ..., 0].numpy(), e.saliency, atol=1e-4)
    assert expected[0].mask.any()


def test_a_mask_network_adds_the_explain_fast_signature_with_the_python_result(tmp_path):
    """explain_fast is the amortised explainer in the graph: the same proposal, in-fill, score and growth."""
    import keras

    from tfsal.explain.amortised import AmortisedExplainer, build_mask_network

    classifier, inpainter = _blob_classifier(), _mean_inpainter()
    keras.utils.set_random_seed(3)
    network = build_mask_network((64, 64), bias=0.0)  # random weights, the bias at their median logit:
    kernel, _ = network.get_layer("logits").get_weights()  # about half the cells deleted
    network.get_layer("logits").set_weights([kernel, -np.median(network(_images()).numpy()).reshape(1)])
    folder = export_explainer(tmp_path / "model", classifier, inpainter, mask_network=network, steps=2)
    model = tf.saved_model.load(str(folder))
    assert "explain_fast" in model.signatures
    images = _images()
    served = model.signatures["explain_fast"](image=tf.constant(images), target=tf.constant([1, 1, 1], tf.int32))
    organ = tf_organ_mask(images).numpy()[..., 0] > 0.5
    expected = AmortisedExplainer(classifier, inpainter, network).explain(images, targets=[1, 1, 1],
                                                                         organ_masks=organ)
    for i, e in enumerate(expected):
        np.testing.assert_allclose(served["saliency"][i, ..., 0].numpy(), e.saliency, atol=1e-4)
        np.testing.assert_array_equal(served["mask"][i, ..., 0].numpy() > 0.5, e.mask)
        assert float(served["score_counterfactual"][i]) == pytest.approx(e.score_counterfactual, abs=1e-4)
    assert any(e.mask.any() for e in expected) and not all(e.mask.all() for e in expected)
    without = export_explainer(tmp_path / "plain", classifier, inpainter, steps=2)
    assert "explain_fast" not in tf.saved_model.load(str(without)).signatures
