"""``tfsal predict``: explain or classify image files through a TF Serving (or ``tfsal serve``)
gRPC endpoint, writing what ``tfsal explain`` writes."""

from __future__ import annotations

import json
import os
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from tfsal import __version__
from tfsal.data.organ import breast_mask
from tfsal.errors import TfsalError
from tfsal.explain.explanation import Explanation, Explanations
from tfsal.explain.registry import DEFAULT_STEPS
from tfsal.outputs.files import FileResult, explain_files, read_fitted, start_results
from tfsal.serving.options import GRPC_OPTIONS
from tfsal.serving.security import ChannelSecurity
from tfsal.util import atomic
from tfsal.util.checks import check_int

__all__ = ["PredictionClient", "ServerExplainer", "classify_files", "predict_files"]



class PredictionClient:
    """A PredictionService stub with the model name, and one-line errors for the usual failures.

    Args:
        server: ``HOST:PORT``.
        model_name: the served model's name.
        timeout: each call's deadline in seconds (the server stops a call past it).
        security: TLS and the bearer token (:class:`~tfsal.serving.security.ChannelSecurity`);
            None: plaintext, no token.
    """

    def __init__(self, server: str, model_name: str = "tfsal", timeout: float = 600.0,
                 security: ChannelSecurity | None = None):
        self.server, self.model_name, self.timeout = server, model_name, timeout
        self.version: int | None = None  # the served version, once GetModelMetadata has said it
        self.security = security or ChannelSecurity()
        self.channel = self.security.channel(server, GRPC_OPTIONS)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout, metadata=self.security.metadata())
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TfsalError(f"{self.server}: no answer within {self.timeout:g} s (DEADLINE_EXCEEDED)") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise TfsalError(f"cannot reach a model server at {self.server} (UNAVAILABLE: "
                                 f"{error.details()})") from None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise TfsalError(f"{self.server} refused the call: {error.details()}") from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise TfsalError(f"{self.server} serves no model named {self.model_name!r}") from None
            raise TfsalError(f"{self.server}: {code.name}: {error.details()}") from None

    def input_size(self, signature: str) -> tuple[int, int]:
        """``(H, W)`` of the signature's ``image`` input, from GetModelMetadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._call(self.stub.GetModelMetadata, request)
        self.version = response.model_spec.version.value if response.model_spec.HasField("version") else None
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        if signature not in signatures.signature_def:
            raise TfsalError(f"{self.server}: model {self.model_name!r} has no signature {signature!r} "
                             f"(it has {sorted(signatures.signature_def)})")
        dims = signatures.signature_def[signature].inputs["image"].tensor_shape.dim
        return int(dims[1].size), int(dims[2].size)

    def predict(self, signature: str, inputs: dict) -> dict:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self.stub.Predict, request)
        return {name: tf.make_ndarray(value) for name, value in response.outputs.items()}


def _answer_explanations(answer: dict, images: np.ndarray, target: int, method: str) -> Explanations:
    """The explanations in an explain signature's answer for ``images`` ``[B, h, w, 1]`` (the organ
    found as the export finds it is not returned, so it is found again here)."""
    return Explanations(Explanation(method, target, answer["saliency"][i, ..., 0].astype(np.float32),
                                    answer["mask"][i, ..., 0] > 0.5, breast_mask(images[i]),
                                    float(answer["score_original"][i]), float(answer["score_counterfactual"][i]),
                                    answer["counterfactual"][i, ..., 0].astype(np.float32), image=images[i, ..., 0])
                        for i in range(len(images)))


class ServerExplainer:
    """An :class:`~tfsal.explain.interface.ImageExplainer` over the exported counterfactual
    explainer on a TF Serving (or ``tfsal serve``) gRPC endpoint.

    One request per :meth:`explain` call; explanations come back at the signature's input size
    (``input_size``), as from a local explainer, with the organ found as ``tfsal predict`` finds it.

    Args:
        server: ``HOST:PORT`` or a :class:`PredictionClient`.
        model_name: the served model's name.
        steps: None for ``serving_default`` (the export's steps), else ``explain_steps`` with these.
        batch_size: images per request.
        fast: the amortised explainer's ``explain_fast`` signature (one pass; ``steps`` must be None).
    """

    default_target = 1  # the export's one sigmoid: the mass class

    def __init__(self, server: str | PredictionClient, model_name: str = "tfsal", steps: int | None = None,
                 batch_size: int = 1, fast: bool = False):
        if fast and steps:
            raise ValueError("explain_fast takes no steps")
        self.client = server if isinstance(server, PredictionClient) else PredictionClient(server, model_name)
        self.steps, self.batch_size = steps, check_int("batch_size", batch_size)
        self.signature = "explain_fast" if fast else "explain_steps" if steps else "serving_default"
        self.method = "amortised" if fast else "counterfactual"
        self.input_size = self.client.input_size(self.signature)

    def explain(self, images, targets=None, organ_masks=None) -> Explanations:
        """Explain images of ``input_size``; one target for all (default 1).

        Raises:
            ValueError: organ masks given (the export finds the organ itself).
            TfsalError: the server fails the request.
        """
        if organ_masks is not None:
            raise ValueError("the served explainer finds the organ itself; organ_masks cannot be given")
        images = np.stack([np.asarray(image, np.float32) for image in images])
        target = self.default_target if targets is None else int(targets)
        inputs = {"image": images, "target": np.full(len(images), target, np.int32)}
        if self.signature == "explain_steps":
            inputs["steps"] = np.array(self.steps, np.int32)
        return _answer_explanations(self.client.predict(self.signature, inputs), images, target, self.method)

    def provenance(self) -> dict:
        """As :meth:`tfsal.explain.base.Explainer.provenance`: the settings are the server, the
        served model's name and version, the signature and steps; the models are inside the
        export (None here)."""
        settings = {"server": self.client.server, "model_name": self.client.model_name,
                    "model_version": self.client.version, "signature": self.signature, "steps": self.steps,
                    "batch_size": self.batch_size}
        return {"method": self.method, "settings": settings, "seed": None, "classifier": None, "inpainter": None}

    def close(self) -> None:
        self.client.close()


def predict_files(paths, out: str | os.PathLike, client: PredictionClient, signature: str = "serving_default",
                  target: int = 1, steps: int | None = None, redact: bool = False,
                  style: str = "outline", batch_size: int = 1) -> list[FileResult]:
    """Send each image to the server and write its outputs to ``out``: for the explain signatures
    what ``tfsal explain`` writes (through :func:`~tfsal.outputs.files.explain_files`, overlays in
    ``style``, ``batch_size`` images per request), for ``classify`` one JSON with the probability.
    ``redact``: inputs named as :func:`~tfsal.outputs.files.shown_path` names them.

    Raises:
        TfsalError: the server cannot be reached, or serves no such model or signature.
    """
    if signature == "classify":
        return classify_files(paths, out, client, redact)
    explainer = ServerExplainer(client, steps=(steps or DEFAULT_STEPS) if signature == "explain_steps" else None,
                                batch_size=batch_size, fast=signature == "explain_fast")
    return explain_files(paths, out, explainer, targets=target, redact=redact, style=style)


def classify_files(paths, out: str | os.PathLike, client: PredictionClient, redact: bool = False) -> list[FileResult]:
    """The ``classify`` signature's probability for each image, written to ``out/<stem>.json``.

    Raises:
        TfsalError: the server cannot be reached, or serves no such model or signature.
    """
    size = client.input_size("classify")
    out, results = start_results(paths, out, redact)
    provenance = {"tfsal": __version__, "method": "classify", "seed": None, "classifier": None, "inpainter": None,
                  "settings": {"server": client.server, "model_name": client.model_name,
                               "model_version": client.version, "signature": "classify"}}
    for result in results:
        read = read_fitted(result, size)
        if read is None:
            continue
        working = read[2][None].astype(np.float32)
        tick = time.time()
        probability = float(client.predict("classify", {"image": working})["probability"][0])
        record = {"input": result.label, "input_sha256": result.sha256, "signature": "classify",
                  "probability": round(probability, 6),
                  "seconds": round(result.read_seconds + time.time() - tick, 3), "provenance": provenance}
        atomic.write_text(out / f"{result.stem}.json", json.dumps(record, indent=2) + "\n")
        result.record, result.files = record, []
    return results
