"""What every explainer returns, and the percentile thresholding that turns a map into a mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Explanation", "percentile_mask"]


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image's explanation, at the image's own size.

    Attributes:
        method: the explainer's name (``counterfactual``, ``sal``, ``cam``, ``gradcam``).
        target: the explained class index.
        saliency: float32 ``[H, W]``, higher = more important. For the counterfactual method
            ``S = 1 - M`` in [0, 1]; for the baselines the raw map.
        mask: bool ``[H, W]``, the binary result mask (``M < 0.5``, or the map's percentile
            threshold inside the organ for the baselines).
        organ: bool ``[H, W]``, where the explanation was allowed (the breast).
        score_original: the classifier's probability of ``target`` for the image.
        score_counterfactual: the same for the counterfactual image, or None without an inpainter.
        counterfactual: float32 ``[H, W]``, the image with ``mask`` inpainted, or None.
        loss: float32 ``[steps]``, the loss at each optimisation step, or None.
    """

    method: str
    target: int
    saliency: np.ndarray
    mask: np.ndarray
    organ: np.ndarray
    score_original: float
    score_counterfactual: float | None = None
    counterfactual: np.ndarray | None = None
    loss: np.ndarray | None = None

    @property
    def area_fraction(self) -> float:
        """|mask| / |organ| (the paper's A); 0 for an empty organ."""
        organ = int(self.organ.sum())
        return float(np.logical_and(self.mask, self.organ).sum() / organ) if organ else 0.0


def percentile_mask(saliency: np.ndarray, organ: np.ndarray, percentile: float) -> np.ndarray:
    """The pixels inside ``organ`` whose value reaches the ``percentile``-th percentile there.

    The paper's thresholding of CAM and SAL: P = 50 / 75 / 90 keeps 50 / 25 / 10 % of the
    organ's map points. Ties at the threshold are kept, so a constant map keeps the whole organ.

    Raises:
        ValueError: ``percentile`` outside [0, 100] or shapes that differ.
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100]. Received: percentile={percentile}")
    if saliency.shape != organ.shape:
        raise ValueError(f"saliency {saliency.shape} and organ {organ.shape} differ in shape")
    organ = organ.astype(bool)
    if not organ.any():
        return np.zeros(organ.shape, bool)
    level = np.percentile(saliency[organ], percentile)
    return organ & (saliency >= level)
