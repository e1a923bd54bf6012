"""What every explainer returns, and the percentile thresholding that turns a map into a mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TIE_SEED", "Explanation", "Explanations", "organ_ranks", "percentile_mask", "share_count",
           "top_share_mask"]


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
        grown: bool ``[H, W]``, the pixels that growth added to the optimised mask (the
            counterfactual method), or None for methods without growth.
        image: float32 ``[H, W]``, the image as explained (what :meth:`plot` draws on), or None.
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
    grown: np.ndarray | None = None
    image: np.ndarray | None = None

    @property
    def area_fraction(self) -> float:
        """|mask| / |organ| (the paper's A); 0 for an empty organ."""
        organ = int(self.organ.sum())
        return float(np.logical_and(self.mask, self.organ).sum() / organ) if organ else 0.0

    def plot(self, ax=None, style: str = "outline", image=None):
        """Draw this explanation with matplotlib (:func:`tfsal.plots.show` for several): the image,
        the region's outline, the scores in the title and a colour bar; returns the axes.

        Args:
            ax: matplotlib axes; None: the current ones.
            style: ``outline`` or ``heat`` (the map under the outline, with its colour bar).
            image: the image to draw on; None: :attr:`image`.
        """
        from tfsal.explain.plotting import plot_explanation

        return plot_explanation(self, ax=ax, style=style, image=image)


class Explanations(list):
    """The explanations of one ``explain`` call, in order: a list, whose fields are also given
    stacked over the images, for other tools' metrics (``saliency`` ``[N, H, W]``, ...).

    Raises (the stacked fields):
        ValueError: the images differ in size (explain images of one size to stack them).
    """

    def _stack(self, name: str, dtype=None) -> np.ndarray:
        arrays = [getattr(e, name) for e in self]
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"cannot stack {name}: the explanations have sizes {sorted(shapes)}")
        return np.stack(arrays).astype(dtype) if arrays else np.zeros((0, 0, 0), dtype or np.float32)

    @property
    def saliency(self) -> np.ndarray:
        """float32 ``[N, H, W]``."""
        return self._stack("saliency", np.float32)

    @property
    def masks(self) -> np.ndarray:
        """bool ``[N, H, W]``."""
        return self._stack("mask", bool)

    @property
    def organs(self) -> np.ndarray:
        """bool ``[N, H, W]``."""
        return self._stack("organ", bool)

    @property
    def counterfactuals(self) -> np.ndarray | None:
        """float32 ``[N, H, W]``, or None when the method made none."""
        return None if any(e.counterfactual is None for e in self) else self._stack("counterfactual", np.float32)

    @property
    def scores_original(self) -> np.ndarray:
        """float64 ``[N]``."""
        return np.array([e.score_original for e in self], np.float64)

    @property
    def scores_counterfactual(self) -> np.ndarray:
        """float64 ``[N]``, NaN where there is none."""
        return np.array([np.nan if e.score_counterfactual is None else e.score_counterfactual for e in self],
                        np.float64)

    @property
    def targets(self) -> np.ndarray:
        """int ``[N]``."""
        return np.array([e.target for e in self], np.int64)

    @property
    def area_fractions(self) -> np.ndarray:
        """float64 ``[N]``."""
        return np.array([e.area_fraction for e in self], np.float64)

    def plot(self, style: str = "outline", columns: int = 4):
        """:func:`tfsal.plots.show` of these explanations; returns the figure."""
        from tfsal.explain.plotting import show

        return show(self, style=style, columns=columns)


TIE_SEED = 0
"""Seed of the fixed random order that breaks ties between equal map values (:func:`organ_ranks`)."""


def organ_ranks(saliency: np.ndarray, organ: np.ndarray) -> np.ndarray:
    """Each organ pixel's rank by ``saliency`` (0 = highest), int ``[H, W]``; pixels outside the
    organ get the organ's pixel count.

    Equal values are ordered by a fixed random permutation (seed :data:`TIE_SEED`), so the
    top ``k`` pixels are always exactly ``k`` and ties favour no part of the image.

    Raises:
        ValueError: shapes that differ.
    """
    if saliency.shape != organ.shape:
        raise ValueError(f"saliency {saliency.shape} and organ {organ.shape} differ in shape")
    organ = np.asarray(organ, bool)
    values = np.asarray(saliency, np.float64)[organ]
    tiebreak = np.random.default_rng(TIE_SEED).permutation(values.size)
    order = np.lexsort((tiebreak, -values))
    ranks = np.full(organ.shape, values.size, np.int64)
    within = np.empty(values.size, np.int64)
    within[order] = np.arange(values.size)
    ranks[organ] = within
    return ranks


def share_count(organ: np.ndarray, share: float) -> int:
    """How many pixels ``share`` of the organ is: ``round(share * |organ|)``.

    Raises:
        ValueError: ``share`` outside [0, 1].
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1]. Received: share={share}")
    return round(share * int(np.count_nonzero(organ)))


def top_share_mask(saliency: np.ndarray, organ: np.ndarray, share: float) -> np.ndarray:
    """Exactly ``share`` of the organ's pixels (:func:`share_count`): those with the highest map
    values, ties broken as :func:`organ_ranks`."""
    return organ_ranks(saliency, organ) < share_count(organ, share)


def percentile_mask(saliency: np.ndarray, organ: np.ndarray, percentile: float) -> np.ndarray:
    """The paper's thresholding of CAM and SAL: the top ``100 - percentile`` % of the organ's map
    points (P = 50 / 75 / 90 keeps 50 / 25 / 10 % of them), exactly that share, with ties at the
    threshold broken as :func:`organ_ranks` (so a constant map keeps that share, not the whole organ).

    Raises:
        ValueError: ``percentile`` outside [0, 100] or shapes that differ.
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100]. Received: percentile={percentile}")
    return top_share_mask(saliency, organ, (100.0 - percentile) / 100.0)
