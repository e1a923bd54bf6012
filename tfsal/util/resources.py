"""Where the shipped models live.

``saved_models/`` at the top of the repository is installed as the package
``tfsal.saved_models``; its files are package data, so a regular install and an editable
install both find them through :func:`saved_model_path`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tfsal.errors import TfsalError

DEFAULT_CLASSIFIER = "classifier.keras"
"""The shipped classifier's file name in ``saved_models/``."""
DEFAULT_INPAINTER = "inpainter.keras"
"""The shipped inpainter's file name in ``saved_models/``."""


def saved_models_dir() -> Path:
    """The folder holding the shipped models, wherever tfsal is installed."""
    return Path(str(resources.files("tfsal.saved_models")))


def saved_model_path(name: str) -> Path:
    """Path of the shipped file ``name``; :class:`TfsalError` if it is not shipped."""
    path = saved_models_dir() / name
    if not path.is_file():
        raise TfsalError(
            f"shipped model {name!r} not found in {saved_models_dir()}; "
            "pass your own model file or reinstall tfsal"
        )
    return path


def example_images() -> list[Path]:
    """The shipped synthetic example mammograms that ``tfsal explain --demo`` explains."""
    folder = Path(str(resources.files("tfsal.examples")))
    images = sorted(folder.glob("*.png"))
    if not images:
        raise TfsalError(f"no example images found in {folder}; reinstall tfsal")
    return images
