"""Training the partial-convolution inpainter (``tfsal train inpainter``).

As in the paper ("Inpainting") and Liu et al. 2018: healthy training images only, random hole
masks (up to 400 holes of 8x8 px at 576x448, scaled to the working size, single and clustered;
:func:`tfsal.data.holes.random_hole_mask`), two phases: first with batch normalisation
everywhere, then with the encoder's batch normalisation frozen at a tenfold lower learning
rate. Loss: :class:`tfsal.models.inpainter_loss.InpaintingLoss` with the feature network taken
from the trained classifier's early blocks (no ImageNet weights are reachable here).

Departures for a 2-core CPU: learning rates 2e-4 / 2e-5 (Liu et al.) instead of the paper's
1e-5 / 1e-6 at batch size 1, batches of 4, and far fewer epochs. After every epoch the model
is scored on the validation split's healthy images with fixed holes: hole L1 (mean absolute
error over hole pixels) and PSNR of the composite; the epoch with the lowest hole L1 is kept.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsal.data import pipelines
from tfsal.data.manifest import read_manifest
from tfsal.errors import TfsalError
from tfsal.models.inpainter import build_inpainter, composite, freeze_encoder_batch_norm
from tfsal.models.inpainter_loss import DEFAULT_FEATURE_LAYERS, InpaintingLoss, classifier_feature_extractor
from tfsal.train import common

log = logging.getLogger(__name__)

WITH_BN, FROZEN_BN = "with-bn", "frozen-encoder-bn"
NO_FEATURES = "none"


@dataclass(frozen=True)
class InpainterSettings:
    """Everything that decides what an inpainter training run computes."""

    size: tuple[int, int] = (256, 192)
    base_filters: int = 16
    max_filters: int = 128
    epochs: int = 10
    finetune_epochs: int = 5
    batch_size: int = 4
    lr: float = 2e-4
    max_holes: int = 400
    blob_probability: float = 0.5  # share of masks with mass-sized blobs too (tfsal.data.holes)
    init: str | None = None  # start from this inpainter's weights
    feature_model: str = "default"  # the shipped classifier, a .keras path, or "none"
    # the default names the MobileNet's maps at strides 2, 4 and 8; another network's maps at those
    # strides stand in for them (classifier_feature_extractor)
    feature_layers: tuple[str, ...] = field(default=DEFAULT_FEATURE_LAYERS)
    seed: int = 0
    strategy: str = "auto"

    def __post_init__(self):
        for name in ("epochs", "finetune_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={getattr(self, name)}")
        for name in ("batch_size", "max_holes", "base_filters", "max_filters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if not 0 <= self.blob_probability <= 1:
            raise ValueError(f"blob_probability must be in [0, 1]. Received: blob_probability={self.blob_probability}")
        if self.epochs + self.finetune_epochs == 0:
            raise ValueError("nothing to train: epochs and finetune_epochs are both 0")


class _InpainterTrainer(keras.Model):
    """Wraps the U-Net for ``fit``: one step = prediction, Liu's loss, an optimizer update."""

    def __init__(self, inpainter: keras.Model, loss: InpaintingLoss):
        super().__init__(name="inpainter_trainer")
        self.inpainter, self.inpainting_loss = inpainter, loss
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "valid", "hole", "perceptual",
                                                                          "style", "tv")}

    def call(self, inputs, training=False):
        return self.inpainter(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        image, mask = data["image"], data["mask"]
        with tf.GradientTape() as tape:
            prediction = self.inpainter({"image": image, "mask": mask}, training=True)
            total, parts = self.inpainting_loss(image, mask, prediction)
            # gradients are summed over replicas, so each replica's loss is its share
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.inpainter.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.trackers["loss"].update_state(total)
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def _feature_extractor(settings: InpainterSettings):
    if settings.feature_model == NO_FEATURES:
        return None
    from tfsal.models.classifier import load_classifier, load_default_classifier

    model = load_default_classifier() if settings.feature_model == "default" else load_classifier(
        settings.feature_model)
    if tuple(model.input_shape[1:3]) != tuple(settings.size):
        raise TfsalError(f"the feature model's input is {model.input_shape[1]}x{model.input_shape[2]} but the "
                         f"inpainter trains at {settings.size[0]}x{settings.size[1]}; pass a feature model of "
                         "that size or --feature-model none")
    try:
        return classifier_feature_extractor(model, settings.feature_layers)
    except ValueError as exc:
        raise TfsalError(f"feature layers {list(settings.feature_layers)}: {exc}") from None


def validation_scores(inpainter: keras.Model, dataset: tf.data.Dataset) -> dict:
    """Hole L1 (mean absolute error over hole pixels) and PSNR (dB) of the composite."""
    abs_error = squared = holes = pixels = 0.0
    for image, mask in dataset:
        prediction = inpainter({"image": image, "mask": mask}, training=False)
        hole = 1.0 - mask.numpy()
        abs_error += float(np.sum(np.abs(prediction.numpy() - image.numpy()) * hole))
        holes += float(hole.sum())
        squared += float(np.sum((composite(image, mask, prediction).numpy() - image.numpy()) ** 2))
        pixels += float(np.prod(image.shape))
    mse = squared / max(pixels, 1.0)
    return {"hole_l1": abs_error / max(holes, 1.0), "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")}


def train_inpainter(
    data: str | os.PathLike,
    out: str | os.PathLike,
    settings: InpainterSettings | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    report=None,
) -> dict:
    """Train the inpainter on the healthy images of a manifest's ``train`` split.

    Args:
        data: ``labels.csv`` or its folder; needs healthy images in ``train`` and ``val``.
        out: where the best model is written (``.keras``).
        settings: what to train; defaults to :class:`InpainterSettings`.
        checkpoint_dir: folder for checkpoints and the data cache; default ``<out>.ckpt``.
        resume: go on from the checkpoint folder's last finished epoch.
        progress: progress bars on stderr.
        report: called with each epoch's history entry when the epoch ends.

    Returns:
        A summary: best validation hole L1 and PSNR, epochs run, seconds, the output path.

    Raises:
        TfsalError: no healthy images in a split, a feature model of another size, or a
            checkpoint folder that holds another run (or none when resuming).
    """
    settings = settings or InpainterSettings()
    data, out = Path(data), Path(out)
    folder = common.checkpoint_folder(out, checkpoint_dir)
    train = [r for r in read_manifest(data, split="train") if r.label == 0]
    val = [r for r in read_manifest(data, split="val") if r.label == 0]
    if not train or not val:
        raise TfsalError(f"{data}: the inpainter trains on healthy images (label 0) of 'train' and scores on "
                         f"those of 'val'; found {len(train)} and {len(val)}")
    stored = common.run_settings(settings, data, lists=("feature_layers",))
    state, strategy, _ = common.start_run(folder, settings, stored, resume, train)
    val_data = pipelines.inpainting_dataset(val, settings.size, settings.batch_size, training=False,
                                            seed=settings.seed, max_holes=settings.max_holes,
                                            blob_probability=settings.blob_probability)
    started = time.time()
    with strategy.scope():
        inpainter = build_inpainter(settings.size, settings.base_filters, settings.max_filters)
        trainer = _InpainterTrainer(inpainter, InpaintingLoss(_feature_extractor(settings)))
        if settings.init and not state.phase:
            _load_init_weights(inpainter, settings.init)
    _run_phases(trainer, strategy, train, val_data, settings, state, folder, progress, report)
    common.finish_run(state, folder, common.checkpoint(state, folder, "best"), out)
    return common.summary(out, {"best_val_hole_l1": -state.best_score}, state, started, strategy)


def _run_phases(trainer, strategy, train, val_data, settings, state, folder, progress, report) -> None:
    """Liu's two phases, each from where a resumed run stopped (or skipped when it is past it)."""
    phases = [(WITH_BN, settings.epochs, settings.lr), (FROZEN_BN, settings.finetune_epochs, settings.lr / 10)]
    for index, (phase, epochs, lr) in enumerate(phases):
        if epochs == 0 or state.phase in [p for p, _, _ in phases[index + 1:]]:
            continue  # nothing to do here, or a resumed run is already past this phase
        if phase == FROZEN_BN:
            freeze_encoder_batch_norm(trainer.inpainter)
        with strategy.scope():
            trainer.compile(optimizer=keras.optimizers.Adam(lr))
            if state.phase == phase:
                common.restore_checkpoint(folder, trainer.inpainter, trainer.optimizer, state)
            elif state.phase:  # the previous phase ended: start this one from its last weights
                common.restore_weights(folder, trainer.inpainter, state)
        first = state.epoch + 1 if state.phase == phase else 0
        state.phase, state.epoch = phase, first - 1
        for epoch in range(first, epochs):
            _run_epoch(trainer, train, val_data, settings, phase, index, epoch, epochs, state, folder, progress,
                       report)


def _load_init_weights(inpainter: keras.Model, path: str) -> None:
    from tfsal.models.inpainter import load_inpainter

    source = load_inpainter(path)
    try:
        inpainter.set_weights(source.get_weights())
    except ValueError:
        raise TfsalError(f"{path}: its weights do not fit this U-Net (other filters or size settings)") from None


def _run_epoch(trainer, train, val_data, settings, phase, phase_index, epoch, epochs, state, folder, progress, report):
    tick = time.time()
    dataset = pipelines.inpainting_dataset(
        train, settings.size, settings.batch_size, training=True, max_holes=settings.max_holes,
        blob_probability=settings.blob_probability,
        seed=common.epoch_seed(settings.seed, phase_index + 1, epoch), cache=common.cache_path(
            folder / "cache", train, settings.size))
    logs, batches = common.fit_epoch(trainer, dataset.map(lambda image, mask: {"image": image, "mask": mask}),
                                     f"{phase} {epoch + 1}/{epochs}", progress)
    scores = validation_scores(trainer.inpainter, val_data)
    if -scores["hole_l1"] > state.best_score:
        state.best_score, state.best_epoch = -scores["hole_l1"], len(state.history)
        common.save_model(trainer.inpainter, common.stage(state, folder, "best"))
    entry = {"phase": phase, "epoch": epoch, **logs,
             "val_hole_l1": round(scores["hole_l1"], 5), "val_psnr": round(scores["psnr"], 3),
             "batches": batches, "seconds": round(time.time() - tick, 1)}
    common.end_epoch(log, state, folder, entry, report,
                     lambda: common.save_checkpoint(folder, trainer.inpainter, trainer.optimizer, state))
