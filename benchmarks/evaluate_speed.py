"""What makes ``tfsal evaluate`` faster: the in-fill compiled by XLA, and worker processes.

Measures, with the shipped models on the first 16 validation mass images of a synthetic set:

- the inpainter's forward pass, ms per image at batch 16, as a plain ``tf.function`` and compiled
  by XLA (:class:`tfsal.explain.infill.Infiller` with ``jit_compile``);
- one map's deletion and insertion curves with the inpainter (14 composites per image, what
  ``tfsal evaluate`` computes for every method), s per image, both ways;
- the same curves in one process with every core against ``--workers`` processes at once with
  ``cores / workers`` TensorFlow threads each (what ``tfsal evaluate --workers`` does): the
  images per second of the whole machine.

    python benchmarks/evaluate_speed.py --data data/synth --out bench/evaluate_speed.json

Speed is measured here, never asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor


def _setup(data: str, threads: int | None, count: int = 16):
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np

    from tfsal.data.manifest import read_manifest
    from tfsal.data.pipelines import load_split
    from tfsal.explain.explanation import organ_ranks
    from tfsal.models.classifier import load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter

    classifier, inpainter = load_default_classifier(), load_default_inpainter()
    records = [r for r in read_manifest(data, split="val") if r.label == 1][:count]
    loaded = load_split(records, tuple(classifier.input_shape[1:3]))
    organ = loaded["organ"][..., 0] > 0.5
    rng = np.random.default_rng(0)
    ranks = np.stack([organ_ranks(rng.random(o.shape), o) for o in organ])  # any map: the cost is the same
    return classifier, inpainter, loaded["image"], organ, ranks


def _curves_per_second(data: str, threads: int | None, jit: bool, repeats: int) -> float:
    """Images per second of one map's two curves with the inpainter."""
    import numpy as np

    from tfsal.evaluation.curves import curve_scores
    from tfsal.explain.classifier_adapter import ClassifierAdapter
    from tfsal.explain.infill import Infiller

    classifier, inpainter, images, organ, ranks = _setup(data, threads)
    adapter, filler, targets = ClassifierAdapter(classifier), Infiller(inpainter, jit_compile=jit), np.ones(
        len(images), np.int32)
    curve_scores(adapter, filler, images, ranks, organ, targets, "deletion")  # tracing and compilation
    tick = time.perf_counter()
    for _ in range(repeats):
        for curve in ("deletion", "insertion"):
            curve_scores(adapter, filler, images, ranks, organ, targets, curve)
    return repeats * len(images) / (time.perf_counter() - tick)


def _forward_ms(data: str, jit: bool, repeats: int = 5) -> float:
    import tensorflow as tf

    from tfsal.explain.infill import Infiller

    _, inpainter, images, _, _ = _setup(data, None)
    filler, images = Infiller(inpainter, jit_compile=jit), tf.constant(images)
    keep = tf.ones_like(images)
    filler.fill(images, keep)
    tick = time.perf_counter()
    for _ in range(repeats):
        filler.fill(images, keep).numpy()
    return 1000 * (time.perf_counter() - tick) / (repeats * len(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    spawn = multiprocessing.get_context("spawn")
    rows = {}
    for jit in (False, True):  # each in a fresh process, so that one's threads cannot slow the other
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            rows[f"inpainter forward ms/image, {'XLA' if jit else 'default'}"] = pool.submit(
                _forward_ms, args.data, jit).result()
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            rows[f"one map's curves s/image, {'XLA' if jit else 'default'}"] = 1 / pool.submit(
                _curves_per_second, args.data, None, jit, args.repeats).result()
    threads = max(1, cores // args.workers)
    with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
        rates = list(pool.map(_curves_per_second, *([x] * args.workers for x in (args.data, threads, True,
                                                                                  args.repeats))))
    rows[f"one map's curves s/image, XLA, {args.workers} workers of {threads} threads"] = 1 / sum(rates)
    print(f"| {cores} cores | value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value:.3f} |")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"cores": cores, **rows}, handle, indent=1)


if __name__ == "__main__":
    main()
