"""``tfsal evaluate``: every method on the same mass images, with the same searches and scores.

For every mass image of the split (the images with a ground-truth mask), each method's map (and
a mask method's own mask and score) is computed once and cached (``<out>/cache``, one file per
image, so an interrupted run resumes where it stopped) together with everything that needs the
models:

- each map's deletion and insertion curves with both marginalisers
  (:mod:`tfsal.evaluation.curves`), which also give the paper protocol's and the search's flips;
- the score after deleting each map's top pixels at ours' own area (the area-matched flip).

Where the time went (seconds per image of each method's explanations, of the curves with each
marginaliser, of the area-matched scores, and the wall-clock seconds per image) is written to
``<out>/timings.json`` after every chunk (for the images this run computed; tracing included).
With ``workers`` > 1 the chunks are shared by worker processes (:func:`_compute_in_workers`).

The protocols (:mod:`tfsal.evaluation.protocols`) and the statistics
(:mod:`tfsal.evaluation.summary`) are then computed from the cache alone.

Methods: the rows of :func:`tfsal.explain.registry.evaluation_rows`: the counterfactual method's
``counterfactual`` (the defaults, with ``--lambda`` overrides), ``counterfactual-paper`` (its
paper preset) and (when asked for) ``counterfactual-ablation``, and every map method.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tfsal import __version__
from tfsal.data.manifest import read_manifest
from tfsal.errors import TfsalError
from tfsal.evaluation.cache import (
    CACHE_VERSION,
    cache_name,
    check_cache,
    explainer_defaults,
    load_item,
    readable,
    save_item,
)
from tfsal.evaluation.curves import CURVES, MARGINALISERS, curve_scores, score_keeps
from tfsal.evaluation.protocols import PAPER_SIZE, REFERENCE, image_metrics
from tfsal.evaluation.summary import summarise
from tfsal.explain import registry
from tfsal.models.loading import model_fingerprint, model_identity
from tfsal.util import atomic

log = logging.getLogger(__name__)




def methods() -> tuple[str, ...]:
    """Every method name ``tfsal evaluate`` knows (derived from :mod:`tfsal.explain.registry`)."""
    return tuple(registry.evaluation_rows())


def is_map_method(name: str) -> bool:
    """Whether ``name`` is a map method (thresholded by the protocols) rather than a mask method."""
    return registry.evaluation_rows()[name][0].kind == "map"


@dataclass(frozen=True)
class EvaluationSettings:
    """What an evaluation computes (the cache is only reused for the same settings)."""

    split: str = "test"
    methods: tuple[str, ...] = field(default_factory=registry.default_evaluation_rows)
    lambdas: tuple[tuple[str, float], ...] = ()  # overrides of l1, l2, l3 for "counterfactual"
    steps: int = registry.DEFAULT_STEPS
    batch_size: int = 16
    seed: int = 0  # of the methods that take one (tfsal explain --seed)
    logits: bool = False  # the classifier outputs logits
    mask_network: str | None = None  # the amortised row's mask network file (None: the shipped one)

    def __post_init__(self):
        known = methods()
        unknown = sorted(set(self.methods) - set(known))
        if unknown or not self.methods:
            raise ValueError(f"methods must be some of {known}. Received: {list(self.methods)}")
        bad = [name for name, _ in self.lambdas if name not in ("l1", "l2", "l3")]
        if bad:
            raise ValueError(f"lambdas are l1, l2 and l3. Received: {bad}")


_NEWER = {"seed": 0, "logits": False, "mask_network": None}
"""Settings added after caches were first written: recorded in a cache's settings only when they
differ from these defaults, so that the caches made before them are still reused."""


def _mask_network_identity(settings: EvaluationSettings) -> dict:
    """``{"mask_network": sha256}`` of the file the amortised row uses (given or shipped), when a
    row uses one: the cache is reused only for the same network; ``{}`` otherwise."""
    from tfsal.explain.amortised import DEFAULT_MASK_NETWORK
    from tfsal.util.hashing import file_sha256
    from tfsal.util.resources import saved_models_dir

    if not any("mask_network" in registry.evaluation_rows()[m][0].options for m in settings.methods):
        return {}
    path = Path(settings.mask_network) if settings.mask_network else saved_models_dir() / DEFAULT_MASK_NETWORK
    return {"mask_network": file_sha256(path) if path.is_file() else None}


def _explainer(name: str, settings: EvaluationSettings, classifier, inpainter, height: int):
    """The explainer of one evaluation row: a mask method's variant with the inpainter and steps,
    or a map method (scored by the evaluation itself; given the inpainter when its map needs it)."""
    method, row = registry.evaluation_rows()[name]
    options = {"batch_size": settings.batch_size, "logits": settings.logits}
    if "seed" in method.options:
        options["seed"] = settings.seed
    if "mask_network" in method.options:
        options["mask_network"] = settings.mask_network
    if method.kind == "map":
        if method.uses_inpainter:
            options["inpainter"] = inpainter
        return method.load()(classifier, **options)
    variant = method.variants.get(row, registry.Variant(method.label))
    options.update(inpainter=inpainter, **variant.options)
    if "steps" in method.options:  # an optimising mask method (not a one-pass one)
        options["steps"] = settings.steps
    if variant.preset:
        options.update(method.preset(variant.preset, height))
    if variant.tunable:
        options.update(dict(settings.lambdas))
    return method.load()(classifier, **options)


def _explain(explainers, images, organ, targets, timings: dict) -> tuple[dict, dict]:
    """Each row's maps ``[B, H, W]``, and a mask row's masks, scores and grown pixels."""
    maps, own = {}, {}
    for row, explainer in explainers.items():
        with _timed(timings, f"explain:{row}"):
            explanations = explainer.explain(images, targets=targets, organ_masks=organ)
        maps[row] = np.stack([e.saliency for e in explanations]).astype(np.float32)
        if not is_map_method(row):
            own[row] = {"mask": np.stack([e.mask for e in explanations]),
                        "score": np.array([e.score_counterfactual for e in explanations], np.float32)}
            if explanations[0].grown is not None:
                own[row]["grown"] = np.stack([e.grown for e in explanations])
    return maps, own


@contextlib.contextmanager
def _timed(timings: dict, key: str):
    """Adds the seconds the ``with`` block took to ``timings[key]``."""
    tick = time.perf_counter()
    yield
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - tick


def _explain_chunk(chunk, explainers, adapter, fillers, size, batch_size, timings) -> list[dict]:
    """Every method's maps, own masks, curves and area-matched scores for a chunk of mass images;
    ``timings`` gains the seconds each part took."""
    from tfsal.data.pipelines import load_split
    from tfsal.explain.explanation import organ_ranks

    data = load_split([r for _, r in chunk], size)
    images, truth, organ = data["image"], data["mass"][..., 0] > 0.5, data["organ"][..., 0] > 0.5
    targets = np.ones(len(chunk), np.int32)
    original = adapter.target_probability(adapter.probabilities(images), targets).numpy()
    maps, own = _explain(explainers, images, organ, targets, timings)
    values = {"score_original": original}
    outside = (~organ)[:, None, ..., None].astype(np.float32)
    for m in MARGINALISERS:
        values[f"start:insertion:{m}"] = score_keeps(adapter, fillers[m], images, outside, targets, batch_size)[:, 0]
    for row, saliency in maps.items():
        ranks = np.stack([organ_ranks(s, o) for s, o in zip(saliency, organ, strict=True)])
        values[f"map:{row}"] = saliency.astype(np.float16)
        for curve in CURVES:
            for m in MARGINALISERS:
                with _timed(timings, f"curves:{m}"):
                    values[f"curve:{row}:{curve}:{m}"] = curve_scores(adapter, fillers[m], images, ranks, organ,
                                                                      targets, curve, batch_size=batch_size)
        if REFERENCE in own:
            counts = own[REFERENCE]["mask"].sum(axis=(1, 2))
            keep = (ranks >= counts[:, None, None])[:, None, ..., None].astype(np.float32)
            with _timed(timings, "area-matched scores"):
                values[f"area:{row}"] = score_keeps(adapter, fillers["inpainter"], images, keep, targets,
                                                    batch_size)[:, 0]
        for key, array in own.get(row, {}).items():
            values[f"{key}:{row}"] = array
    return [{"truth": truth[i], "organ": organ[i], **{k: v[i] for k, v in values.items()}} for i in range(len(chunk))]


@dataclass
class Evaluation:
    """What :func:`evaluate` found: settings, counts, per-image measures, summaries and tests, and
    the ``provenance`` of the run (tfsal version, the models by file and SHA-256)."""

    settings: dict
    images: int
    size: tuple[int, int]
    summary: dict
    tests: dict
    per_image: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)


def _write_timings(path: Path, timings: dict, images: int, wall: float, workers: int = 1) -> None:
    """``timings.json``: the wall-clock seconds per image of this run's explanations and scores, and
    the seconds per image of each part (summed over the workers, so with several workers the parts
    add up to more than the wall-clock time)."""
    atomic.write_text(path, json.dumps({"images": images, "workers": workers,
                                        "wall_seconds_per_image": round(wall / images, 3), "seconds_per_image": {
                                            k: round(v / images, 3) for k, v in sorted(timings.items())}},
                                       indent=1) + "\n")


class _Chunks:
    """The models, explainers and fills of one process, and how it explains and scores a chunk."""

    def __init__(self, settings, classifier, inpainter, size):
        from tfsal.explain.classifier_adapter import ClassifierAdapter
        from tfsal.explain.infill import BlurFill, Infiller

        infiller = Infiller(inpainter, jit_compile=True)  # one for all, in fixed batches: XLA's compilations pay
        self.explainers = {m: _explainer(m, settings, classifier, infiller, size[0]) for m in settings.methods}
        self.adapter = ClassifierAdapter(classifier, logits=settings.logits)
        self.fillers = {"inpainter": infiller, "blur": BlurFill()}
        self.settings, self.size = settings, size

    def run(self, chunk, cache: Path) -> dict:
        """Explains and scores ``chunk``, writes each image's cache file; returns the seconds per part."""
        timings: dict = {}
        items = _explain_chunk(chunk, self.explainers, self.adapter, self.fillers, self.size,
                               self.settings.batch_size, timings)
        for (index, record), item in zip(chunk, items, strict=True):
            save_item(cache / cache_name(index, record), item)
        return timings


def _add(total: dict, part: dict) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + value


def _compute(todo, cache, settings, classifier, inpainter, size, progress) -> None:
    """Explain and score the ``todo`` images in chunks of the batch size, writing each one's cache file."""
    from tqdm import tqdm

    chunks = _Chunks(settings, classifier, inpainter, size)
    bar = tqdm(total=len(todo), desc="evaluate", unit="image", disable=not progress)
    timings, tick = {}, time.perf_counter()
    for start in range(0, len(todo), settings.batch_size):
        chunk = todo[start:start + settings.batch_size]
        _add(timings, chunks.run(chunk, cache))
        bar.update(len(chunk))
        _write_timings(cache.parent / "timings.json", timings, start + len(chunk), time.perf_counter() - tick)
    bar.close()


_WORKER: _Chunks | None = None  # a worker process's own explainers (set by _start_worker)


def _start_worker(model_files, settings, size, threads: int) -> None:
    """The initializer of a :func:`_compute_in_workers` process: ``threads`` TensorFlow threads and
    the models loaded from ``model_files``."""
    global _WORKER
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    import tfsal.models.classifier
    import tfsal.models.inpainter  # noqa: F401  (both register tfsal's layers for loading)

    classifier, inpainter = (keras.models.load_model(f, compile=False) for f in model_files)
    _WORKER = _Chunks(settings, classifier, inpainter, size)


def _worker_chunk(chunk, cache: Path) -> dict:
    return _WORKER.run(chunk, cache)


def _compute_in_workers(todo, cache, settings, classifier, inpainter, size, progress, workers: int) -> None:
    """:func:`_compute` over ``workers`` processes of ``cores / workers`` TensorFlow threads each.

    On 2 cores two single-threaded workers do about a quarter more per second than one process of
    two threads (small convolutions do not split well over threads). The chunks are the serial
    run's, handed to whichever worker is free, so each image is explained in the same batch as in
    a serial run. The models travel as ``.keras`` files, so a model with custom layers must be
    loadable in a new process (else use ``workers=1``).
    """
    import multiprocessing
    import shutil
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    staging = cache / ".workers"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    model_files = [staging / "classifier.keras", staging / "inpainter.keras"]
    classifier.save(model_files[0])
    inpainter.save(model_files[1])
    threads = max(1, (os.cpu_count() or 1) // workers)
    chunks = [todo[i:i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
    bar = tqdm(total=len(todo), desc="evaluate", unit="image", disable=not progress)
    timings, done, tick = {}, 0, time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(model_files, settings, size, threads)) as pool:
        futures = {pool.submit(_worker_chunk, chunk, cache): len(chunk) for chunk in chunks}
        try:
            for future in as_completed(futures):
                _add(timings, future.result())
                done += futures[future]
                bar.update(futures[future])
                _write_timings(cache.parent / "timings.json", timings, done, time.perf_counter() - tick, workers)
        except Exception as exc:
            for future in futures:
                future.cancel()
            raise TfsalError(f"an evaluation worker failed ({type(exc).__name__}: {exc}); with models that cannot "
                             "be saved and reloaded, use workers=1") from exc
    bar.close()
    shutil.rmtree(staging, ignore_errors=True)


def _metrics_of(paths, methods, mask_rows, spacing) -> list[dict]:
    return [image_metrics(load_item(p), methods, mask_rows, spacing) for p in paths]


def _all_metrics(paths, methods, mask_rows, spacing, workers: int) -> list[dict]:
    """:func:`image_metrics` of every cached image, in ``workers`` processes."""
    if workers <= 1 or len(paths) < 2 * workers:
        return _metrics_of(paths, methods, mask_rows, spacing)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = [paths[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_metrics_of, parts, *([x] * workers for x in (methods, mask_rows, spacing))))
    ordered = [None] * len(paths)
    for k, result in enumerate(results):
        ordered[k::workers] = result
    return ordered


def evaluate(data: str | os.PathLike, out: str | os.PathLike, classifier, inpainter,
             settings: EvaluationSettings | None = None, limit: int | None = None,
             progress: bool = False, workers: int = 1) -> Evaluation:
    """Explain every mass image of the split with every method (cached per image) and score them.

    Args:
        data: ``labels.csv`` or its folder; the split's mass images need ground-truth masks.
        out: output folder; ``out/cache`` holds the per-image results.
        classifier, inpainter: Keras models.
        settings: what to compute.
        limit: only the first N mass images (a quick look; the cache is shared with full runs).
        progress: a progress bar on stderr.
        workers: processes that share the explanations and the metrics (each with its share of
            the cores); the results do not depend on it beyond float rounding.

    Raises:
        TfsalError: no mass image with a mask in the split, or a cache made with other settings.
    """
    settings = settings or EvaluationSettings()
    out = Path(out)
    records = [r for r in read_manifest(data, split=settings.split) if r.label == 1 and r.mask is not None]
    if not records:
        raise TfsalError(f"{data}: no mass image with a ground-truth mask in the {settings.split!r} split")
    records = list(enumerate(records))[:limit]
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    recorded = {k: v for k, v in asdict(settings).items() if k not in _NEWER or v != _NEWER[k]}
    described = json.loads(json.dumps({**recorded, "data": str(Path(data).resolve()),
                                       "cache_version": CACHE_VERSION, "models": {
                                           "classifier": model_fingerprint(classifier),
                                           "inpainter": model_fingerprint(inpainter)},
                                       "explainer_defaults": explainer_defaults(settings.methods),
                                       **_mask_network_identity(settings)}))
    check_cache(cache, described)
    size = tuple(int(v) for v in classifier.input_shape[1:3])
    todo = [(i, r) for i, r in records if not readable(cache / cache_name(i, r))]
    if todo and workers > 1 and len(todo) > settings.batch_size:
        _compute_in_workers(todo, cache, settings, classifier, inpainter, size, progress, workers)
    elif todo:
        _compute(todo, cache, settings, classifier, inpainter, size, progress)
    spacing = (PAPER_SIZE[0] / size[0], PAPER_SIZE[1] / size[1])
    mask_rows = [m for m in settings.methods if not is_map_method(m)]
    per_image = _all_metrics([cache / cache_name(i, r) for i, r in records], settings.methods, mask_rows, spacing,
                             workers)
    summary, tests = summarise(per_image, settings.methods)
    provenance = {"tfsal": __version__, "classifier": model_identity(classifier),
                  "inpainter": model_identity(inpainter), "seed": settings.seed}
    return Evaluation(described, len(records), size, summary, tests, per_image, provenance)
