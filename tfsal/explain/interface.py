"""The explainer interface: what :func:`tfsal.outputs.explain_files` and the Beam workers need from an
explainer, met by every local explainer (:class:`~tfsal.explain.base.Explainer`) and by the
served one (:class:`~tfsal.serving.client.ServerExplainer`). Loads no TensorFlow."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tfsal.explain.explanation import Explanation

__all__ = ["ImageExplainer"]


@runtime_checkable
class ImageExplainer(Protocol):
    """Explains batches of images at one working size.

    Attributes:
        method: the method's name (:mod:`tfsal.explain.registry`), recorded with each result.
        input_size: ``(H, W)`` that images are fitted to before :meth:`explain` (with the same
            padding as training), or None when any size is explained as it is.
        batch_size: how many images one :meth:`explain` call should get.
        steps: the optimisation steps, recorded with each result; None for one-pass methods.
    """

    method: str
    batch_size: int

    @property
    def input_size(self) -> tuple[int, int] | None: ...

    @property
    def steps(self) -> int | None: ...

    def explain(self, images, targets=None, organ_masks=None) -> list[Explanation]:
        """One :class:`Explanation` per image, in order, at the size each image was given."""
        ...
