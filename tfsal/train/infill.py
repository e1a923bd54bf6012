"""In-fill augmentation: teach a classifier that inpainted tissue is healthy tissue.

The explainer deletes regions and asks the classifier about the in-filled image. A classifier
that reads in-fill itself as suspicious (inpainting large healthy areas raises its mass score)
makes every explanation wrong. During training, :class:`InfillAugmentation` replaces, with a
given probability per image, blobs covering a random share of the breast by the inpainter's
output (:func:`tfsal.models.inpainter.composite`), never touching a mass (its mask dilated by
:data:`tfsal.data.holes.MASS_MARGIN`), and keeps the label.

Blobs are the top share of a smoothed Gaussian random field inside the breast
(:func:`tfsal.data.holes.blob_hole_mask`), so their shapes range from a few spots to large
connected regions, as explanation masks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfsal.data.holes import MASS_MARGIN, blob_hole_mask, dilated
from tfsal.models.inpainter import composite

__all__ = ["InfillAugmentation"]


@dataclass(frozen=True)
class InfillAugmentation:
    """Inpaint random healthy blobs of training images (see the module docstring).

    Args:
        inpainter: a Keras model ``{"image", "mask"} -> prediction`` (tfsal's U-Net).
        probability: share of images that get in-fill.
        fraction: (low, high) range of the breast share to inpaint, uniform.
        batch_size: images inpainted together.
    """

    inpainter: object
    probability: float = 0.5
    fraction: tuple[float, float] = (0.02, 0.5)
    batch_size: int = 16

    def __post_init__(self):
        if not 0 <= self.probability <= 1:
            raise ValueError(f"probability must be in [0, 1]. Received: probability={self.probability}")
        low, high = self.fraction
        if not 0 <= low <= high <= 1:
            raise ValueError(f"fraction must satisfy 0 <= low <= high <= 1. Received: fraction={self.fraction}")

    def hole_mask(self, seed: np.ndarray, organ: np.ndarray, mass: np.ndarray) -> np.ndarray:
        """The mask of one image (all ones when this image gets no in-fill); runs in numpy."""
        rng = np.random.default_rng([int(s) & 0x7FFFFFFF for s in np.asarray(seed).ravel()] + [0x1F111])
        organ, mass = organ[..., 0] > 0.5, mass[..., 0] > 0.5
        if rng.random() >= self.probability:
            return np.ones((*organ.shape, 1), np.float32)
        avoid = dilated(mass, max(1, round(MASS_MARGIN * organ.shape[0])))
        fraction = rng.uniform(*self.fraction)
        return blob_hole_mask(rng, organ, fraction, avoid)[..., None]

    def apply(self, dataset):
        """Map a dataset of ``(example, seed)`` to the same with in-filled ``example["image"]``."""
        import tensorflow as tf

        def with_mask(example, seed):
            mask = tf.numpy_function(self.hole_mask, [seed, example["organ"], example["mass"]], tf.float32)
            return {**example, "hole_mask": tf.ensure_shape(mask, example["image"].shape)}, seed

        def inpaint(example, seed):
            image, mask = example["image"], example["hole_mask"]
            prediction = self.inpainter({"image": image, "mask": mask}, training=False)
            filled = composite(image, mask, tf.cast(prediction, image.dtype))
            example = {k: v for k, v in example.items() if k != "hole_mask"}
            return {**example, "image": filled}, seed

        return (dataset.map(with_mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(self.batch_size).map(inpaint).unbatch())
