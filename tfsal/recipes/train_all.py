"""Train everything a data set needs, in order, resumably (``tfsal train all``).

The recipe behind the shipped models (``saved_models/README.md``), as one command:

1. ``classifier_base``: the classifier (the paper's MobileNet, or another ``backbone``), patch
   pre-training then whole images (:func:`tfsal.train.classifier.train_classifier`);
2. ``inpainter``: the partial-convolution inpainter on the healthy training images, its
   perceptual features taken from step 1's classifier (:func:`tfsal.train.inpainter.train_inpainter`);
3. ``classifier``: step 1's classifier fine-tuned with in-fill augmentation from step 2's
   inpainter, so that in-fill does not read as suspicious (the reason is in ``saved_models/README.md``);
4. ``check``: the paper's Fig. 2 inpainter check and the in-fill score shift
   (:func:`tfsal.evaluation.inpainter_check.write_check`);
5. ``evaluate``: ROC AUC with a bootstrap 95 % interval, sensitivity and specificity on the
   validation and test splits (:func:`tfsal.evaluation.classifier_metrics.write_classifier_report`);

then the model card (``README.md`` and ``card.json``, :mod:`tfsal.recipes.model_card`). With
``init_from_shipped`` step 1 is skipped: step 2 starts from the shipped inpainter (features from
the shipped classifier) and step 3 from the shipped classifier; for small data sets.

Every stage writes its output once done; ``train_all.json`` in the output folder records the
finished stages, so that a resumed run skips them and goes on inside the interrupted one from
its last finished epoch.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfsal.data.manifest import counts, fingerprint, read_manifest
from tfsal.errors import TfsalError
from tfsal.models.card import CARD_NAME
from tfsal.util import atomic
from tfsal.util.checks import check_int, check_range

log = logging.getLogger(__name__)

STATE_NAME = "train_all.json"
CHECKPOINTS = "checkpoints"
STAGES = ("classifier_base", "inpainter", "classifier", "check", "evaluate")


@dataclass(frozen=True)
class RecipeSettings:
    """What ``tfsal train all`` trains; the defaults are the shipped models' recipe."""

    size: tuple[int, int] = (256, 192)
    init_from_shipped: bool = False
    backbone: str = "mobilenet"  # the classifier's network (from scratch only; the shipped one is a MobileNet)
    alpha: float = 0.25  # its width multiplier (from scratch only)
    pooling: str = "avg"
    film_tone: float = 0.0  # share of the classifier's training images given a scanned film's tone
    pretrain_epochs: int = 10
    epochs: int = 80
    lr: float = 1e-3
    patience: int = 12
    batch_size: int = 16
    inpainter_epochs: int = 10
    inpainter_finetune_epochs: int = 5
    finetune_epochs: int = 8
    finetune_lr: float = 2e-4
    infill_probability: float = 0.75
    gamma: tuple[float, float] = (1.0, 1.0)  # random tone curve of the classifier's training images
    check_runs: int = 3
    check_limit: int | None = 400
    seed: int = 0
    strategy: str = "auto"

    def __post_init__(self):
        for name in ("pretrain_epochs", "epochs", "patience", "inpainter_epochs", "inpainter_finetune_epochs"):
            check_int(name, getattr(self, name), minimum=0)
        for name in ("batch_size", "finetune_epochs", "check_runs"):
            check_int(name, getattr(self, name))
        if not self.init_from_shipped and self.epochs == 0:
            raise ValueError("epochs must be >= 1 when training the classifier from scratch")
        check_range("gamma", self.gamma)
        if self.init_from_shipped and (self.backbone, self.alpha) != ("mobilenet", 0.25):
            raise ValueError("init_from_shipped fine-tunes the shipped classifier, a MobileNet of alpha 0.25; "
                             f"backbone={self.backbone!r} and alpha={self.alpha} need training from scratch")
        _classifier_settings(self, epochs=max(self.epochs, 1))  # refuses what a classifier stage would

    def stages(self) -> tuple[str, ...]:
        """The stages this recipe runs, in order."""
        return STAGES[1:] if self.init_from_shipped else STAGES


@dataclass
class _Run:
    """The run's state, ``train_all.json``: the settings, the data it was started on, finished stages."""

    folder: Path
    settings: dict
    data: dict
    stages: dict

    def save(self) -> None:
        atomic.write_text(self.folder / STATE_NAME, json.dumps(
            {"settings": self.settings, "data": self.data, "stages": self.stages}, indent=1) + "\n")


def _open(folder: Path, settings: dict, data: dict, resume: bool) -> _Run:
    from tfsal.train.common import stored_setting

    path = folder / STATE_NAME
    if not resume:
        if path.exists():
            raise TfsalError(f"{folder}: holds an earlier 'train all' run; pass --resume to go on with it, "
                             "or choose another --out")
        folder.mkdir(parents=True, exist_ok=True)
        run = _Run(folder, settings, data, {})
        run.save()
        return run
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TfsalError(f"{path}: cannot resume ({exc})") from None
    if stored["data"]["fingerprint"] != data["fingerprint"]:
        raise TfsalError(f"{folder}: the run was started on other data (another fingerprint); "
                         "start a new run in another --out")
    changed = sorted(k for k in settings if stored_setting(stored["settings"], k) != settings[k] and k != "strategy")
    if changed:
        raise TfsalError(f"{folder}: cannot resume with other settings ({', '.join(changed)}); "
                         "start a new run in another --out")
    return _Run(folder, settings, data, stored["stages"])


def _shipped(name: str) -> str:
    from tfsal.util.resources import saved_model_path

    return str(saved_model_path(name))


class Progress:
    """Progress lines for ``report``: the stage, its epoch and an estimate of the time it has left.

    The estimate is the mean epoch time of the phase so far times the epochs the stage may still
    run; early stopping can end it sooner, so it is an upper estimate.
    """

    def __init__(self, report: Callable[[str], None] | None, stages: tuple[str, ...]):
        self.report, self.stages = report, stages
        self.stage, self.budget, self.started = "", {}, time.time()

    def begin(self, stage: str, budget: dict[str, int] | None = None) -> None:
        """Stage ``stage`` begins; ``budget`` maps each of its phases to its most epochs, in order."""
        self.stage, self.budget, self.times = stage, dict(budget or {}), {}
        self.say(f"stage {self.stages.index(stage) + 1}/{len(self.stages)}: {stage}")

    def epoch(self, entry: dict) -> None:
        """Called with each epoch's history entry (``phase``, ``epoch``, ``seconds``, scores)."""
        phase, epoch = entry["phase"], int(entry["epoch"])
        self.times.setdefault(phase, []).append(float(entry["seconds"]))
        rate = sum(self.times[phase]) / len(self.times[phase])
        phases = list(self.budget)
        left = max(self.budget.get(phase, epoch + 1) - epoch - 1, 0)
        if phase in phases:  # later phases of this stage at this phase's epoch time
            left += sum(self.budget[p] for p in phases[phases.index(phase) + 1:])
        scores = ", ".join(f"{k} {v:.4f}" for k, v in entry.items()
                           if k.startswith("val_") and isinstance(v, int | float))
        self.say(f"{self.stage}: {phase} epoch {epoch + 1}/{self.budget.get(phase, '?')}"
                 + (f", {scores}" if scores else "")
                 + f", {entry['seconds']:.0f} s; at most about {_duration(left * rate)} left in this stage")

    def say(self, line: str) -> None:
        elapsed = _duration(time.time() - self.started)
        if self.report:
            self.report(f"[train all {elapsed}] {line}")
        log.info("%s", line)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def check_trainable(data: str | os.PathLike) -> tuple[list, dict]:
    """``(records, counts)`` of the manifest ``data`` when the recipe can train on it: mass and
    healthy images in both the ``train`` and the ``val`` split (a reader's output is checked with
    this before any training starts).

    Raises:
        TfsalError: an unreadable manifest, or a split or class missing.
    """
    records = read_manifest(data)
    table = counts(records)
    for split in ("train", "val"):
        if not table.get(split, {}).get("mass") or not table.get(split, {}).get("healthy"):
            found = ", ".join(f"{k} {v}" for k, v in table.get(split, {}).items()) or "no images"
            raise TfsalError(f"{data}: the {split!r} split needs mass and healthy images ({found})")
    return records, table


def train_all(data: str | os.PathLike, out: str | os.PathLike, settings: RecipeSettings | None = None,
              resume: bool = False, progress: bool = False, report: Callable[[str], None] | None = None) -> dict:
    """Run the recipe on the manifest ``data`` into the folder ``out`` (see the module's docstring).

    Args:
        data: ``labels.csv`` or its folder, with ``train`` and ``val`` splits (``test`` optional).
        out: the output folder: ``classifier.keras``, ``inpainter.keras``, (``classifier_base.keras``),
            ``check/``, ``evaluation/{val,test}/``, ``README.md``, ``card.json``, ``train_all.json``.
        settings: the recipe; defaults to :class:`RecipeSettings`.
        resume: go on with the run in ``out``.
        progress: progress bars on stderr inside each stage.
        report: called with one line per stage and per epoch (progress and time left).

    Returns:
        The model card as a dict (``card.json``); ``card["weak"]`` says whether the classifier's
        validation AUC interval includes 0.5.

    Raises:
        TfsalError: bad data (a split or a class missing), or an output folder that holds another
            run (or none when resuming).
    """
    from tfsal.recipes.model_card import write_card

    settings = settings or RecipeSettings()
    data, out = Path(data), Path(out)
    records, table = check_trainable(data)
    data_info = {"manifest": data.name if data.is_file() else f"{data.name}/labels.csv",
                 "fingerprint": fingerprint(records), "counts": table}
    stored = _as_json(settings)
    run = _open(out, stored, data_info, resume)
    meter = Progress(report, settings.stages())
    stages = {"classifier_base": _classifier_base, "inpainter": _inpainter, "classifier": _classifier,
              "check": _check, "evaluate": _evaluate}
    for stage in settings.stages():
        if run.stages.get(stage, {}).get("done"):
            meter.say(f"stage {stage}: done earlier, skipped")
            continue
        started = time.time()
        summary = stages[stage](data, out, settings, meter, progress)
        run.stages[stage] = {"done": True, "seconds": round(time.time() - started, 1), **summary}
        run.save()
    defaults = _as_json(RecipeSettings())
    card = write_card(out, run.settings, run.data, run.stages, defaults)
    meter.say(f"done: {out / 'README.md'}")
    return card


def _as_json(settings, lists=("gamma",)) -> dict:
    from tfsal.train.common import stored_settings

    return stored_settings(settings, lists)


def _checkpoints(out: Path, stage: str) -> tuple[Path, bool]:
    folder = out / CHECKPOINTS / stage
    return folder, (folder / "state.json").exists()


def _classifier_settings(settings: RecipeSettings, **changes):
    """The classifier stages' settings from the recipe's, with ``changes`` (ValueError if refused)."""
    from tfsal.train.classifier import ClassifierSettings

    return ClassifierSettings(**{
        "size": tuple(settings.size), "backbone": settings.backbone, "alpha": settings.alpha,
        "pooling": settings.pooling, "film_tone": settings.film_tone, "pretrain_epochs": settings.pretrain_epochs,
        "epochs": settings.epochs, "batch_size": settings.batch_size, "lr": settings.lr,
        "patience": settings.patience, "gamma": tuple(settings.gamma), "seed": settings.seed,
        "strategy": settings.strategy, **changes})


def _run_classifier(data, out, name, stage, classifier_settings, meter, progress) -> dict:
    from tfsal.train.classifier import train_classifier

    folder, resume = _checkpoints(out, stage)
    summary = train_classifier(data, out / name, classifier_settings, checkpoint_dir=folder, resume=resume,
                               progress=progress, report=meter.epoch)
    return {"out": name, "best_val_auc": summary["best_val_auc"], "best_epoch": summary["best_epoch"],
            "epochs_run": summary["epochs_run"], "settings": _as_json(classifier_settings)}


def _classifier_base(data, out, settings, meter, progress) -> dict:
    from tfsal.train.classifier import IMAGES, PRETRAIN

    base = _classifier_settings(settings)
    meter.begin("classifier_base", {PRETRAIN: base.pretrain_epochs, IMAGES: base.epochs})
    return _run_classifier(data, out, "classifier_base.keras", "classifier_base", base, meter, progress)


def _inpainter(data, out, settings, meter, progress) -> dict:
    from tfsal.train.inpainter import FROZEN_BN, WITH_BN, InpainterSettings, train_inpainter

    if settings.init_from_shipped:
        init, features = _shipped("inpainter.keras"), "default"
    else:
        init, features = None, str((out / "classifier_base.keras").resolve())
    inpainter = InpainterSettings(size=tuple(settings.size), epochs=settings.inpainter_epochs,
                                  finetune_epochs=settings.inpainter_finetune_epochs, init=init,
                                  feature_model=features, seed=settings.seed, strategy=settings.strategy)
    meter.begin("inpainter", {WITH_BN: inpainter.epochs, FROZEN_BN: inpainter.finetune_epochs})
    folder, resume = _checkpoints(out, "inpainter")
    summary = train_inpainter(data, out / "inpainter.keras", inpainter, checkpoint_dir=folder, resume=resume,
                              progress=progress, report=meter.epoch)
    return {"out": "inpainter.keras", "best_val_hole_l1": summary["best_val_hole_l1"],
            "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
            "settings": _as_json(inpainter, ("feature_layers",))}


def _classifier(data, out, settings, meter, progress) -> dict:
    from tfsal.train.classifier import IMAGES

    base = out / "classifier_base.keras"
    start = _shipped("classifier.keras") if settings.init_from_shipped else str(base.resolve())
    tuned = _classifier_settings(settings, pretrain_epochs=0, epochs=settings.finetune_epochs,
                                 lr=settings.finetune_lr, patience=0, init=start,
                                 infill_inpainter=str((out / "inpainter.keras").resolve()),
                                 infill_probability=settings.infill_probability)
    meter.begin("classifier", {IMAGES: tuned.epochs})
    return _run_classifier(data, out, "classifier.keras", "classifier", tuned, meter, progress)


def _models(out: Path):
    from tfsal.models.classifier import load_classifier
    from tfsal.models.inpainter import load_inpainter

    return load_classifier(out / "classifier.keras"), load_inpainter(out / "inpainter.keras")


def _check(data, out, settings, meter, progress) -> dict:
    from tfsal.evaluation.inpainter_check import check_lines, write_check

    meter.begin("check")
    records = (read_manifest(data, split="test") or read_manifest(data, split="val"))[:settings.check_limit]
    split = records[0].split
    classifier, inpainter = _models(out)
    result = write_check(classifier, inpainter, records, out / "check", runs=settings.check_runs,
                         seed=settings.seed, progress=progress)
    for line in check_lines(result):
        meter.say(f"check ({split}): {line}")
    return {"split": split, "images": len(records), "runs": settings.check_runs, "lines": check_lines(result),
            "original_auc": result["original"]["auc_mean"],
            "mass_inpainted_auc": result["mass_inpainted"]["auc_mean"]}


def _evaluate(data, out, settings, meter, progress) -> dict:
    from tfsal.evaluation.classifier_metrics import LESION_SIZE, classifier_line, write_classifier_report

    meter.begin("evaluate")
    classifier, _ = _models(out)
    metrics = {}
    for split in ("val", "test"):
        records = read_manifest(data, split=split)
        if not records:
            continue
        by = (LESION_SIZE,) if any(r.label == 1 and r.mask is not None for r in records) else ()
        result = write_classifier_report(classifier, data, split, out / "evaluation" / split, by=by)
        meter.say(classifier_line(result))
        metrics[split] = {key: result[key] for key in ("n_mass", "n_healthy", "roc_auc", "roc_auc_interval",
                                                         "sensitivity", "specificity", "threshold")}
        if by:
            metrics[split]["by_lesion_size"] = result["by"][LESION_SIZE]
    return {"metrics": metrics}


__all__ = ["CARD_NAME", "STAGES", "RecipeSettings", "check_trainable", "train_all"]
