"""`tfsal serve` under pressure: deadlines and cancellation inside the loop, a bounded queue, a
SIGTERM drain with a call in flight, the health service, TLS (and mutual TLS), the bearer token,
and 1,000 mixed requests from 8 clients."""

import datetime
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsal.cli.main import cli
from tfsal.serving.export import export_explainer
from tfsal.serving.options import GRPC_OPTIONS
from tfsal.serving.security import ServerSecurity
from tfsal.serving.server import SERVICE_NAME, ModelServer, RequestLimits

from .explain.conftest import _blob_classifier, _mean_inpainter, mammogram_like

pytestmark = pytest.mark.slow  # exports a model and starts gRPC servers

FOREVER = 10**7  # steps: hours of work, so a call only ends early if it is stopped


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_explainer(base, _blob_classifier(), _mean_inpainter(), version=1, steps=5, cell=4)
    return base


def _server(model_dir, **options):
    options = {"workers": 2, "limits": RequestLimits(max_steps=FOREVER, queue=2), **options}
    running = ModelServer(model_dir, port=0, host="127.0.0.1", **options)
    running.start(warm_up=False)
    return running


@pytest.fixture(scope="module")
def server(model_dir):
    running = _server(model_dir)
    yield running
    running.stop(0)


def _stub(port, credentials=None):
    target = f"localhost:{port}"
    channel = (grpc.secure_channel(target, credentials, options=GRPC_OPTIONS) if credentials
               else grpc.insecure_channel(target, options=GRPC_OPTIONS))
    return prediction_service_pb2_grpc.PredictionServiceStub(channel), channel


def _request(signature="classify", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "tfsal", signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _image(batch=1):
    return np.stack([mammogram_like(i) for i in range(batch)])


def _classify():
    return _request(image=_image())


def _endless():
    return _request("explain_steps", image=_image(), target=np.array([1], np.int32), steps=np.int32(FOREVER))


def _idle(server, within=10.0) -> bool:
    """Whether the server has no call in flight within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not server.service._in_flight:
            return True
        time.sleep(0.05)
    return False


def test_a_call_past_its_deadline_is_stopped_inside_the_loop(server):
    stub, _ = _stub(server.port)
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(_endless(), timeout=1.5)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - start < 5
    assert _idle(server)  # the worker is free again, not busy for hours
    assert tf.make_ndarray(stub.Predict(_classify(), timeout=30).outputs["probability"]).shape == (1,)


def test_a_call_its_client_cancels_is_stopped(server):
    stub, _ = _stub(server.port)
    call = stub.Predict.future(_endless(), timeout=600)
    time.sleep(1.0)
    assert server.service._in_flight  # running
    call.cancel()
    assert _idle(server)
    assert tf.make_ndarray(stub.Predict(_classify(), timeout=30).outputs["probability"]).shape == (1,)


def test_calls_beyond_the_workers_and_the_queue_get_resource_exhausted(model_dir):
    running = _server(model_dir, workers=1, limits=RequestLimits(max_steps=FOREVER, queue=1))
    try:
        stub, _ = _stub(running.port)
        busy = [stub.Predict.future(_endless(), timeout=600) for _ in range(2)]  # one running, one waiting
        time.sleep(1.0)
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(_classify(), timeout=30)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for call in busy:
            call.cancel()
        assert _idle(running)
        time.sleep(0.5)  # the waiting call's slot is released once gRPC has seen it cancelled
        assert tf.make_ndarray(stub.Predict(_classify(), timeout=30).outputs["probability"]).shape == (1,)
    finally:
        running.stop(0)


def test_stop_cancels_a_call_still_running_after_the_grace(model_dir):
    running = _server(model_dir)
    stub, _ = _stub(running.port)
    call = stub.Predict.future(_endless(), timeout=600)
    time.sleep(1.0)
    start = time.monotonic()
    running.stop(grace=1.0)
    assert time.monotonic() - start < 15 and not running.service._in_flight
    with pytest.raises(grpc.RpcError) as error:
        call.result(timeout=10)
    assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def test_health_service_reports_serving(server):
    _, channel = _stub(server.port)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as error:
        health.Check(health_pb2.HealthCheckRequest(service="another.Service"), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def _start_serve(args, cwd):
    """`tfsal serve ARGS` in a subprocess; (process, port)."""
    # cwd away from the checkout: `python -m` puts the cwd first on sys.path, and the source
    # folder tfsal/ there lacks tfsal.cli (installed from cli/)
    process = subprocess.Popen([sys.executable, "-m", "tfsal.cli.main", "serve", "--port", "0", *args],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               cwd=cwd)
    port, deadline = None, time.time() + 120
    while port is None and time.time() < deadline and process.poll() is None:
        match = re.search(r"on 127\.0\.0\.1:(\d+)", process.stderr.readline())
        port = int(match.group(1)) if match else None
    assert port, f"the server did not start: {process.stderr.read() if process.poll() is not None else ''}"
    return process, port


def test_sigterm_drains_and_exits_with_a_call_in_flight(model_dir, tmp_path):
    process, port = _start_serve(["--model-dir", str(model_dir), "--grace", "1", "--max-steps", str(FOREVER)],
                                 tmp_path)
    try:
        stub, _ = _stub(port)
        call = stub.Predict.future(_endless(), timeout=600)
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0  # exits although the call would run for hours
        with pytest.raises(grpc.RpcError):
            call.result(timeout=10)
    finally:
        process.kill()


# -- TLS and the token -----------------------------------------------------------------------------

def _pem(key, certificate):
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            certificate.public_bytes(serialization.Encoding.PEM))


def _certificate(subject, key, issuer=None, issuer_key=None, ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost and a client certificate, as PEM files."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("tfsal test CA", ca_key, ca=True)
    files = {"ca": folder / "ca.pem"}
    files["ca"].write_bytes(_pem(ca_key, ca)[1])
    for who in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem, cert_pem = _pem(key, _certificate(who, key, ca.subject, ca_key))
        (folder / f"{who}.key").write_bytes(key_pem)
        (folder / f"{who}.pem").write_bytes(cert_pem)
        files[f"{who}_key"], files[f"{who}_cert"] = folder / f"{who}.key", folder / f"{who}.pem"
    files["token"] = folder / "token"
    files["token"].write_text("s3cr3t-token-0123456789\n")
    return files


def test_the_token_is_asked_on_every_call_but_health(model_dir, pki):
    running = _server(model_dir, security=ServerSecurity.from_files(token_file=pki["token"]))
    try:
        stub, channel = _stub(running.port)
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "s3cr3t-token-0123456789"),)):
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(_classify(), timeout=30, metadata=metadata)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        good = stub.Predict(_classify(), timeout=30, metadata=(("authorization", "Bearer s3cr3t-token-0123456789"),))
        assert tf.make_ndarray(good.outputs["probability"]).shape == (1,)
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING  # probes need no secret
    finally:
        running.stop(0)


def _png(tmp_path):
    image = tmp_path / "scan.png"
    cv2.imwrite(str(image), (mammogram_like(0)[..., 0] * 65535).astype(np.uint16))
    return image


def test_predict_speaks_tls_and_sends_the_token(model_dir, pki, tmp_path):
    security = ServerSecurity.from_files(pki["server_cert"], pki["server_key"], token_file=pki["token"])
    running = _server(model_dir, security=security)
    try:
        image, address = _png(tmp_path), f"localhost:{running.port}"
        stub, _ = _stub(running.port)  # plaintext against a TLS port: no answer
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(_classify(), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        base = ["predict", str(image), "--server", address, "--signature", "classify", "--timeout", "20"]
        refused = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "a"), "--tls-ca", str(pki["ca"])])
        assert refused.exit_code == 1 and "refused the call" in refused.output and "Traceback" not in refused.output
        result = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "b"), "--tls-ca", str(pki["ca"]),
                                          "--token-file", str(pki["token"])])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "b" / "scan.json").exists()
    finally:
        running.stop(0)


def test_mutual_tls_refuses_a_client_without_a_certificate(model_dir, pki, tmp_path):
    security = ServerSecurity.from_files(pki["server_cert"], pki["server_key"], pki["ca"])
    running = _server(model_dir, security=security)
    try:
        ca = pki["ca"].read_bytes()
        stub, _ = _stub(running.port, grpc.ssl_channel_credentials(root_certificates=ca))
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(_classify(), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        image = _png(tmp_path)
        result = CliRunner().invoke(cli, ["predict", str(image), "--server", f"localhost:{running.port}",
                                          "--signature", "classify", "--out", str(tmp_path / "out"),
                                          "--tls-ca", str(pki["ca"]), "--tls-cert", str(pki["client_cert"]),
                                          "--tls-key", str(pki["client_key"])])
        assert result.exit_code == 0, result.output
    finally:
        running.stop(0)


@pytest.mark.parametrize("args, message", [
    (["--tls-cert", "{server_cert}"], "--tls-cert and --tls-key go together"),
    (["--tls-client-ca", "{ca}"], "--tls-client-ca needs --tls-cert and --tls-key"),
    (["--token-file", "{missing}"], "no such token file"),
])
def test_serve_names_a_bad_security_option_in_one_line(model_dir, pki, tmp_path, args, message):
    args = [a.format(missing=tmp_path / "nope", **pki) for a in args]
    result = CliRunner().invoke(cli, ["serve", "--model-dir", str(model_dir), "--port", "0", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


# -- a soak ----------------------------------------------------------------------------------------

def _rss_mb() -> float:
    with open("/proc/self/status") as status:  # the server runs in this process
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def _huge_declared():
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "tfsal", "classify"
    proto = request.inputs["image"]
    proto.dtype = tf.float32.as_datatype_enum
    for size in (1000, 64, 64, 1):
        proto.tensor_shape.dim.add().size = size
    proto.float_val.append(0.5)
    return request


def test_a_thousand_mixed_requests_from_eight_clients(model_dir, pki):
    running = _server(model_dir, workers=4, limits=RequestLimits(queue=64),
                      security=ServerSecurity.from_files(token_file=pki["token"]))
    token = (("authorization", "Bearer s3cr3t-token-0123456789"),)
    images = [_image(2)[i:i + 1] for i in range(2)]
    expected = [float(p) for p in _blob_classifier().predict(np.concatenate(images), verbose=0)[:, 0]]
    kinds = {
        "good": (lambda i: _request(image=images[i % 2]), token, None),
        "explain": (lambda i: _request("explain_steps", image=images[i % 2], target=np.array([1], np.int32),
                                       steps=np.int32(2)), token, None),
        "malformed": (lambda i: _request(image=images[0].astype(np.float64)), token, grpc.StatusCode.INVALID_ARGUMENT),
        "oversized": (lambda i: _huge_declared(), token, grpc.StatusCode.RESOURCE_EXHAUSTED),
        "nan": (lambda i: _request(image=np.full_like(images[0], np.nan)), token, grpc.StatusCode.INVALID_ARGUMENT),
        "hostile steps": (lambda i: _request("explain_steps", image=images[0], target=np.array([1], np.int32),
                                             steps=np.int32(-5)), token, grpc.StatusCode.INVALID_ARGUMENT),
        "no token": (lambda i: _request(image=images[0]), (), grpc.StatusCode.UNAUTHENTICATED),
    }
    names = list(kinds)
    failures, answered = [], dict.fromkeys(names, 0)
    lock = threading.Lock()
    try:
        stub, _ = _stub(running.port)
        for i in range(20):  # warm: memory is measured from here
            stub.Predict(kinds["good"][0](i), metadata=token, timeout=60)
            stub.Predict(kinds["explain"][0](i), metadata=token, timeout=60)
        before = _rss_mb()

        def client(number):
            own, _ = _stub(running.port)
            for i in range(125):
                name = names[(number * 125 + i) % len(names)]
                make, metadata, code = kinds[name]
                try:
                    answer = own.Predict(make(i), metadata=metadata, timeout=120)
                    problem = (f"{name}: answered" if code is not None else
                               None if name == "explain" else
                               None if abs(float(tf.make_ndarray(answer.outputs["probability"])[0])
                                           - expected[i % 2]) < 1e-5 else f"{name}: a wrong probability")
                except grpc.RpcError as error:
                    problem = None if error.code() == code else f"{name}: {error.code()} {error.details()}"
                with lock:
                    answered[name] += 1
                    if problem:
                        failures.append(problem)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert sum(answered.values()) == 1000 and not failures, failures[:5]
        assert _rss_mb() - before < 300
        good = stub.Predict(kinds["good"][0](0), metadata=token, timeout=60)  # still serving
        assert abs(float(tf.make_ndarray(good.outputs["probability"])[0]) - expected[0]) < 1e-5
    finally:
        running.stop(0)
