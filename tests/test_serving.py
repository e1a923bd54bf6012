"""`tfsal serve` and `tfsal predict`: the PredictionService protocol over a tiny export."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from tfsal.cli.main import cli
from tfsal.serving.export import export_explainer
from tfsal.serving.options import GRPC_OPTIONS
from tfsal.serving.server import ModelServer

from .explain.conftest import _blob_classifier, _mean_inpainter, mammogram_like

pytestmark = pytest.mark.slow  # serving: exports a model and starts gRPC servers


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import keras

    from tfsal.explain.amortised import build_mask_network

    base = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(3)
    network = build_mask_network((64, 64), bias=0.0)  # random weights, the bias at their median logit
    kernel, _ = network.get_layer("logits").get_weights()
    network.get_layer("logits").set_weights([kernel, -np.median(network(_image(2)).numpy()).reshape(1)])
    export_explainer(base, _blob_classifier(), _mean_inpainter(), version=1, steps=5, cell=4, mask_network=network)
    shutil.copytree(base / "1", base / "2")  # the server must pick the highest version
    return base


@pytest.fixture(scope="module")
def server(model_dir):
    running = ModelServer(model_dir, port=0, model_name="tfsal", host="127.0.0.1", workers=4)
    assert running.start() == 2  # both warm-up requests replayed
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=GRPC_OPTIONS)
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(signature="serving_default", model="tfsal", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _image(batch=1):
    return np.stack([mammogram_like(i) for i in range(batch)])


def test_predict_serves_the_highest_version_with_the_exports_outputs(stub, model_dir):
    response = stub.Predict(_request(image=_image(2), target=np.array([1, 1], np.int32)))
    assert response.model_spec.version.value == 2 and response.model_spec.signature_name == "serving_default"
    local = tf.saved_model.load(str(model_dir / "2")).signatures["serving_default"](
        image=tf.constant(_image(2)), target=tf.constant([1, 1]))
    for name in ("saliency", "mask", "counterfactual", "score_original", "score_counterfactual"):
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), local[name].numpy(), atol=1e-5)
    classify = stub.Predict(_request("classify", image=_image(2)))
    np.testing.assert_allclose(tf.make_ndarray(classify.outputs["probability"]),
                               _blob_classifier().predict(_image(2), verbose=0)[:, 0], atol=1e-5)


def test_output_filter_and_metadata(stub):
    request = _request(image=_image(), target=np.array([1], np.int32))
    request.output_filter.append("score_original")
    assert list(stub.Predict(request).outputs) == ["score_original"]
    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata_request.model_spec.name = "tfsal"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    stub.GetModelMetadata(metadata_request).metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "classify", "explain_steps", "explain_fast"}


@pytest.mark.parametrize("bad", [
    {"image": _image().astype(np.float64), "target": np.array([1], np.int32)},  # wrong dtype
    {"image": np.zeros((1, 32, 32, 1), np.float32), "target": np.array([1], np.int32)},  # wrong shape
    {"image": _image()},  # a missing input
])
def test_malformed_requests_get_invalid_argument_and_the_server_goes_on(stub, bad):
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(_request(**bad))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    good = stub.Predict(_request("classify", image=_image()))
    assert tf.make_ndarray(good.outputs["probability"]).shape == (1,)


def test_unknown_model_and_signature(stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(_request("classify", model="other", image=_image()))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(_request("nope", image=_image()))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_predict_command_writes_what_explain_writes(server, tmp_path):
    image = tmp_path / "scan.png"
    cv2.imwrite(str(image), (mammogram_like(0)[..., 0] * 65535).astype(np.uint16))
    address = f"127.0.0.1:{server.port}"
    result = CliRunner().invoke(cli, ["predict", str(image), "--server", address, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert record["method"] == "counterfactual" and record["score_original"] > 0.9
    assert set(record["files"]) == {"scan_overlay.png", "scan_mask.png", "scan_counterfactual.png",
                                    "scan_saliency.npy"}
    classify = CliRunner().invoke(cli, ["predict", str(image), "--server", address, "--out", str(tmp_path / "c"),
                                        "--signature", "classify"])
    assert classify.exit_code == 0 and json.loads((tmp_path / "c" / "scan.json").read_text())["probability"] > 0.9
    twice = CliRunner().invoke(cli, ["predict", str(image), "--input", str(image), "--server", address, "--out",
                                     str(tmp_path / "b"), "--batch-size", "2"])  # one request of two
    assert twice.exit_code == 0, twice.output
    batched = json.loads((tmp_path / "b" / "scan_2.json").read_text())
    assert batched["timing"]["batch_images"] == 2 and batched["provenance"]["settings"]["batch_size"] == 2
    assert batched["score_original"] == pytest.approx(record["score_original"], abs=1e-5)
    fast = CliRunner().invoke(cli, ["predict", str(image), "--server", address, "--out", str(tmp_path / "f"),
                                    "--signature", "explain_fast"])  # the amortised explainer's one pass
    assert fast.exit_code == 0, fast.output
    amortised = json.loads((tmp_path / "f" / "scan.json").read_text())
    assert amortised["method"] == "amortised" and amortised["verified"] and amortised["area_fraction"] > 0
    assert amortised["provenance"]["settings"]["signature"] == "explain_fast"
    wrong = CliRunner().invoke(cli, ["predict", str(image), "--server", address, "--out", str(tmp_path / "w"),
                                     "--model-name", "other"])
    assert wrong.exit_code == 1 and "no model named 'other'" in wrong.output and "Traceback" not in wrong.output


def test_the_served_explainer_meets_the_explainer_interface(server):
    from tfsal.explain import ImageExplainer
    from tfsal.serving.client import ServerExplainer

    explainer = ServerExplainer(f"127.0.0.1:{server.port}", steps=3, batch_size=2)
    try:
        assert isinstance(explainer, ImageExplainer) and explainer.method == "counterfactual"
        assert explainer.input_size == (64, 64) and explainer.steps == 3 and explainer.batch_size == 2
        explanations = explainer.explain([mammogram_like(0), mammogram_like(1)])
        assert [e.mask.shape for e in explanations] == [(64, 64)] * 2 and explanations[0].score_original > 0.9
        with pytest.raises(ValueError, match="organ"):
            explainer.explain([mammogram_like(0)], organ_masks=[np.ones((64, 64), bool)])
    finally:
        explainer.close()


def test_predict_command_names_an_unreachable_server(tmp_path):
    image = tmp_path / "scan.png"
    cv2.imwrite(str(image), (mammogram_like(0)[..., 0] * 65535).astype(np.uint16))
    result = CliRunner().invoke(cli, ["predict", str(image), "--server", "127.0.0.1:1", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "cannot reach a model server at 127.0.0.1:1" in result.output


def test_serve_command_answers_then_stops_on_sigterm(model_dir, tmp_path):
    # cwd away from the checkout: `python -m` puts the cwd first on sys.path, and the source
    # folder tfsal/ there lacks tfsal.cli (installed from cli/)
    process = subprocess.Popen([sys.executable, "-m", "tfsal.cli.main", "serve", "--model-dir", str(model_dir),
                                "--port", "0", "--host", "127.0.0.1"], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tmp_path)
    try:
        port = None
        deadline = time.time() + 120
        while port is None and time.time() < deadline:
            line = process.stderr.readline()
            match = re.search(r"on 127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, f"the server did not start: {process.stderr.read() if process.poll() is not None else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
        answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(_request("classify",
                                                                                             image=_image()))
        assert tf.make_ndarray(answer.outputs["probability"]).shape == (1,)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:  # the server runs in this process
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def _hostile(shape) -> predict_pb2.PredictRequest:
    """A request of a few bytes that declares a huge image: one repeated value, expanded on read."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "tfsal", "classify"
    proto = request.inputs["image"]
    proto.dtype = tf.float32.as_datatype_enum
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    proto.float_val.append(0.5)
    return request


@pytest.mark.parametrize("request_, code, message", [
    (lambda: _hostile([1000, 64, 64, 1]), grpc.StatusCode.RESOURCE_EXHAUSTED, "batch of 1000 is over"),
    (lambda: _hostile([1, 11000, 11000, 1]), grpc.StatusCode.INVALID_ARGUMENT, "is not"),
    (lambda: _request("explain_steps", image=_image(), target=np.array([1], np.int32), steps=np.int32(-5)),
     grpc.StatusCode.INVALID_ARGUMENT, "outside 1-1000"),
    (lambda: _request("explain_steps", image=_image(), target=np.array([1], np.int32), steps=np.int32(10**6)),
     grpc.StatusCode.INVALID_ARGUMENT, "outside 1-1000"),
    (lambda: _request(image=_image(), target=np.array([7], np.int32)), grpc.StatusCode.INVALID_ARGUMENT,
     "classes must lie in 0-1"),
    (lambda: _request(image=np.full_like(_image(), np.nan), target=np.array([1], np.int32)),
     grpc.StatusCode.INVALID_ARGUMENT, "NaN or infinite"),
])
def test_hostile_requests_are_refused_before_they_cost_anything(stub, request_, code, message):
    before, start = _rss_mb(), time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request_())
    assert error.value.code() == code and message in error.value.details(), error.value.details()
    assert time.monotonic() - start < 5 and _rss_mb() - before < 300
    good = stub.Predict(_request("classify", image=_image()))  # and the next good request is answered
    assert tf.make_ndarray(good.outputs["probability"]).shape == (1,)
