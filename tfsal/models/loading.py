"""Loading Keras model files with one-line errors that name the file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import keras
import numpy as np

from tfsal.errors import TfsalError


def load_keras_model(path: str | os.PathLike, kind: str, compile: bool = False) -> keras.Model:
    """Load ``path`` (a ``.keras`` file); ``kind`` ("classifier", "inpainter") names it in errors.

    Raises:
        TfsalError: the file is missing or is not a loadable Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise TfsalError(f"{path}: {kind} file not found")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises many types for a bad file
        raise TfsalError(f"{path}: cannot load the {kind} ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def model_fingerprint(model) -> str:
    """SHA-256 of what a model computes: its architecture (``to_json``) and its weights, not where its
    file lies. Two loads of one file, or two copies of it, have the same fingerprint; one changed
    weight gives another. An object holding a Keras model as ``inpainter`` (an ``Infiller``) is
    fingerprinted by that model; a plain callable by its type's name only."""
    model = getattr(model, "inpainter", model)
    digest = hashlib.sha256()
    if not hasattr(model, "get_weights"):
        digest.update(f"{type(model).__module__}.{type(model).__qualname__}".encode())
        return digest.hexdigest()
    try:
        digest.update(model.to_json().encode())
    except Exception:  # a subclassed model without a config: its weights still say what it computes
        digest.update(type(model).__qualname__.encode())
    for weights in model.get_weights():
        digest.update(str(weights.shape).encode() + np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()
