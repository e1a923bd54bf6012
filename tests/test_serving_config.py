"""The TF Serving deployment files in serving/ parse and agree with the export and each other."""

import re
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfsal.serving.export import DEFAULT_MODEL_NAME

SERVING = Path(__file__).resolve().parents[1] / "serving"
# tensorflow.serving.BatchingParameters (session_bundle_config.proto; not in tensorflow-serving-api)
BATCHING_FIELDS = {"max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches",
                   "allowed_batch_sizes", "pad_variable_length_inputs", "thread_pool_name"}


@pytest.fixture(scope="module")
def model_config():
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((SERVING / "models.config").read_text(), config)
    return config.model_config_list.config


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((SERVING / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def k8s():
    return {doc["kind"]: doc for doc in yaml.safe_load_all((SERVING / "k8s" / "tfsal-serving.yaml").read_text())}


def _flags(args):
    return dict(arg.lstrip("-").split("=", 1) for arg in args)


def test_model_config_names_the_exported_model(model_config):
    (config,) = model_config
    assert config.name == DEFAULT_MODEL_NAME and config.model_platform == "tensorflow"
    assert config.base_path == f"/models/{DEFAULT_MODEL_NAME}"


def test_batching_parameters_are_known_fields():
    lines = [line for line in (SERVING / "batching_parameters.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    fields = {re.match(r"\s*(\w+)\s*\{\s*value:\s*\d+\s*\}\s*$", line).group(1) for line in lines}
    assert fields <= BATCHING_FIELDS and "max_batch_size" in fields


def test_compose_mounts_what_its_flags_name_and_publishes_the_ports(compose, model_config):
    service = compose["services"]["tfsal"]
    assert service["image"].startswith("tensorflow/serving:")
    flags = _flags(service["command"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert mounts[flags["model_config_file"]] == "./models.config"
    assert mounts[flags["batching_parameters_file"]] == "./batching_parameters.txt"
    assert model_config[0].base_path.startswith("/models/") and mounts["/models"] == "./models"
    assert {p.split(":")[1] for p in service["ports"]} == {flags["port"], flags["rest_api_port"]} == {"8500", "8501"}
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])  # plaintext, no authentication: loopback only


def test_kubernetes_deployment_service_and_autoscaler_agree(k8s, compose):
    assert set(k8s) == {"Deployment", "Service", "HorizontalPodAutoscaler", "NetworkPolicy"}
    container = k8s["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    flags = _flags(container["args"])
    assert {p["containerPort"] for p in container["ports"]} == {int(flags["port"]), int(flags["rest_api_port"])}
    assert {p["targetPort"] for p in k8s["Service"]["spec"]["ports"]} == {8500}  # gRPC (TLS) only
    assert k8s["Service"]["spec"]["selector"] == k8s["Deployment"]["spec"]["selector"]["matchLabels"]
    target = k8s["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] == k8s["Deployment"]["metadata"]["name"]
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{DEFAULT_MODEL_NAME}"
    assert container["livenessProbe"]["httpGet"] == container["readinessProbe"]["httpGet"]
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")  # the SSLConfig from a Secret
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert tls["secret"]["secretName"] == "tfsal-serving-tls"
    assert flags["ssl_config_file"].startswith(mount["mountPath"])
    policy = k8s["NetworkPolicy"]["spec"]  # only labelled clients reach the gRPC port
    assert policy["podSelector"]["matchLabels"] == k8s["Deployment"]["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress"] and len(policy["ingress"]) == 1
    assert {p["port"] for p in policy["ingress"][0]["ports"]} == {8500}
    assert policy["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"tfsal-client": "true"}}}]
    without_tls = {k: v for k, v in flags.items() if k != "ssl_config_file"}  # compose: loopback, plaintext
    assert _flags(compose["services"]["tfsal"]["command"]) == without_tls | {"grpc_max_threads": "16"}
