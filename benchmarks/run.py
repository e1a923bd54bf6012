"""Explanation speed against its compute floor, and peak memory (first part of issue 8).

    python benchmarks/run.py --out bench/ [--sizes 256x192,576x448] [--batches 1,4,8,16] [--steps 100]

For each size and batch size: the seconds per image of `CounterfactualExplainer.explain` (after
one warm-up call), and its compute floor at the same batch size: `steps` compiled classifier
forward + backward passes plus the inpainter passes the method makes (4 for the precomputed
in-fill, one per refill, one for the final counterfactual). At 256x192 the shipped models are
timed; at other sizes a MobileNet and a U-Net of that size with random weights (speed does not
depend on the weights; the growth step, which depends on the decisions, is turned off there so
that the runs stay comparable). Writes results.json and results.md to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfsal.data.synthetic import make_mammogram
from tfsal.explain import CounterfactualExplainer
from tfsal.models.classifier import build_classifier, load_default_classifier
from tfsal.models.inpainter import build_inpainter, load_default_inpainter

SHIPPED = (256, 192)


def models_for(size):
    if tuple(size) == SHIPPED:
        return load_default_classifier(), load_default_inpainter(), {}
    return build_classifier(size), build_inpainter(size), {"grow_steps": 0}


def images_for(size, count: int) -> np.ndarray:
    return np.stack([make_mammogram(seed, size, n_masses=seed % 2).image for seed in range(count)]).astype(
        np.float32)[..., None]


def floor_seconds(classifier, inpainter, images: np.ndarray, steps: int, inpainter_passes: int) -> dict:
    """Seconds of `steps` compiled classifier forward+backward passes and of the inpainter passes."""
    x = tf.constant(images)
    keep = tf.ones_like(x)

    @tf.function
    def classifier_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(classifier(x, training=False))
        return tape.gradient(total, x)

    @tf.function
    def inpainter_pass(x, keep):
        return inpainter({"image": x * keep, "mask": keep}, training=False)

    classifier_step(x), inpainter_pass(x, keep)  # trace
    tick = time.perf_counter()
    for _ in range(10):
        classifier_step(x).numpy()
    per_step = (time.perf_counter() - tick) / 10
    tick = time.perf_counter()
    for _ in range(3):
        inpainter_pass(x, keep).numpy()
    per_pass = (time.perf_counter() - tick) / 3
    return {"classifier_step": per_step, "inpainter_pass": per_pass,
            "floor": steps * per_step + inpainter_passes * per_pass}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--sizes", default="256x192,576x448")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    rows = []
    for text in args.sizes.split(","):
        size = tuple(int(v) for v in text.split("x"))
        classifier, inpainter, options = models_for(size)
        for batch in (int(b) for b in args.batches.split(",")):
            images = images_for(size, batch)
            explainer = CounterfactualExplainer(classifier, inpainter=inpainter, steps=args.steps, batch_size=batch,
                                                **options)
            explainer.explain(images)  # warm-up: traces the graph
            tick = time.perf_counter()
            explainer.explain(images)
            seconds = time.perf_counter() - tick
            passes = 4 + -(-args.steps // explainer.refill_every) + 1 if explainer.refill_every else 5
            floor = floor_seconds(classifier, inpainter, images, args.steps, passes)
            rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "seconds_per_image": seconds / batch,
                         "images_per_second": batch / seconds, "floor_seconds_per_image": floor["floor"] / batch,
                         "overhead_ratio": seconds / floor["floor"], **{k: v for k, v in floor.items() if k != "floor"},
                         "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
            print(json.dumps(rows[-1]), flush=True)
    machine = {"platform": platform.platform(), "processor": platform.processor(),
               "cpus": len(os.sched_getaffinity(0)), "tensorflow": tf.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"machine": machine, "steps": args.steps, "rows": rows},
                                                      indent=1) + "\n")
    lines = ["| size | batch | s/image | images/s | floor s/image | explain / floor | peak RSS MB |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['size']} | {r['batch']} | {r['seconds_per_image']:.3f} | {r['images_per_second']:.2f} | "
              f"{r['floor_seconds_per_image']:.3f} | {r['overhead_ratio']:.2f} | {r['peak_rss_mb']:.0f} |"
              for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
