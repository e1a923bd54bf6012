"""Explanation speed against its compute floor, where the time goes, and the XLA and
mixed-precision trials.

For each size and batch size: the seconds per image of `CounterfactualExplainer.explain` (after
one warm-up call), and its compute floor at the same batch size: `steps` compiled classifier
forward + backward passes plus the inpainter passes the method makes (4 for the precomputed
in-fill, one per refill, one for the final counterfactual), and the floor of the minimal design
(the 4 passes of the precomputed in-fill only), explain calls and floor measurements alternated
(``--repeats`` times, medians). At 256x192 the shipped models are
timed; at other sizes a MobileNet and a U-Net of that size with random weights (speed does not
depend on the weights; the growth step, which depends on the decisions, is turned off there so
that the runs stay comparable).
"""

from __future__ import annotations

import contextlib
import functools
import resource
import time

import keras
import numpy as np
import tensorflow as tf

from tfsal.data.synthetic import make_mammogram
from tfsal.explain import CounterfactualExplainer
from tfsal.explain import base as explain_base
from tfsal.explain import verify as explain_verify
from tfsal.explain.infill import Infiller
from tfsal.models.classifier import build_classifier, load_default_classifier
from tfsal.models.inpainter import build_inpainter, load_default_inpainter

SHIPPED = (256, 192)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@functools.cache  # every part times the same models: load or build them once per size
def models_for(size):
    if tuple(size) == SHIPPED:
        return load_default_classifier(), load_default_inpainter(), {}
    return build_classifier(size), build_inpainter(size), {"grow_steps": 0}


def images_for(size, count: int) -> np.ndarray:
    return np.stack([make_mammogram(seed, size, n_masses=seed % 2).image for seed in range(count)]).astype(
        np.float32)[..., None]


def floor_seconds(classifier, inpainter, images: np.ndarray, steps: int, inpainter_passes: int) -> dict:
    """Seconds of `steps` compiled classifier forward+backward passes and of the inpainter passes.

    The classifier passes run in one graph loop as the method's do (a step's input depends on the
    previous step's gradient, so nothing is hoisted out of the loop), without Python between steps.
    """
    x = tf.constant(images)
    keep = tf.ones_like(x)

    @tf.function
    def classifier_steps(x, count):
        gradient = tf.zeros_like(x)
        for _ in tf.range(count):
            with tf.GradientTape() as tape:
                seen = x + 1e-6 * gradient
                tape.watch(seen)
                total = tf.reduce_sum(classifier(seen, training=False))
            gradient = tape.gradient(total, seen)
        return gradient

    @tf.function
    def inpainter_pass(x, keep):
        return inpainter({"image": x * keep, "mask": keep}, training=False)

    classifier_steps(x, tf.constant(2)), inpainter_pass(x, keep)  # trace
    tick = time.perf_counter()
    classifier_steps(x, tf.constant(steps)).numpy()
    per_step = (time.perf_counter() - tick) / steps
    tick = time.perf_counter()
    for _ in range(3):
        inpainter_pass(x, keep).numpy()
    per_pass = (time.perf_counter() - tick) / 3
    return {"classifier_step": per_step, "inpainter_pass": per_pass,
            "floor": steps * per_step + inpainter_passes * per_pass}


MINIMAL_PASSES = 4
"""The in-fill passes of the minimal design (issue 20): the precomputed in-fill, no refills, no final pass."""


def inpainter_passes(explainer: CounterfactualExplainer) -> int:
    """Inpainter passes the method as configured cannot avoid: 4 for the in-fill, the refills, 1 at the end."""
    every = explainer.settings.refill_every
    refills = -(-explainer.steps // every) if every else 0
    return MINIMAL_PASSES + refills + 1


def timed_explain(explainer, images: np.ndarray) -> tuple[float, list]:
    """Seconds of one explain call after a warm-up call (which traces the graphs), and its explanations."""
    explainer.explain(images)
    tick = time.perf_counter()
    explanations = explainer.explain(images)
    return time.perf_counter() - tick, explanations


def side_by_side(explainer, classifier, inpainter, images: np.ndarray, steps: int, repeats: int) -> dict:
    """Explain calls and floor measurements alternated ``repeats`` times in this process (a drift of a
    shared machine's speed hits both), each figure the median of its repeats: the explain call's
    seconds, one classifier step's and one inpainter pass's, the floor of the method as configured
    (:func:`inpainter_passes`) and the minimal design's (:data:`MINIMAL_PASSES`), each ratio, and the
    lowest and highest ratio of one explain call to the floor measured after it."""
    seconds, parts = [], []
    explainer.explain(images)  # warm-up: traces the graphs
    for _ in range(repeats):
        tick = time.perf_counter()
        explainer.explain(images)
        seconds.append(time.perf_counter() - tick)
        parts.append(floor_seconds(classifier, inpainter, images, steps, inpainter_passes(explainer)))
    step = float(np.median([p["classifier_step"] for p in parts]))
    per_pass = float(np.median([p["inpainter_pass"] for p in parts]))
    explain = float(np.median(seconds))
    floor = steps * step + inpainter_passes(explainer) * per_pass
    minimal = steps * step + MINIMAL_PASSES * per_pass
    pairs = [t / p["floor"] for t, p in zip(seconds, parts, strict=True)]
    return {"seconds": explain, "classifier_step": step, "inpainter_pass": per_pass, "floor": floor,
            "minimal_floor": minimal, "overhead_ratio": explain / floor, "minimal_ratio": explain / minimal,
            "ratio_spread": [min(pairs), max(pairs)]}


def speed_rows(sizes, batches, steps: int, log=print, repeats: int = 3) -> list[dict]:
    rows = []
    for size in sizes:
        classifier, inpainter, options = models_for(size)
        for batch in batches:
            images = images_for(size, batch)
            explainer = CounterfactualExplainer(classifier, inpainter=inpainter, steps=steps, batch_size=batch,
                                                **options)
            measured = side_by_side(explainer, classifier, inpainter, images, steps, repeats)
            rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "repeats": repeats,
                         "seconds_per_image": measured["seconds"] / batch,
                         "images_per_second": batch / measured["seconds"],
                         "floor_seconds_per_image": measured["floor"] / batch,
                         "minimal_floor_seconds_per_image": measured["minimal_floor"] / batch,
                         **{k: measured[k] for k in ("overhead_ratio", "minimal_ratio", "ratio_spread",
                                                     "classifier_step", "inpainter_pass")},
                         "peak_rss_mb": peak_rss_mb()})
            log(rows[-1])
    return rows


# -- where the time goes -------------------------------------------------------------------
# stage -> where it is: the explainer's or its mask optimiser's public methods
PROFILED = {"prepare": "explainer", "precomputed_fill": "optimiser", "optimise": "optimiser",
            "counterfactuals": "explainer", "grow": "verify"}


@contextlib.contextmanager
def stage_timer(explainer):
    """Wall seconds spent in each stage of ``explainer.explain`` (the public methods of the explainer
    and of its :class:`~tfsal.explain.mask.MaskOptimiser` wrapped on the instances, and the organ
    masks computed in tfsal.explain.base, and the growth in tfsal.explain.verify, wrapped on the
    modules and put back after); a stage called inside another (the growth step's
    counterfactuals) counts for the outer one. What is left is numpy and Python glue."""
    seconds = dict.fromkeys(("organ_of", *PROFILED), 0.0)
    running = []

    def wrap(name, function):
        def timed(*args, **kwargs):
            if running:
                return function(*args, **kwargs)
            running.append(name)
            tick = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - tick
                running.pop()
        return timed

    owners = {"explainer": explainer, "optimiser": explainer.optimiser, "verify": explain_verify}
    originals = {name: getattr(owners[owner], name) for name, owner in PROFILED.items()}
    own = {name for name, owner in PROFILED.items() if name in vars(owners[owner])}  # set on the object itself
    for name, owner in PROFILED.items():
        setattr(owners[owner], name, wrap(name, originals[name]))
    original_organ_of = explain_base.organ_of
    explain_base.organ_of = wrap("organ_of", original_organ_of)
    try:
        yield seconds
    finally:
        explain_base.organ_of = original_organ_of
        for name, owner in PROFILED.items():
            if name in own:  # a module's function or an instance's own attribute (a tf.function): put back
                setattr(owners[owner], name, originals[name])
            else:  # an instance: the wrapper off, the class's method shows again
                delattr(owners[owner], name)


def profile_rows(size, batches, steps: int, log=print, repeats: int = 1) -> list[dict]:
    """Per batch size: each stage's share of one explain call, beside the floor's parts; the loop
    (in-fill and optimisation) against its floor with the refills (``loop_floor``) and against the
    minimal design's (``loop_minimal_floor``: steps and the 4 in-fill passes). With ``repeats``,
    explain calls and floor measurements alternate and every figure is the median of its repeats."""
    classifier, inpainter, options = models_for(size)
    rows = []
    for batch in batches:
        images = images_for(size, batch)
        explainer = CounterfactualExplainer(classifier, inpainter=inpainter, steps=steps, batch_size=batch, **options)
        explainer.explain(images)
        measured = []
        for _ in range(repeats):
            with stage_timer(explainer) as seconds:
                tick = time.perf_counter()
                explainer.explain(images)
                total = time.perf_counter() - tick
            floor = floor_seconds(classifier, inpainter, images, steps, inpainter_passes(explainer))
            measured.append({"total": total, **seconds, "other": total - sum(seconds.values()),
                             "classifier_step": floor["classifier_step"], "inpainter_pass": floor["inpainter_pass"]})
        row = {key: float(np.median([m[key] for m in measured])) for key in measured[0]}
        step, per_pass, refills = row["classifier_step"], row["inpainter_pass"], inpainter_passes(explainer) - 5
        loop = row["precomputed_fill"] + row["optimise"]
        optimise_floor = steps * step + refills * per_pass  # the loop's classifier steps and refills
        loop_floor, minimal = optimise_floor + MINIMAL_PASSES * per_pass, steps * step + MINIMAL_PASSES * per_pass
        rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "repeats": repeats, **row,
                     "optimise_floor": optimise_floor, "loop_floor": loop_floor, "loop_minimal_floor": minimal,
                     "loop_ratio": loop / loop_floor, "loop_minimal_ratio": loop / minimal})
        log(rows[-1])
    return rows


# -- XLA and mixed precision ---------------------------------------------------------------
def _bfloat16_copy(model):
    """The model rebuilt with every layer under the ``mixed_bfloat16`` policy (bfloat16 compute,
    float32 weights), with the same weights. Each layer's config names its own dtype policy, so
    the global policy alone would change nothing."""
    def to_bfloat16(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "mixed_bfloat16"})

    copy = keras.models.clone_model(model, clone_function=to_bfloat16)
    copy.set_weights(model.get_weights())
    return copy


def trial_rows(size, batches, steps: int, log=print) -> list[dict]:
    """The explanation with the optimisation loop compiled by XLA (``xla``), with only the mask and
    composite of each step compiled by XLA (``xla_masks``: the convolutions stay oneDNN's), with only
    the inpainter's forward pass compiled by XLA (``xla_infill``, what ``tfsal evaluate`` uses), and
    with both models in mixed bfloat16 precision, against the default, at the same batch sizes."""
    classifier, inpainter, options = models_for(size)
    variants = {"default": (classifier, inpainter, None), "xla": (classifier, inpainter, "optimise"),
                "xla_masks": (classifier, inpainter, "masks"),
                "xla_infill": (classifier, Infiller(inpainter, jit_compile=True), None),
                "mixed_bfloat16": (_bfloat16_copy(classifier), _bfloat16_copy(inpainter), None)}
    rows = []
    for batch in batches:
        images = images_for(size, batch)
        reference = None
        for name, (model, fill_model, xla) in variants.items():
            explainer = CounterfactualExplainer(model, inpainter=fill_model, steps=steps, batch_size=batch,
                                                jit_compile=xla == "optimise", **options)
            if xla == "masks":  # the optimiser calls its public masks(); compiled alone here
                explainer.optimiser.masks = tf.function(explainer.optimiser.masks, jit_compile=True)
            try:
                seconds, explanations = timed_explain(explainer, images)
            except Exception as exc:  # a variant the platform cannot run is reported, not fatal
                rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "variant": name,
                             "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
                log(rows[-1])
                continue
            masks = np.stack([e.mask for e in explanations])
            reference = masks if reference is None else reference
            rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "variant": name,
                         "seconds_per_image": seconds / batch,
                         "mask_agreement": float(np.mean(masks == reference))})
            log(rows[-1])
    return rows
