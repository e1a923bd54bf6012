"""Load test of `tfsal serve`: concurrent clients, malformed requests mixed in, memory over time.

    tfsal export --out /tmp/models/tfsal
    python benchmarks/serving_load.py --model-dir /tmp/models/tfsal --clients 8 --requests 500

Starts `tfsal serve` on a free loopback port, sends REQUESTS Predict calls from CLIENTS threads
(every 10th malformed: a float64 image), checks that every good `classify` answer equals the
SavedModel's own and every bad one is INVALID_ARGUMENT, and reads the server's resident memory
(/proc) after a warm-up round of 100 mixed requests and after every 100 requests. Every 25th
request is a 2-step `explain_steps`. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsal.serving.options import GRPC_OPTIONS
from tfsal.serving.server import latest_version


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def request(signature, **inputs):
    message = predict_pb2.PredictRequest()
    message.model_spec.name, message.model_spec.signature_name = "tfsal", signature
    for name, value in inputs.items():
        message.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    version, folder = latest_version(args.model_dir)
    local = tf.saved_model.load(str(folder)).signatures["classify"]
    shape = local.structured_input_signature[1]["image"].shape.as_list()[1:]
    rng = np.random.default_rng(0)
    images = rng.random((16, *shape), np.float32)
    expected = local(image=tf.constant(images))["probability"].numpy()
    server = subprocess.Popen([sys.executable, "-m", "tfsal.cli.main", "serve", "--model-dir", args.model_dir,
                               "--port", "0", "--host", "127.0.0.1"], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=tempfile.gettempdir())
    try:
        port = None
        while port is None:
            line = server.stderr.readline()
            if not line and server.poll() is not None:
                raise SystemExit("the server did not start")
            match = re.search(r"on 127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        threading.Thread(target=lambda: server.stderr.read(), daemon=True).start()
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS))
        outcome = {"good_ok": 0, "good_wrong": 0, "bad_invalid": 0, "bad_other": 0, "explain_ok": 0}
        lock = threading.Lock()

        def one(i: int) -> None:
            index = i % 16
            if i % 10 == 9:
                try:
                    stub.Predict(request("classify", image=images[index][None].astype(np.float64)), timeout=60)
                    key = "bad_other"
                except grpc.RpcError as error:
                    key = "bad_invalid" if error.code() == grpc.StatusCode.INVALID_ARGUMENT else "bad_other"
            elif i % 25 == 0:
                answer = stub.Predict(request("explain_steps", image=images[index][None], target=np.ones(1, np.int32),
                                              steps=np.array(2, np.int32)), timeout=600)
                key = "explain_ok" if answer.outputs["mask"].tensor_shape.dim[0].size == 1 else "good_wrong"
            else:
                answer = stub.Predict(request("classify", image=images[index][None]), timeout=60)
                value = tf.make_ndarray(answer.outputs["probability"])[0]
                key = "good_ok" if abs(value - expected[index]) < 1e-5 else "good_wrong"
            with lock:
                outcome[key] += 1

        with futures.ThreadPoolExecutor(args.clients) as pool:  # warm-up: the allocator reaches its working set
            list(pool.map(one, range(100)))
        outcome = dict.fromkeys(outcome, 0)
        before = rss_mb(server.pid)
        readings = []
        tick = time.time()
        with futures.ThreadPoolExecutor(args.clients) as pool:
            for start in range(0, args.requests, 100):
                list(pool.map(one, range(start, min(start + 100, args.requests))))
                readings.append(round(rss_mb(server.pid), 1))
        seconds = time.time() - tick
        after = readings[-1]
        server.send_signal(15)
        clean_exit = server.wait(timeout=60) == 0
    finally:
        server.kill()
    print(json.dumps({"version": version, "clients": args.clients, "requests": args.requests, **outcome,
                      "seconds": round(seconds, 2), "rss_mb_before": round(before, 1), "rss_mb_every_100": readings,
                      "rss_mb_after": round(after, 1),
                      "rss_growth": round(after / before - 1, 4), "clean_exit_on_sigterm": clean_exit}, indent=1))


if __name__ == "__main__":
    main()
