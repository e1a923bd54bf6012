"""What every result JSON records of how it was made, and whether an earlier result was made the
same way (what ``tfsal explain-batch`` resumes by).

A result's ``provenance`` block holds the tfsal version, the method, all its settings, the seed,
and the classifier and in-painter by file name and SHA-256 (or, for a model made in memory, by
:func:`~tfsal.models.loading.model_fingerprint`); the record beside it holds the SHA-256 of the
input file. An earlier result is reused only when its input's content and its provenance are
the same, the tfsal version and the settings in :data:`NO_EFFECT` aside. Loads no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfsal import __version__
from tfsal.util.hashing import file_sha256

__all__ = ["NO_EFFECT", "read_record", "run_provenance", "same_run"]

NO_EFFECT = ("batch_size",)
"""Settings that do not change a result (each image is optimised on its own), so a rerun with
another value reuses earlier results."""


def run_provenance(explainer, style: str = "outline", target: int | None = None, dicom: bool = False) -> dict:
    """``{"tfsal": version, "method", "settings", "seed", "classifier", "inpainter", "target",
    "overlay", "dicom"}`` of a run with an :class:`~tfsal.explain.interface.ImageExplainer`
    explaining class ``target`` (None: each image's default, or the explainer's
    ``default_target`` when it has one), drawing overlays in ``style`` and
    writing DICOM results or not: what the explainer's ``provenance()`` says, or, for one without
    that method, its method name and None for the rest."""
    describe = getattr(explainer, "provenance", None)
    made = describe() if callable(describe) else {"method": explainer.method, "settings": None, "seed": None,
                                                   "classifier": None, "inpainter": None}
    if target is None:  # an explainer with one default class for every image says which
        target = getattr(explainer, "default_target", None)
    target = None if target is None else int(target)
    return {"tfsal": __version__, **made, "target": target, "overlay": style, "dicom": bool(dicom)}


def read_record(path: str | Path) -> dict | None:
    """An existing per-image JSON, or None when there is none or it cannot be read as one."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def same_run(record: dict, provenance: dict, path: str | Path) -> bool:
    """Whether ``record`` (a per-image JSON) was made from the file at ``path`` as it is now, by
    a run with this ``provenance`` (:func:`run_provenance`), the version and :data:`NO_EFFECT` aside.
    The input is hashed only when the rest agrees."""
    wanted = _comparable(provenance)
    if wanted is None or _comparable(record.get("provenance")) != wanted:
        return False
    try:
        return record.get("input_sha256") == file_sha256(path)
    except OSError:
        return False


def _comparable(provenance) -> dict | None:
    if not isinstance(provenance, dict):
        return None
    provenance = json.loads(json.dumps(provenance))  # as a JSON file holds it: lists, not tuples
    settings = provenance.get("settings")
    if isinstance(settings, dict):
        settings = {name: value for name, value in settings.items() if name not in NO_EFFECT}
    return {**{k: v for k, v in provenance.items() if k != "tfsal"}, "settings": settings}
