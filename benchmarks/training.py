"""Seconds per epoch of both trainings at the default size and settings, on a synthetic set.

Short runs of the project's own training functions: the classifier with one patch
pre-training epoch and two image epochs, the same image epochs with the in-fill augmentation
that fine-tuned the shipped classifier (the shipped inpainter fills random breast regions of 75 %
of the images on the fly), and the inpainter with two epochs. The first epoch of a
phase also traces the graphs and fills the data cache, so the table reports the last one.
Each epoch's seconds include its validation pass.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tfsal.train.classifier import ClassifierSettings, train_classifier
from tfsal.train.inpainter import InpainterSettings, train_inpainter
from tfsal.util.resources import saved_model_path


def training_rows(data, log=print) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        infill = {"init": str(saved_model_path("classifier.keras")), "infill_inpainter": str(saved_model_path(
            "inpainter.keras")), "infill_probability": 0.75}
        for index, (model, train, settings) in enumerate((
                ("classifier", train_classifier, ClassifierSettings(pretrain_epochs=1, epochs=2, patience=0)),
                ("classifier, in-fill", train_classifier, ClassifierSettings(epochs=2, patience=0, **infill)),
                ("inpainter", train_inpainter, InpainterSettings(epochs=2, finetune_epochs=0)))):
            history = []
            train(data, Path(folder) / f"model{index}.keras", settings, progress=False, report=history.append)
            for phase in dict.fromkeys(entry["phase"] for entry in history):
                entries = [e for e in history if e["phase"] == phase]
                rows.append({"model": model, "phase": phase, "epochs": len(entries),
                             "seconds_first_epoch": entries[0]["seconds"], "seconds_per_epoch": entries[-1]["seconds"],
                             "batches_per_epoch": entries[-1].get("batches")})
                log(rows[-1])
    return rows
