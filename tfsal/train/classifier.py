"""Training the mass classifier: patch pre-training, then whole images (``tfsal train classifier``).

The paper's recipe ("Image Classifier"): MobileNet, Adam, rotation, zoom and flips, early
stopping, pre-training on background-vs-mass patches; optionally a random gamma of whole images
(``gamma``, for acquisitions that differ in tone). Departures, for a 2-core CPU and no
ImageNet weights: a narrower MobileNet (alpha 0.25), learning rates of 1e-3 / 5e-4 instead
of 1e-5 (250 epochs at 1e-5 do not fit here), batches of 16 with class weighting
``n / (2 n_class)``, and early stopping on the validation ROC AUC computed in inference mode
after every epoch, keeping the best epoch's weights; the learning rate halves after half the
patience without a better validation AUC.

Location supervision (``location_weight`` w > 0, not in the paper): in the whole-image phase a 1x1
convolution on the last features gives each grid cell c a lesion logit g_c, and the loss becomes

    L = BCE(y, p) + w * sum_c a_c BCE(t_c, sigmoid(g_c)) / n_cells

with t_c the lesion's share of cell c (:mod:`tfsal.data.lesion_grid`) and a_c its balanced cell
weight (both terms times the image's class weight). The head only trains: the classifier written
out is the plain :func:`~tfsal.models.classifier.build_classifier` model.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tfsal.data import pipelines
from tfsal.data.manifest import read_manifest
from tfsal.errors import TfsalError
from tfsal.evaluation.metrics import roc_auc
from tfsal.models.classifier import (
    BACKBONES,
    DEFAULT_ALPHA,
    DEFAULT_SIZE,
    OUTPUT_LAYER,
    POOLINGS,
    build_classifier,
    last_features,
)
from tfsal.train import common
from tfsal.util.checks import check_range

log = logging.getLogger(__name__)

PRETRAIN, IMAGES = "pretrain", "images"
MIN_PATCH = 32


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything that decides what a training run computes (stored with its checkpoints)."""

    size: tuple[int, int] = DEFAULT_SIZE
    alpha: float = DEFAULT_ALPHA
    pooling: str = "avg"  # global pool of the last features: "avg" or "max"
    backbone: str = "mobilenet"  # the network under the head: "mobilenet" or "mobilenet_v3_small"
    dropout: float = 0.2
    pretrain_epochs: int = 3
    patches_per_image: int = 16
    patch_size: int | None = None
    epochs: int = 60
    batch_size: int = 16
    pretrain_lr: float = 1e-3
    lr: float = 5e-4
    patience: int = 10
    augment: bool = True
    gamma: tuple[float, float] = (1.0, 1.0)  # random tone curve of whole images (with augment)
    film_tone: float = 0.0  # share of whole images given a scanned film's tone (with augment)
    init: str | None = None  # start from this classifier's weights (no pre-training)
    infill_inpainter: str | None = None  # in-fill augmentation with this inpainter
    infill_probability: float = 0.5
    location_weight: float = 0.0  # weight of the lesion-grid loss (0: the whole-image label alone)
    seed: int = 0
    strategy: str = "auto"

    def __post_init__(self):
        for name in ("pretrain_epochs", "epochs", "patience"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={getattr(self, name)}")
        for name in ("batch_size", "patches_per_image"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}")
        if self.epochs == 0 and self.pretrain_epochs == 0:
            raise ValueError("nothing to train: epochs and pretrain_epochs are both 0")
        if self.patch_size is not None and not MIN_PATCH <= self.patch_size <= min(self.size):
            raise ValueError(f"patch_size must be in [{MIN_PATCH}, {min(self.size)}] (the working size's shorter "
                             f"side). Received: patch_size={self.patch_size}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={self.pooling!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive. Received: alpha={self.alpha}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}. Received: backbone={self.backbone!r}")
        check_range("gamma", self.gamma)
        if not self.location_weight >= 0:
            raise ValueError(f"location_weight must be >= 0. Received: location_weight={self.location_weight}")
        if self.location_weight and self.epochs == 0:
            raise ValueError("location_weight supervises the whole-image phase; it needs epochs > 0")
        if not self.augment and tuple(self.gamma) != (1.0, 1.0):
            raise ValueError("gamma is an augmentation: it needs augment=True (drop --no-augment or --gamma)")
        if not 0 <= self.film_tone <= 1:
            raise ValueError(f"film_tone must be a share in [0, 1]. Received: film_tone={self.film_tone}")
        if not self.augment and self.film_tone:
            raise ValueError("film_tone is an augmentation: it needs augment=True (drop --no-augment or --film-tone)")
        if self.init and self.epochs == 0:
            raise ValueError("init starts the whole-image phase from a classifier; it needs epochs > 0")


GRID_LAYER = "lesion_grid"
# a two-output model's logs, named as a one-output run's (and its grid loss apart)
_LOG_NAMES = {f"{OUTPUT_LAYER}_accuracy": "accuracy", f"{OUTPUT_LAYER}_loss": "label_loss",
              f"{GRID_LAYER}_loss": "grid_loss"}


def _compiled(model: keras.Model, lr: float, location_weight: float = 0.0) -> keras.Model:
    accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    if not location_weight:
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=[accuracy])
        return model
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=["binary_crossentropy", keras.losses.BinaryCrossentropy(from_logits=True)],
                  loss_weights=[1.0, float(location_weight)], metrics=[[accuracy], []])
    return model


def with_location_head(model: keras.Model) -> keras.Model:
    """The training model of location-supervised training: ``model``'s mass probability and a lesion
    grid, the logits of a 1x1 convolution (``lesion_grid``) on the last features, one per cell.

    The head only trains: it pushes the shared features to mark where a lesion is; the classifier
    written out is a plain :func:`~tfsal.models.classifier.build_classifier` model given the shared weights.
    """
    grid = keras.layers.Conv2D(1, 1, name=GRID_LAYER)(last_features(model))
    return keras.Model(model.input, [model.output, grid], name=f"{model.name}_located")


def _class_weight(labels: np.ndarray) -> dict[int, float]:
    counts = np.bincount(labels.astype(int), minlength=2)
    if counts.min() == 0:
        raise TfsalError("the training split needs images of both classes (label 0 and label 1)")
    return {c: float(labels.size / (2 * counts[c])) for c in (0, 1)}


def train_classifier(
    data: str | os.PathLike,
    out: str | os.PathLike,
    settings: ClassifierSettings | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    report=None,
) -> dict:
    """Train a classifier on a manifest's ``train`` split, early-stopped on its ``val`` split.

    Args:
        data: ``labels.csv`` or its folder.
        out: where the best model is written (``.keras``, without optimizer state).
        settings: what to train; defaults to :class:`ClassifierSettings`.
        checkpoint_dir: folder for ``state.json``, the last and best checkpoints and the data
            cache; default ``<out>.ckpt``.
        resume: go on from the checkpoint folder's last finished epoch.
        progress: progress bars on stderr.
        report: called with each epoch's history entry (a dict) when the epoch ends.

    Returns:
        A summary: best validation AUC and epoch, epochs run, seconds, the output path.

    Raises:
        TfsalError: bad data (no ``val`` split, one class only), or a checkpoint folder that
            holds another run (or none when resuming).
    """
    settings = settings or ClassifierSettings()
    data, out = Path(data), Path(out)
    folder = common.checkpoint_folder(out, checkpoint_dir)
    train = read_manifest(data, split="train")
    val = read_manifest(data, split="val")
    if not val:
        raise TfsalError(f"{data}: the manifest has no 'val' split, which early stopping needs")
    if settings.location_weight and not any(r.label == 1 and r.mask is not None for r in train):
        raise TfsalError(f"{data}: location_weight needs lesion masks, and no lesion image of the training split "
                         "has one")
    stored = common.run_settings(settings, data, lists=("gamma",))
    state, strategy, cache = common.start_run(folder, settings, stored, resume, train)
    started = time.time()

    patch_weights = None
    if settings.init:  # fine-tuning: the given classifier replaces pre-training
        patch_weights = _init_weights(settings)
    elif settings.pretrain_epochs and state.phase in ("", PRETRAIN):
        patch_weights = _pretrain(settings, strategy, train, cache, state, folder, progress, report)
    if settings.epochs:
        _train_images(settings, strategy, train, val, cache, state, folder, progress, report, patch_weights)
        best_path = common.checkpoint(state, folder, "best")
    else:
        best_path = common.checkpoint(state, folder, "last")
    common.finish_run(state, folder, best_path, out)
    return common.summary(out, {"best_val_auc": state.best_score}, state, started, strategy)


def _build(settings: ClassifierSettings, size=None) -> keras.Model:
    return build_classifier(size or settings.size, settings.alpha, settings.dropout, settings.pooling,
                            settings.backbone)


def _init_weights(settings: ClassifierSettings) -> list:
    from tfsal.models.classifier import load_classifier

    source = load_classifier(settings.init)
    target = _build(settings)
    if [w.shape for w in source.get_weights()] != [w.shape for w in target.get_weights()]:
        raise TfsalError(f"{settings.init}: its weights do not fit a {settings.backbone} of alpha {settings.alpha}; "
                         "pass the backbone and alpha it was trained with")
    return source.get_weights()


def _infill(settings: ClassifierSettings):
    if not settings.infill_inpainter:
        return None
    from tfsal.models.inpainter import load_inpainter
    from tfsal.train.infill import InfillAugmentation

    return InfillAugmentation(load_inpainter(settings.infill_inpainter), settings.infill_probability)


def _learning_rate(model) -> float:
    # a MirroredVariable under MirroredStrategy: float() refuses it, convert_to_numpy does not
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _run_epoch(model, dataset, description, progress, class_weight=None) -> dict:
    logs, batches = common.fit_epoch(model, dataset, description, progress, class_weight=class_weight)
    return {**logs, "batches": batches}


def _pretrain(settings, strategy, train, cache, state, folder, progress, report):
    """Phase 1: background-vs-mass patches. Returns the final weights."""
    # MobileNet needs at least 32x32 inputs; tiny working sizes get 32-pixel patches.
    patch = settings.patch_size or max(MIN_PATCH, pipelines.default_patch_size(settings.size[0]))
    with strategy.scope():
        if state.phase == PRETRAIN:
            model = keras.saving.load_model(common.checkpoint(state, folder, "last"))
        else:
            model = _compiled(_build(settings, (patch, patch)), settings.pretrain_lr)
    for epoch in range(state.epoch + 1, settings.pretrain_epochs):
        tick = time.time()
        dataset = pipelines.patch_dataset(
            train, settings.size, patch, settings.patches_per_image, batch_size=2 * settings.batch_size,
            training=True, seed=common.epoch_seed(settings.seed, 1, epoch), cache=cache)
        logs = _run_epoch(model, dataset, f"{PRETRAIN} {epoch + 1}/{settings.pretrain_epochs}", progress)
        entry = {"phase": PRETRAIN, "epoch": epoch, **logs, "seconds": round(time.time() - tick, 1)}
        common.end_epoch(log, state, folder, entry, report,
                         lambda: common.save_model(model, common.stage(state, folder, "last")))
    return model.get_weights()


def _train_images(settings, strategy, train, val, cache, state, folder, progress, report, patch_weights):
    """Phase 2: whole images, early stopping on the validation AUC."""
    labels = np.array([r.label for r in train])
    class_weight = _class_weight(labels)
    located = bool(settings.location_weight)
    val_labels = np.array([r.label for r in val])
    val_data = pipelines.classification_dataset(val, settings.size, settings.batch_size, training=False)
    infill = _infill(settings)
    with strategy.scope():
        if state.phase == IMAGES:
            model = keras.saving.load_model(common.checkpoint(state, folder, "last"))
        else:
            model = _build(settings)
            if patch_weights is None and state.phase == PRETRAIN and not settings.init:  # resumed after pre-training
                patch_weights = keras.saving.load_model(common.checkpoint(state, folder, "last"),
                                                        compile=False).get_weights()
            if patch_weights is not None:
                model.set_weights(patch_weights)
            if located:
                model = with_location_head(model)
            _compiled(model, settings.lr, settings.location_weight)
            state.phase, state.epoch = IMAGES, -1
    grid = tuple(model.get_layer(GRID_LAYER).output.shape[1:3]) if located else None
    predict = keras.Model(model.input, model.get_layer(OUTPUT_LAYER).output) if located else model
    # the model written out: the plain classifier, given the shared weights at each best epoch
    plain = _build(settings) if located else model
    for epoch in range(state.epoch + 1, settings.epochs):
        if settings.patience and state.bad_epochs >= settings.patience:
            break
        tick = time.time()
        dataset = pipelines.classification_dataset(
            train, settings.size, settings.batch_size, training=True,
            augment=pipelines.Augmentation(gamma=tuple(settings.gamma), film_tone=settings.film_tone)
            if settings.augment else False,
            seed=common.epoch_seed(settings.seed, 2, epoch), cache=cache, infill=infill,
            grid=grid, class_weight=class_weight if located else None)
        logs = _run_epoch(model, dataset, f"{IMAGES} {epoch + 1}/{settings.epochs}", progress,
                          None if located else class_weight)
        logs = {_LOG_NAMES.get(k, k): v for k, v in logs.items()}
        scores = predict.predict(val_data, verbose=0)[:, 0]
        auc = roc_auc(val_labels, scores)
        improved = auc > state.best_score
        if improved:
            state.best_score, state.best_epoch, state.bad_epochs = auc, epoch, 0
            if located:
                plain.set_weights(predict.get_weights())
            common.save_model(plain, common.stage(state, folder, "best"))
        else:
            state.bad_epochs += 1
            if settings.patience >= 2 and state.bad_epochs % (settings.patience // 2) == 0:
                # halve the step after half the patience without a better validation AUC
                model.optimizer.learning_rate.assign(_learning_rate(model) / 2)
        entry = {"phase": IMAGES, "epoch": epoch, **logs, "val_auc": round(auc, 4),
                 "lr": _learning_rate(model),
                 "val_mean_score": round(float(scores.mean()), 4), "seconds": round(time.time() - tick, 1)}
        common.end_epoch(log, state, folder, entry, report,
                         lambda: common.save_model(model, common.stage(state, folder, "last")))
