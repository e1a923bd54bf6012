"""Training the amortised explainer's mask network (``tfsal train explainer``).

The mask network (``network``: a head on the classifier's frozen feature maps,
:func:`tfsal.explain.amortised.build_feature_mask_network`, or a small network on the image,
:func:`tfsal.explain.amortised.build_mask_network`) learns, from every image of a manifest's
``train`` split, to propose the region the counterfactual optimiser finds, in two
phases:

1. **Distillation** (``epochs``): the optimiser with its defaults is the teacher
   (:mod:`tfsal.train.teacher`: its grown, flipping region on each image the classifier calls
   positive, the empty region elsewhere); the network's keep probability sigmoid(theta) of each
   organ cell is fitted to the share of the cell the teacher keeps (binary cross-entropy, deleted
   cells weighted by ``delete_weight``, as they are a few per cent of the breast).
2. **The optimiser's own objective** (``objective_epochs``, none by default), from the distilled
   network: :meth:`tfsal.explain.mask.MaskOptimiser.loss` (the classifier's score on the composite
   with the precomputed in-fill, straight-through, total variation and area). Trained from
   scratch on this objective alone, the network falls into keeping every cell (the area term's
   gradient is uniform and the flip is out of reach of a keep-everything start); the optimiser
   escapes that trap with its gradient start, the network with the teacher's.

Adam; after each epoch, on the ``val`` split: the objective's loss, the share of its
classifier-positive images whose binary mask's composite flips the decision, and the mean mask
area; the epoch with the lowest validation objective is kept, and a phase stops after
``patience`` epochs without a better one.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import load_split
from tfsal.errors import TfsalError
from tfsal.evaluation.metrics import DECISION_THRESHOLD
from tfsal.explain.amortised import build_feature_mask_network, build_mask_network, feature_layers, levels
from tfsal.explain.classifier_adapter import ClassifierAdapter
from tfsal.explain.infill import as_infiller
from tfsal.explain.mask import MaskOptimiser, MaskSettings
from tfsal.explain.scoring import EPS, log_odds
from tfsal.models.inpainter import composite
from tfsal.models.loading import model_fingerprint
from tfsal.train import common
from tfsal.train.teacher import keep_targets

__all__ = ["ExplainerSettings", "train_explainer"]

log = logging.getLogger(__name__)

DISTIL, OBJECTIVE = "distil", "objective"
NETWORKS = ("auto", "features", "image")
"""``features``: a head on the classifier's frozen feature maps; ``image``: a small network on the
image; ``auto``: features where the classifier has a feature map at the mask cell's stride."""


@dataclass(frozen=True)
class ExplainerSettings:
    """Everything that decides what a mask network training run computes (the objective's weights
    and hinge are the counterfactual explainer's defaults)."""

    network: str = "auto"  # features, image, or auto: features where the classifier has them
    filters: tuple[int, ...] | None = None  # the image network's widths; None: its default for the size
    epochs: int = 20  # distillation
    objective_epochs: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    objective_lr: float = 1e-4
    delete_weight: float = 20.0
    teacher_steps: int = 100
    l1: float = 1.0
    l2: float = 30.0
    l3: float = 30.0
    score_floor: float = 0.4
    target: int = 1
    patience: int = 5
    classifier: str | None = None  # a .keras path; None: the shipped classifier
    inpainter: str | None = None  # a .keras path; None: the shipped inpainter
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "patience", "teacher_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if min(self.epochs, self.objective_epochs) < 0 or self.epochs + self.objective_epochs == 0:
            raise ValueError(f"need epochs, objective_epochs >= 0, not both 0. Received: {self.epochs}, "
                             f"{self.objective_epochs}")
        if not (self.lr > 0 and self.objective_lr > 0 and self.delete_weight > 0 and
                min(self.l1, self.l2, self.l3) >= 0 and 0 <= self.score_floor < 1):
            raise ValueError(f"need positive learning rates and delete_weight, non-negative lambdas and "
                             f"0 <= score_floor < 1. Received: lr={self.lr}, objective_lr={self.objective_lr}, "
                             f"delete_weight={self.delete_weight}, lambdas={(self.l1, self.l2, self.l3)}, "
                             f"score_floor={self.score_floor}")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}. Received: network={self.network!r}")
        if self.filters is not None and (not self.filters or min(self.filters) < 1):
            raise ValueError(f"filters must be positive widths. Received: filters={self.filters}")


def _models(settings: ExplainerSettings, classifier=None, inpainter=None):
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter, load_inpainter

    if classifier is None:
        classifier = load_classifier(settings.classifier) if settings.classifier else load_default_classifier()
    if inpainter is None:
        inpainter = load_inpainter(settings.inpainter) if settings.inpainter else load_default_inpainter()
    return classifier, inpainter


def _network(settings: ExplainerSettings, classifier, size) -> tuple[str, keras.Model]:
    """``(kind, the untrained mask network)`` of ``settings.network``, ``auto`` resolved."""
    kind = settings.network
    if kind == "auto":
        try:
            feature_layers(classifier, 2 ** levels(size[0]))
            kind = "features"
        except ValueError:
            kind = "image"
    if kind == "features":
        try:
            return kind, build_feature_mask_network(classifier)
        except ValueError as exc:
            raise TfsalError(f"{exc}; pass --network image") from None
    log.info("the mask network works on the image (the classifier has no feature map at the cell's stride)")
    return kind, build_mask_network(size, settings.filters)


def _prepared(records, optimiser: MaskOptimiser, size, target: int, batch_size: int, name: str,
              progress: bool) -> dict:
    """The records at ``size`` with what every epoch needs: organ masks, the precomputed in-fill and
    the classifier's p(target | image)."""
    from tqdm import tqdm

    log.info("reading the %d %s images", len(records), name)
    data = load_split(records, size)
    fills, scores = [], []
    for start in tqdm(range(0, len(data["image"]), batch_size), desc=f"in-fill ({name})", unit="batch",
                      disable=not progress, leave=False):
        images = tf.constant(data["image"][start:start + batch_size])
        organ = tf.constant(data["organ"][start:start + batch_size])
        fills.append(optimiser.precomputed_fill(images, organ).numpy())
        targets = tf.fill([len(images)], target)
        scores.append(optimiser.classifier.target_probability(optimiser.classifier.probabilities(images),
                                                               targets).numpy())
    return {"image": data["image"], "organ": data["organ"], "fill": np.concatenate(fills),
            "score": np.concatenate(scores).astype(np.float32)}


def _dataset(prepared: dict, batch_size: int, seed: int | None) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(prepared)
    if seed is not None:
        ds = ds.shuffle(len(prepared["score"]), seed=seed)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _Objective:
    """The optimiser's loss of a network's logits, and the validation measures."""

    def __init__(self, optimiser: MaskOptimiser, size, cell: int, target: int):
        self.optimiser, self.size, self.cell, self.target = optimiser, tuple(size), cell, target

    def losses(self, theta, batch):
        organ_grid = self.optimiser.organ_grid(batch["organ"], self.size)
        targets = tf.fill(tf.shape(batch["score"]), self.target)
        original = log_odds(tf.clip_by_value(batch["score"], EPS, 1.0 - EPS))
        return self.optimiser.loss(theta, batch["image"], batch["fill"], batch["organ"], organ_grid, targets,
                                   original, self.cell)

    def distillation(self, theta, batch, delete_weight: float):
        """Binary cross-entropy of sigmoid(theta) against the teacher's keep share of each organ cell
        (``batch["keep"]``), deleted cells weighted ``delete_weight``, averaged per image ``[B]``."""
        inside = tf.cast(self.optimiser.organ_grid(batch["organ"], self.size) > 0.5, tf.float32)
        keep = batch["keep"]
        weight = inside * (keep + delete_weight * (1.0 - keep))
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=keep, logits=theta)
        return tf.reduce_sum(loss * weight, axis=[1, 2, 3]) / (tf.reduce_sum(weight, axis=[1, 2, 3]) + EPS)

    def measures(self, theta, batch):
        """``(flipped [B], area share [B])`` of the binary masks with the precomputed in-fill."""
        organ_grid = self.optimiser.organ_grid(batch["organ"], self.size)
        _, keep = self.optimiser.masks(theta, batch["organ"], organ_grid, self.cell)
        keep = tf.cast(keep >= self.optimiser.settings.threshold, tf.float32)
        counterfactual = composite(batch["image"], keep, batch["fill"])
        targets = tf.fill(tf.shape(batch["score"]), self.target)
        after = self.optimiser.classifier.target_probability(self.optimiser.classifier.probabilities(counterfactual),
                                                             targets)
        area = tf.reduce_sum((1.0 - keep) * batch["organ"], axis=[1, 2, 3]) / (
            tf.reduce_sum(batch["organ"], axis=[1, 2, 3]) + EPS)
        return after < DECISION_THRESHOLD, area


def train_explainer(data: str | os.PathLike, out: str | os.PathLike, settings: ExplainerSettings | None = None,
                    checkpoint_dir: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
                    report=None, classifier=None, inpainter=None) -> dict:
    """Train a mask network for the classifier and inpainter of ``settings`` on ``data``.

    Args:
        data: ``labels.csv`` or its folder, with images in ``train`` and ``val``.
        out: where the best network is written (``.keras``).
        settings: what to train; defaults to :class:`ExplainerSettings`.
        checkpoint_dir: folder for checkpoints and the teacher's regions; default ``<out>.ckpt``.
        resume: go on from the checkpoint folder's last finished epoch (and teacher chunk).
        progress: progress bars on stderr.
        report: called with each epoch's history entry when the epoch ends.
        classifier, inpainter: Keras models in memory instead of the files of ``settings`` (a
            resumed run must be given the same ones).

    Returns:
        A summary: the best validation objective, flip share and area, epochs run, seconds, the output.

    Raises:
        TfsalError: a split without images, models that cannot be loaded, or a checkpoint folder
            that holds another run (or none when resuming).
    """
    from tfsal.explain.counterfactual import CounterfactualExplainer

    settings = settings or ExplainerSettings()
    data, out = Path(data), Path(out)
    folder = common.checkpoint_folder(out, checkpoint_dir)
    train, val = read_manifest(data, split="train"), read_manifest(data, split="val")
    if not train or not val:
        raise TfsalError(f"{data}: the mask network trains on the 'train' split and is chosen on 'val'; "
                         f"found {len(train)} and {len(val)} images")
    classifier, inpainter = _models(settings, classifier, inpainter)
    size = tuple(int(v) for v in classifier.input_shape[1:3])
    kind, network = _network(settings, classifier, size)
    stored = {**asdict(settings), "network": kind, "filters": settings.filters and list(settings.filters),
              "size": list(size), "data": str(data.resolve()),
              "models": {"classifier": model_fingerprint(classifier), "inpainter": model_fingerprint(inpainter)}}
    state = common.open_run(folder, stored, resume)
    keras.utils.set_random_seed(settings.seed)
    started = time.time()
    cell = math.ceil(size[0] / int(network(tf.zeros((1, *size, 1))).shape[1]))
    adapter = ClassifierAdapter(classifier)
    optimiser = MaskOptimiser(adapter, as_infiller(inpainter), MaskSettings(
        lambdas=(settings.l1, settings.l2, settings.l3), score_floor=settings.score_floor, cell=cell))
    adapter.resolve(tf.zeros((1, *size, 1)))
    prepared = {name: _prepared(records, optimiser, size, settings.target, settings.batch_size, name, progress)
                for name, records in (("train", train), ("val", val))}
    if settings.epochs:
        teacher = CounterfactualExplainer(classifier, inpainter=inpainter, steps=settings.teacher_steps,
                                          batch_size=settings.batch_size)
        for name, part in prepared.items():
            part["keep"] = keep_targets(teacher, part, cell, settings.target, folder, name, progress)
    _phases(network, _Objective(optimiser, size, cell, settings.target), prepared, settings, state, folder,
            progress, report)
    common.finish_run(state, folder, common.checkpoint(state, folder, "best"), out)
    best = state.history[state.best_epoch]
    return common.summary(out, {"best_val_loss": best["val_loss"], "best_val_flipped": best["val_flipped"],
                                "best_val_area": best["val_area"], "network": kind}, state, started,
                          tf.distribute.get_strategy())


def _phases(network, objective, prepared, settings: ExplainerSettings, state, folder: Path, progress, report):
    """Distillation, then the objective, each from where a resumed run stopped (or skipped when it is past it)."""
    phases = [(DISTIL, settings.epochs, settings.lr), (OBJECTIVE, settings.objective_epochs, settings.objective_lr)]
    for index, (phase, epochs, lr) in enumerate(phases):
        if epochs == 0 or state.phase in [p for p, _, _ in phases[index + 1:]]:
            continue  # nothing to do here, or a resumed run is already past this phase
        optimizer = keras.optimizers.Adam(lr)
        if state.phase == phase:
            common.restore_checkpoint(folder, network, optimizer, state)
        elif state.phase:  # the previous phase ended: start this one from its last weights
            common.restore_weights(folder, network, state)
            state.bad_epochs = 0
        first = state.epoch + 1 if state.phase == phase else 0
        state.phase, state.epoch = phase, first - 1
        _epochs(network, optimizer, objective, prepared, settings, phase, epochs, state, folder, progress, report)


def _epochs(network, optimizer, objective: _Objective, prepared: dict, settings: ExplainerSettings, phase: str,
            epochs: int, state: common.RunState, folder: Path, progress: bool, report) -> None:
    from tqdm import tqdm

    def train_loss(theta, batch):
        if phase == DISTIL:
            return objective.distillation(theta, batch, settings.delete_weight)
        return objective.losses(theta, batch)

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(train_loss(network(batch["image"], training=True), batch))
        variables = network.trainable_variables
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    @tf.function(reduce_retracing=True)
    def check(batch):
        theta = network(batch["image"], training=False)
        flipped, area = objective.measures(theta, batch)
        return objective.losses(theta, batch), flipped, area

    batches = math.ceil(len(prepared["train"]["score"]) / settings.batch_size)
    for epoch in range(state.epoch + 1, epochs):
        if state.bad_epochs >= settings.patience:
            break
        tick, losses = time.time(), []
        bar = tqdm(total=batches, desc=f"{phase} {epoch + 1}/{epochs}", unit="batch", disable=not progress,
                   leave=False)
        seed = common.epoch_seed(settings.seed, 1 + [DISTIL, OBJECTIVE].index(phase), epoch)
        for batch in _dataset(prepared["train"], settings.batch_size, seed):
            losses.append(float(step(batch)))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        bar.close()
        val = [check(batch) for batch in _dataset(prepared["val"], settings.batch_size, None)]
        val_loss = float(np.mean(np.concatenate([v[0].numpy() for v in val])))
        if -val_loss > state.best_score:
            state.best_score, state.best_epoch, state.bad_epochs = -val_loss, len(state.history), 0
            common.save_model(network, common.stage(state, folder, "best"))
        else:
            state.bad_epochs += 1
        entry = {"phase": phase, "epoch": epoch, "loss": round(float(np.mean(losses)), 5),
                 "val_loss": round(val_loss, 5), **_measures(prepared["val"]["score"], val),
                 "batches": batches, "seconds": round(time.time() - tick, 1)}
        common.end_epoch(log, state, folder, entry, report,
                         lambda: common.save_checkpoint(folder, network, optimizer, state))


def _measures(scores: np.ndarray, val: list) -> dict:
    """The flip share and mean area over the validation positives, and the mean area over the rest."""
    positive = scores >= DECISION_THRESHOLD
    flipped = np.concatenate([v[1].numpy() for v in val])
    area = np.concatenate([v[2].numpy() for v in val])
    return {"val_flipped": round(float(flipped[positive].mean()), 4) if positive.any() else None,
            "val_area": round(float(area[positive].mean() if positive.any() else area.mean()), 5),
            "val_area_healthy": round(float(area[~positive].mean()), 5) if (~positive).any() else None}
