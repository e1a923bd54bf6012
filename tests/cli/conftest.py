"""Fixtures of the command-line tests."""

import keras
import pytest

from tfsal.models.inpainter import build_inpainter

from ..explain.conftest import _blob_classifier


@pytest.fixture(scope="session")
def blob_models(tmp_path_factory):
    """``--classifier``/``--inpainter`` options for the hand-set blob classifier (it finds the bright
    'mass' of ``mammogram_like``) and a small random inpainter, saved as ``.keras`` files."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    _blob_classifier().save(folder / "classifier.keras")
    build_inpainter((64, 64), 4, 8).save(folder / "inpainter.keras")
    return ["--classifier", folder / "classifier.keras", "--inpainter", folder / "inpainter.keras"]
