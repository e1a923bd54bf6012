"""Loading Keras model files with one-line errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import keras

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
