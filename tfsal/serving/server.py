"""A TF-Serving-compatible gRPC server over an exported SavedModel, for development and tests.

Production runs the official ``tensorflow/serving`` image on the same export; this server speaks
the same ``tensorflow.serving.PredictionService`` protocol (the stubs of tensorflow-serving-api)
so clients are the same: ``Predict`` (signature dispatch, ``output_filter``) and
``GetModelMetadata`` (``signature_def``). It serves the highest version folder under the model
base path, replays the export's warm-up requests at start, answers a request of the wrong model
name NOT_FOUND and one of a wrong signature, input name, dtype or shape INVALID_ARGUMENT while
it keeps serving, and runs requests on a thread pool.

Hardening (``docs/security.md``): every limit is checked on the request before a tensor is
expanded; at most ``workers + queue`` calls are admitted at once (the rest: RESOURCE_EXHAUSTED);
a call cancelled by its client, past its deadline or still running when the server stops is
stopped inside the optimisation loop (:mod:`tfsal.serving.cancel`); TLS and a bearer token
(:mod:`tfsal.serving.security`); the standard ``grpc.health.v1.Health`` service, SERVING once
the warm-up has run and NOT_SERVING from the moment a shutdown starts. SIGTERM drains: calls in
flight get ``grace`` seconds, then are cancelled, and the process exits.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from tfsal.errors import TfsalError
from tfsal.serving.cancel import Cancellable
from tfsal.serving.options import GRPC_OPTIONS
from tfsal.serving.security import ServerSecurity

log = logging.getLogger(__name__)


__all__ = ["SERVICE_NAME", "ModelServer", "RequestLimits", "latest_version"]

SERVICE_NAME = "tensorflow.serving.PredictionService"
"""The service the health service reports on (as does the empty name, the whole server)."""


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask: images per request and optimisation steps (``explain_steps``);
    and how many calls wait for a worker (beyond them: RESOURCE_EXHAUSTED)."""

    max_batch: int = 16
    max_steps: int = 1000
    queue: int = 8


def latest_version(model_dir: str | Path) -> tuple[int, Path]:
    """The highest numbered version folder holding a ``saved_model.pb`` (TF Serving's rule)."""
    base = Path(model_dir)
    versions = [(int(p.name), p) for p in base.iterdir()
                if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()] if base.is_dir() else []
    if not versions:
        raise TfsalError(f"{model_dir}: no version folder with a saved_model.pb (expected MODEL_DIR/1/ ...)")
    return max(versions)


SHUTDOWN = "the server shut down"


class _BadRequest(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over one loaded SavedModel."""

    def __init__(self, model_dir: str | Path, model_name: str, limits: RequestLimits | None = None):
        self.version, folder = latest_version(model_dir)
        self.model_name = model_name
        self.limits = limits or RequestLimits()
        self.model = tf.saved_model.load(str(folder))
        self.signatures = dict(self.model.signatures)
        meta = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
        self.signature_defs = {k: v for k, v in meta.meta_graphs[0].signature_def.items() if not k.startswith("__")}
        self.folder = folder
        probability = self.signatures["classify"].structured_outputs["probability"].shape
        self.classes = 2 if probability.rank == 1 or probability[-1] == 1 else int(probability[-1])  # 1 sigmoid: 0/1
        self._lock = threading.Condition()
        self._in_flight: set[Cancellable] = set()
        self._draining = False

    # -- helpers -------------------------------------------------------------------------------
    def _check_name(self, spec) -> None:
        if spec.name != self.model_name:
            raise _BadRequest(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")

    def _inputs(self, signature_name: str, request) -> dict:
        if signature_name not in self.signatures:
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                              f"Serving signature name: \"{signature_name}\" not found in signature def")
        specs = self.signatures[signature_name].structured_input_signature[1]
        if set(request.inputs) != set(specs):
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                              f"inputs {sorted(request.inputs)} do not match the signature's {sorted(specs)}")
        values = {}
        for name, spec in specs.items():
            proto = request.inputs[name]
            if proto.dtype != spec.dtype.as_datatype_enum:
                raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                                  f"input {name!r}: expected dtype {spec.dtype.name}")
            self._check_declared(name, proto, spec)  # before anything is expanded: a 59-byte proto can claim GBs
            try:
                value = tf.make_ndarray(proto)
            except Exception as exc:  # a malformed TensorProto
                raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT, f"input {name!r}: {exc}") from None
            self._check_values(name, value)
            values[name] = tf.constant(value)
        return values

    def _check_declared(self, name: str, proto, spec) -> None:
        """The shape a TensorProto declares against the signature and the limits, and its content
        against that shape, without expanding it."""
        shape = [d.size for d in proto.tensor_shape.dim]
        if any(size < 0 for size in shape) or not spec.shape.is_compatible_with(shape):
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT, f"input {name!r}: shape {shape} is not {spec.shape}")
        if shape and shape[0] > self.limits.max_batch:
            raise _BadRequest(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"input {name!r}: a batch of {shape[0]} is over this server's limit of "
                              f"{self.limits.max_batch} (--max-batch)")
        elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
        itemsize = tf.dtypes.as_dtype(proto.dtype).size
        if proto.tensor_content and len(proto.tensor_content) != elements * itemsize:
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                              f"input {name!r}: {len(proto.tensor_content)} bytes of content for {shape}")

    def _check_values(self, name: str, value: np.ndarray) -> None:
        """Finite images, steps in the configured range, targets among the model's outputs."""
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT, f"input {name!r}: NaN or infinite values")
        if name == "steps" and not 1 <= int(value) <= self.limits.max_steps:
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                              f"input 'steps': {int(value)} is outside 1-{self.limits.max_steps} (--max-steps)")
        if name == "target" and value.size and not (value.min() >= 0 and value.max() < self.classes):
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                              f"input 'target': classes must lie in 0-{self.classes - 1} for this model")

    def _abort(self, context, error: _BadRequest):
        context.abort(error.code, str(error))

    # -- the service ---------------------------------------------------------------------------
    def predict(self, request, call: Cancellable | None = None) -> predict_pb2.PredictResponse:
        """Answer one PredictRequest (raises _BadRequest for a bad one, and
        ``tf.errors.CancelledError`` when ``call`` is cancelled while it runs)."""
        self._check_name(request.model_spec)
        signature_name = request.model_spec.signature_name or "serving_default"
        inputs = self._inputs(signature_name, request)  # first: it answers an unknown signature
        signature = self.signatures[signature_name]
        wanted = list(request.output_filter) or list(signature.structured_outputs)
        unknown = sorted(set(wanted) - set(signature.structured_outputs))
        if unknown:  # before the computation, not after it
            raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT, f"output_filter names unknown outputs {unknown}")
        outputs = (call or Cancellable()).call(signature, **inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model_name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature_name
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
        return response

    def Predict(self, request, context):
        call = Cancellable()
        with self._lock:
            if self._draining:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            self._in_flight.add(call)
        # the client cancelling or going away, and the deadline, stop the computation
        context.add_callback(lambda: call.cancel("the call ended before its answer"))
        remaining = context.time_remaining()
        timer = None
        if remaining is not None and remaining < 1e6:
            timer = threading.Timer(max(remaining, 0.0), call.cancel, args=("the deadline passed",))
            timer.daemon = True
            timer.start()
        try:
            return self.predict(request, call)
        except _BadRequest as error:
            self._abort(context, error)
        except tf.errors.InvalidArgumentError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except tf.errors.CancelledError:
            code = (grpc.StatusCode.DEADLINE_EXCEEDED if call.reason == "the deadline passed"
                    else grpc.StatusCode.UNAVAILABLE if call.reason == SHUTDOWN else grpc.StatusCode.CANCELLED)
            context.abort(code, f"stopped: {call.reason}")
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._in_flight.discard(call)
                self._lock.notify_all()

    def drain(self) -> None:
        """Refuse new calls (UNAVAILABLE) from now on."""
        with self._lock:
            self._draining = True

    def cancel_all(self) -> int:
        """Stop every call in flight; how many there were."""
        with self._lock:
            calls = list(self._in_flight)
        for call in calls:
            call.cancel(SHUTDOWN)
        return len(calls)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every call in flight has ended within ``timeout`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._in_flight, timeout)

    def GetModelMetadata(self, request, context):
        try:
            self._check_name(request.model_spec)
        except _BadRequest as error:
            self._abort(context, error)
        if list(request.metadata_field) not in ([], ["signature_def"]):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only metadata_field 'signature_def' is served")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model_name
        response.model_spec.version.value = self.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in self.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(definition)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def warm_up(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests``; returns how many ran."""
        path = self.folder / "assets.extra" / "tf_serving_warmup_requests"
        if not path.exists():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)):
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            request.model_spec.name = self.model_name
            self.predict(request)
            count += 1
        return count


class ModelServer:
    """The gRPC server: ``start()``, then ``wait()`` until SIGTERM/SIGINT or ``stop()``.

    Args:
        model_dir: the model base path (version folders below it).
        port: the port to listen on (0 picks a free one; ``port`` tells which).
        model_name: the name clients put in ``model_spec.name``.
        host: the address to bind.
        workers: threads answering requests.
        limits: what one request may ask, and how many wait for a worker (:class:`RequestLimits`);
            checked before any tensor is expanded.
        security: TLS and bearer token (:class:`~tfsal.serving.security.ServerSecurity`); None:
            plaintext, no token.
        grace: seconds :meth:`wait` gives calls in flight after SIGTERM before cancelling them.
    """

    def __init__(self, model_dir, port: int = 8500, model_name: str = "tfsal", host: str = "127.0.0.1",
                 workers: int = 8, limits: RequestLimits | None = None, security: ServerSecurity | None = None,
                 grace: float = 10.0):
        limits = limits or RequestLimits()
        security = security or ServerSecurity()
        self.grace = float(grace)
        self.service = PredictionService(model_dir, model_name, limits)
        self.health = health.HealthServicer()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=GRPC_OPTIONS,
                                  interceptors=security.interceptors(),
                                  maximum_concurrent_rpcs=workers + limits.queue)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.service, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = security.add_port(self.server, f"{host}:{port}")
        if self.port == 0:
            raise TfsalError(f"cannot listen on {host}:{port}")
        self._stopped = threading.Event()

    def start(self, warm_up: bool = True) -> int:
        """Replay the warm-up requests, start serving and report SERVING; how many were replayed."""
        warmed = self.service.warm_up() if warm_up else 0
        self.server.start()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving %s version %d on port %d", self.service.model_name, self.service.version, self.port)
        return warmed

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, refuse new calls, give those in flight ``grace`` seconds (default
        the server's), then cancel them and stop."""
        grace = self.grace if grace is None else grace
        self.health.enter_graceful_shutdown()
        self.service.drain()
        stopping = self.server.stop(grace)
        if not stopping.wait(grace + 1.0):
            log.warning("calls still running %.0f s after the shutdown began", grace)
        cancelled = self.service.cancel_all()
        if cancelled:
            log.warning("%d call(s) in flight cancelled at shutdown", cancelled)
        if not self.service.wait_idle(10.0):
            log.warning("a call did not stop within 10 s of its cancellation")
        stopping.wait(5.0)
        self._stopped.set()

    def wait(self) -> None:
        """Block until stopped; SIGTERM and SIGINT stop the server gracefully (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: threading.Thread(target=self.stop, daemon=True).start())
        self._stopped.wait()
