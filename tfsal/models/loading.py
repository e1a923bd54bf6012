"""Loading Keras model files with one-line errors that name the file."""

from __future__ import annotations

import hashlib
import os
import weakref
from pathlib import Path

import keras
import numpy as np

from tfsal.errors import TfsalError
from tfsal.util.hashing import file_sha256

_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Model -> the file it was loaded from, as :func:`model_identity` reports it."""


def load_keras_model(path: str | os.PathLike, kind: str, compile: bool = False) -> keras.Model:
    """Load ``path`` (a ``.keras`` file); ``kind`` ("classifier", "inpainter") names it in errors.

    Raises:
        TfsalError: the file is missing or is not a loadable Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise TfsalError(f"{path}: {kind} file not found")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises many types for a bad file
        raise TfsalError(f"{path}: cannot load the {kind} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    _SOURCES[model] = {"file": path.name, "sha256": file_sha256(path)}
    return model


def model_identity(model) -> dict | None:
    """What a result records of the model that made it: ``{"file", "sha256"}`` (the file's name
    and the SHA-256 of its bytes) for a model :func:`load_keras_model` loaded, else ``{"file":
    None, "fingerprint"}`` (:func:`model_fingerprint`); None for None. An object holding a Keras
    model as ``inpainter`` (an ``Infiller``) is identified by that model."""
    if model is None:
        return None
    model = getattr(model, "inpainter", model)
    try:
        source = _SOURCES.get(model)
    except TypeError:  # an object that cannot be weakly referenced was not loaded here
        source = None
    return dict(source) if source else {"file": None, "fingerprint": model_fingerprint(model)}


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
