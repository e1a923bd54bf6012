"""Model cards: what ``tfsal train all`` says about the models it made, read back when they are loaded.

``tfsal train all --out MODELS`` writes ``MODELS/card.json`` (machine-readable) beside
``MODELS/README.md`` (for people). A classifier whose validation ROC AUC interval includes 0.5
cannot be told from a coin; its card says ``"weak": true`` and every command that loads a
classifier from that folder warns that there is no decision to explain.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CARD_NAME = "card.json"
"""The machine-readable model card's file name, in the folder of the models it describes."""


def card_path(model_path: str | os.PathLike) -> Path:
    """Where the card of the model file ``model_path`` would be: ``card.json`` beside it."""
    return Path(model_path).with_name(CARD_NAME)


def read_card(model_path: str | os.PathLike) -> dict | None:
    """The card beside ``model_path`` if there is a readable one that names that file, else None."""
    path = card_path(model_path)
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or Path(model_path).name not in card.get("models", {}):
        return None
    return card


MIN_PER_CLASS = 5
"""A validation split with fewer mass or healthy images than this cannot tell a classifier from chance."""


def weak_reason(metrics: dict) -> str | None:
    """Why a classifier is weak, from its metrics (``{"val": {...}}``), or None when it is not: its
    validation split has fewer than :data:`MIN_PER_CLASS` images of a class, or its validation ROC
    AUC interval includes 0.5 (or lies below it)."""
    val = metrics["val"]
    n_mass, n_healthy = val.get("n_mass", MIN_PER_CLASS), val.get("n_healthy", MIN_PER_CLASS)
    if min(n_mass, n_healthy) < MIN_PER_CLASS:
        return (f"its validation split has {n_mass} mass and {n_healthy} healthy images, too few to tell it "
                "from chance")
    low, high = val["roc_auc_interval"]
    if low <= 0.5:
        return f"validation ROC AUC {val['roc_auc']:.3f}, 95 % interval {low:.3f}-{high:.3f}, includes 0.5"
    return None


def is_weak(metrics: dict) -> bool:
    """Whether :func:`weak_reason` finds a reason."""
    return weak_reason(metrics) is not None


def weak_warning(card: dict) -> str | None:
    """The warning a weak classifier's card calls for, or None when its card does not say weak."""
    if not card.get("weak"):
        return None
    reason = weak_reason(card["metrics"]) if "val" in card.get("metrics", {}) else None
    return (f"this classifier's model card says it is weak: {reason or 'marked weak'}; it may not tell mass "
            "from healthy images, so there may be no decision to explain")


def warn_if_weak(model_path: str | os.PathLike) -> None:
    """Log :func:`weak_warning` when the card beside the classifier ``model_path`` says it is weak."""
    card = read_card(model_path)
    message = weak_warning(card) if card else None
    if message:
        log.warning("%s: %s", Path(model_path).name, message)
