"""How an explanation is shown, shared by the OpenCV pictures (:mod:`tfsal.outputs.drawing`) and
the matplotlib plots (:mod:`tfsal.explain.plotting`): the map's colour scale and the region's
outline. Loads no TensorFlow."""

from __future__ import annotations

import cv2
import numpy as np

from tfsal.explain import registry

__all__ = ["STYLES", "default_scale", "heat_level", "is_absolute", "no_region_text", "score_text", "smooth_outline"]

STYLES = ("outline", "heat")
"""Overlay and plot styles: ``outline`` (the result region's outline, the scores and a colour bar
of the score; the default) or ``heat`` (the map as a heat map under the outline, with its colour bar)."""


def is_absolute(method: str) -> bool:
    """Whether a method's map has one scale on every image: those whose result is a mask (the
    counterfactual method's ``S = 1 - M`` in [0, 1]); gradient and perturbation maps do not."""
    return registry.kind(method) == "mask"


def heat_level(saliency: np.ndarray, absolute: bool) -> np.ndarray:
    """The map as drawn, in [0, 1]: an ``absolute`` map (the counterfactual method's ``S = 1 - M``)
    as it is, so a value means the same on every image; any other map over its own 99th
    percentile (raw gradient maps have a few extreme pixels, and their scale differs per image)."""
    saliency = np.nan_to_num(np.asarray(saliency, np.float32))
    if absolute:
        return np.clip(saliency, 0, 1)
    top = float(np.percentile(saliency, 99)) if saliency.size else 0.0
    return np.clip(saliency / top, 0, 1) if top > 0 else np.zeros_like(saliency)


def smooth_outline(mask: np.ndarray, scale: float = 1.0) -> list[np.ndarray]:
    """The outer contours of ``mask`` at its own resolution, smoothed over ``scale`` pixels: a mask
    that was upsampled by ``scale`` from a working canvas has staircase edges, and its outline is
    drawn through their middle instead (as ``cv2`` contours, ``[N, 1, 2]`` x-y points)."""
    mask = np.asarray(mask, np.float32)
    if scale > 1.5:
        mask = cv2.GaussianBlur(mask, (0, 0), scale / 2)
    contours, _ = cv2.findContours((mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return list(contours)


def default_scale(height: int) -> float:
    """The staircase size assumed for a mask upsampled to ``height`` rows from the 256-row canvas."""
    return max(1.0, height / 256)


def score_text(explanation, arrow: str = "->") -> str:
    """``p 0.91 -> 0.12``: the score before and (when there is one) after the region is in-filled."""
    after = explanation.score_counterfactual
    return f"p {explanation.score_original:.2f}" + ("" if after is None else f" {arrow} {after:.2f}")


def no_region_text(explanation) -> str:
    """What an explanation without a region is labelled with: ``no region found, p 0.08``."""
    return f"no region found, p {explanation.score_original:.2f}"
