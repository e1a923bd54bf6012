"""What every training command shares: strategies, checkpoints and resuming, progress, caches.

A run keeps its state in a checkpoint folder (never inside the package): ``state.json`` (the
settings, the phase, the last finished epoch, the best score, the history, and the checkpoint
files of that epoch) and, after every epoch, ``last-NNNN.keras`` (the model with its optimizer
state; the inpainter's optimizer in ``optimizer-NNNN.npz``), plus ``best-NNNN.keras``, NNNN the
number of epochs finished. A checkpoint is one unit: an epoch's files are written under new
names, then ``state.json`` (atomically) names them, and only then are the files it no longer
names removed; a run killed at any point resumes from one consistent epoch. ``--resume``
reloads what ``state.json`` names and goes on with the next epoch. Each epoch draws its shuffling and augmentation
from ``(seed, phase, epoch)``, so a resumed run sees the data an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsal.data import pipelines
from tfsal.errors import TfsalError
from tfsal.util import atomic

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "one-device", "mirrored")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name.

    ``auto``: mirrored across the GPUs when there are several, else one device (the GPU if
    there is one, else the CPU). ``one-device``: one device. ``mirrored``: all visible GPUs (or
    the CPU alone when there is none).
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def epoch_seed(seed: int, phase: int, epoch: int) -> int:
    """The data seed of one epoch: a run resumed at ``epoch`` draws what it would have drawn."""
    return (seed * 1_000_003 + phase * 10_007 + epoch) % (2**31 - 1)


def cache_path(cache_dir: str | os.PathLike | None, records, size) -> str | bool:
    """A tf.data cache file for these records at this size, or ``True`` (memory) without a folder.

    Stale lock files of an interrupted run are removed: the cache is only trusted once an
    iteration over it has finished, which tf.data marks by writing the index file.
    """
    if cache_dir is None:
        return True
    key = hashlib.sha256(repr((sorted(str(r.image) for r in records), tuple(size))).encode()).hexdigest()[:16]
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{key}*.lockfile"):
        stale.unlink()
    if not (folder / f"{key}.index").exists():
        for partial in folder.glob(f"{key}.data-*"):
            partial.unlink()
    return str(folder / key)


def fill_cache(dataset: tf.data.Dataset, cache: str | bool) -> None:
    """Read a file-cached dataset once to the end, so that later readers find a finished cache.

    Several pipelines read one cache (the patch stream reads it in two branches that never
    finish); tf.data keeps a file cache only when one iteration has read it completely.
    """
    if isinstance(cache, str) and not Path(cache + ".index").exists():
        for _ in dataset:
            pass


@dataclass
class RunState:
    """The resumable state of a training run (``state.json``)."""

    settings: dict
    phase: str = ""
    epoch: int = -1  # last finished epoch of ``phase``
    best_score: float = float("-inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    done: bool = False
    files: dict = field(default_factory=dict)  # kind ("last", "best", "optimizer") -> file name
    staged: dict = field(default_factory=dict)  # written this epoch, named once the epoch ends (not saved)

    @classmethod
    def load(cls, folder: Path) -> RunState:
        path = folder / "state.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TfsalError(f"{path}: cannot resume ({exc})") from None
        return cls(**data)

    def save(self, folder: Path) -> None:
        saved = {k: v for k, v in self.__dict__.items() if k != "staged"}
        atomic.write_text(folder / "state.json", json.dumps(saved, indent=1, default=float) + "\n")


CHECKPOINT_NAMES = {"last": "last.keras", "best": "best.keras", "optimizer": "optimizer.npz"}
"""Each kind of checkpoint file, as named before generations (and the pattern of its generations)."""


def checkpoint(state: RunState, folder: Path, kind: str) -> Path:
    """The ``kind`` file of the epoch ``state`` records (a run made before generations: the plain name)."""
    return folder / state.files.get(kind, CHECKPOINT_NAMES[kind])


def stage(state: RunState, folder: Path, kind: str) -> Path:
    """A new path for this epoch's ``kind`` file: it becomes the state's when the epoch ends
    (:func:`end_epoch`); until then the state names the previous one."""
    stem, suffix = CHECKPOINT_NAMES[kind].split(".")
    name = f"{stem}-{len(state.history) + 1:04d}.{suffix}"
    state.staged[kind] = name
    return folder / name


def commit(state: RunState, folder: Path) -> None:
    """Name the staged files in ``state.json`` (one atomic write), then remove the files of
    earlier epochs that it no longer names."""
    state.files.update(state.staged)
    state.staged.clear()
    state.save(folder)
    kept = set(state.files.values())
    for name in CHECKPOINT_NAMES.values():
        stem, suffix = name.split(".")
        for old in folder.glob(f"{stem}-*.{suffix}"):
            if old.name not in kept:
                old.unlink(missing_ok=True)


# Settings a resumed run may change: they decide when to stop or where to run, not what the
# epochs already run computed.
RESUMABLE_CHANGES = ("epochs", "finetune_epochs", "objective_epochs", "patience", "strategy")


# Settings added after runs were first stored, with the value a run that did not record one ran with.
ADDED_SETTINGS = {"gamma": [1.0, 1.0], "network": "image", "pooling": "avg", "location_weight": 0.0,
                  "film_tone": 0.0, "backbone": "mobilenet", "alpha": 0.25}


def stored_setting(stored: dict, name: str):
    """A stored run's setting ``name``; for a run stored before it existed, the value it ran with."""
    return stored.get(name, ADDED_SETTINGS.get(name))


def check_resumable(state: RunState, settings: dict, folder: Path) -> None:
    """Refuse to resume a run whose settings differ (other data, size, model...)."""
    changed = {k: (stored_setting(state.settings, k), v) for k, v in settings.items()
               if stored_setting(state.settings, k) != v and k not in RESUMABLE_CHANGES}
    if changed:
        described = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items()))
        raise TfsalError(f"{folder}: cannot resume with other settings ({described}); start a new run without --resume")
    state.settings.update({k: settings[k] for k in RESUMABLE_CHANGES if k in settings})


def open_run(folder: Path, settings: dict, resume: bool) -> RunState:
    """The state of a new run in ``folder``, or of the run to resume there.

    Raises:
        TfsalError: resuming without a run there, resuming with other settings, or starting
            a new run in a folder that holds one.
    """
    if resume:
        state = RunState.load(folder)
        check_resumable(state, settings, folder)
        return state
    if (folder / "state.json").exists():
        raise TfsalError(f"{folder}: holds an earlier run; pass --resume to go on with it or remove the folder")
    folder.mkdir(parents=True, exist_ok=True)
    return RunState(settings=settings)


def checkpoint_folder(out: Path, checkpoint_dir: str | os.PathLike | None) -> Path:
    """The checkpoint folder of a run that writes ``out``: ``checkpoint_dir``, else ``<out>.ckpt`` beside it."""
    return Path(checkpoint_dir) if checkpoint_dir else out.with_name(out.name + ".ckpt")


def stored_settings(settings, lists: tuple[str, ...] = ()) -> dict:
    """A settings dataclass as JSON keeps it: ``size`` and the fields named in ``lists`` as lists."""
    return {**asdict(settings), **{name: list(getattr(settings, name)) for name in ("size", *lists)}}


def run_settings(settings, data: Path, lists: tuple[str, ...] = ()) -> dict:
    """The settings a run stores in ``state.json``: :func:`stored_settings` and the manifest's absolute
    path as ``data``."""
    return {**stored_settings(settings, lists), "data": str(data.resolve())}


def start_run(folder: Path, settings, stored: dict, resume: bool, train) -> tuple:
    """Open (or resume) the run in ``folder``, seed Keras, pick the strategy and fill the data cache.

    Args:
        folder: the checkpoint folder.
        settings: the run's settings (its ``seed``, ``strategy`` and ``size`` are used here).
        stored: the settings as :func:`run_settings` gives them, checked against a resumed run's.
        resume: go on with the run in ``folder``.
        train: the training records, cached in ``folder / "cache"`` at ``settings.size``.

    Returns:
        ``(state, strategy, cache)``.

    Raises:
        TfsalError: as :func:`open_run`.
    """
    state = open_run(folder, stored, resume)
    keras.utils.set_random_seed(settings.seed)
    strategy = make_strategy(settings.strategy)
    cache = cache_path(folder / "cache", train, settings.size)
    fill_cache(pipelines.load_examples(train, settings.size, cache), cache)
    return state, strategy, cache


def fit_epoch(model: keras.Model, dataset: tf.data.Dataset, description: str, progress: bool,
              **fit_kwargs) -> tuple[dict, int]:
    """One epoch of ``model.fit`` with a progress bar: the epoch's logs (floats) and its number of batches."""
    callback = TqdmProgress(description, steps_of(dataset), progress)
    with warnings.catch_warnings():
        # Datasets of unknown length (the patch stream) end an epoch by running out of data.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[callback], **fit_kwargs)
    return {k: float(v[-1]) for k, v in history.history.items()}, callback.batches


def end_epoch(logger: logging.Logger, state: RunState, folder: Path, entry: dict, report,
              save_last: Callable[[], None]) -> None:
    """After an epoch: log ``entry`` and pass it to ``report`` (if any), save the last checkpoint
    (``save_last()``, which writes to :func:`stage` paths), then add the entry to the history, make
    its phase and epoch the state's and :func:`commit` the epoch's files with ``state.json``."""
    logger.info("%s", entry)
    if report:
        report(entry)
    save_last()
    state.history.append(entry)
    state.phase, state.epoch = entry["phase"], entry["epoch"]
    commit(state, folder)


def save_checkpoint(folder: Path, model: keras.Model, optimizer, state: RunState) -> None:
    """``model`` and ``optimizer``'s variables, each written atomically under the epoch's new names
    (:func:`stage`): a trainer's ``save_last`` for :func:`end_epoch`."""
    save_model(model, stage(state, folder, "last"))
    with atomic.atomic_path(stage(state, folder, "optimizer")) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, *[v.numpy() for v in optimizer.variables])


def restore_weights(folder: Path, model: keras.Model, state: RunState) -> None:
    """``model``'s weights from the last checkpoint ``state`` names."""
    model.set_weights(keras.saving.load_model(checkpoint(state, folder, "last"), compile=False).get_weights())


def restore_checkpoint(folder: Path, model: keras.Model, optimizer, state: RunState) -> None:
    """``model``'s weights and ``optimizer``'s variables from the last checkpoint.

    Raises:
        TfsalError: the optimizer checkpoint does not fit this model.
    """
    restore_weights(folder, model, state)
    optimizer.build(model.trainable_variables)
    with np.load(checkpoint(state, folder, "optimizer")) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise TfsalError(f"{folder}: the optimizer checkpoint does not fit this model; start a new run")
    for variable, value in zip(optimizer.variables, values, strict=True):
        variable.assign(value)


def finish_run(state: RunState, folder: Path, best: Path, out: Path) -> None:
    """Mark the run done and write the model of ``best`` to ``out`` without its optimizer state."""
    state.done = True
    state.save(folder)
    save_model(keras.saving.load_model(best, compile=False), out)


def summary(out: Path, best: dict, state: RunState, started: float, strategy: tf.distribute.Strategy) -> dict:
    """What a training function returns: the output, the ``best`` scores, the best epoch, epochs run, seconds."""
    return {"out": str(out), **best, "best_epoch": state.best_epoch, "epochs_run": len(state.history),
            "seconds": round(time.time() - started, 1), "strategy": type(strategy).__name__}


def save_model(model: keras.Model, path: Path) -> None:
    """Save a model atomically (temporary ``.keras`` file, then rename)."""
    with atomic.atomic_path(path) as tmp:
        model.save(tmp)


class TqdmProgress(keras.callbacks.Callback):
    """A tqdm progress bar per epoch on stderr, with the running loss."""

    def __init__(self, description: str, steps: int | None, enabled: bool = True):
        super().__init__()
        self.description, self.steps, self.enabled = description, steps, enabled
        self.bar = None

    batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm import tqdm

        self.batches = 0
        self.bar = tqdm(total=self.steps, desc=self.description, unit="batch", disable=not self.enabled, leave=False)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()


def steps_of(dataset: tf.data.Dataset) -> int | None:
    """Number of batches when tf.data knows it, else None."""
    n = int(dataset.cardinality())
    return n if n >= 0 else None
