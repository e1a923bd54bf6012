"""The uniform explainer API: ``Explainer(model, ...).explain(images, targets, organ_masks)``.

Subclasses compute a map for a batch of same-sized images at the classifier's working size;
this base converts inputs (numpy, tensors, tf.data), picks default targets, finds the organ,
batches, and brings every map back to its image's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfsal.data.organ import breast_mask
from tfsal.explain.classifier_adapter import ClassifierAdapter
from tfsal.explain.explanation import Explanation
from tfsal.explain.inputs import as_images, as_organs, as_targets, same_shape_batches

__all__ = ["Batch", "Explainer", "inpaint_and_score", "organ_of", "resize_maps"]


def organ_of(image: np.ndarray) -> np.ndarray:
    """The breast mask of an ``[H, W, 1]`` image; the whole image where none is found."""
    organ = breast_mask(image[:, :, 0])
    return organ if organ.any() else np.ones(image.shape[:2], bool)


def resize_maps(maps, size, method="bilinear") -> np.ndarray:
    """``[B, h, w]`` maps resized to ``size`` = ``(H, W)``, as float32 numpy."""
    maps = tf.convert_to_tensor(maps, tf.float32)[..., None]
    if tuple(maps.shape[1:3]) != tuple(size):
        maps = tf.image.resize(maps, size, method)
    return maps.numpy()[..., 0]


@dataclass
class Batch:
    """Same-sized images ready for an explainer, at the working size ``(h, w)``.

    ``images`` float32 ``[B, h, w, 1]``; ``organ`` float32 ``[B, h, w, 1]`` (1 inside);
    ``targets`` int32 ``[B]``; ``scores`` the classifier's p(target) ``[B]``.
    """

    images: tf.Tensor
    organ: tf.Tensor
    targets: np.ndarray
    scores: np.ndarray


class Explainer:
    """Base of all explainers. Subclasses set ``method`` and implement ``_explain_batch``.

    Args:
        model: a Keras classifier or callable (see :class:`ClassifierAdapter`).
        batch_size: images explained together.
        logits, activation, preprocess, input_size: as :class:`ClassifierAdapter`.
    """

    method = "base"

    def __init__(self, model, batch_size: int = 8, logits: bool = False, activation: str = "auto",
                 preprocess=None, input_size=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int. Received: batch_size={batch_size!r}")
        self.classifier = ClassifierAdapter(model, logits, activation, preprocess, input_size)
        self.batch_size = batch_size

    def explain(self, images, targets=None, organ_masks=None) -> list[Explanation]:
        """Explain each image's classification.

        Args:
            images: numpy or tensor ``[N, H, W]`` / ``[N, H, W, C]`` (C = 1 or 3; floats in the
                model's [0, 1] range, integers scaled by their type's maximum), a list of such
                images of any sizes, or a tf.data dataset of images or ``(image, target)`` pairs.
            targets: one class index for all, one per image, or None for the default
                (the pathological class of a single sigmoid, else the predicted class).
            organ_masks: per-image bool masks ``[H, W]`` (the breast); None computes them.

        Returns:
            One :class:`Explanation` per image, in order, at the image's size.

        Raises:
            ValueError: bad images, targets or organ masks.
        """
        images, dataset_targets = as_images(images)
        targets = as_targets(targets if targets is not None else dataset_targets, len(images))
        organs = [o if o is not None else organ_of(image)
                  for o, image in zip(as_organs(organ_masks, images), images, strict=True)]
        results: list[Explanation] = []
        for indices in same_shape_batches(images, self.batch_size):
            originals = np.stack([images[i] for i in indices])
            organ = np.stack([organs[i] for i in indices])
            batch = self._prepare(originals, organ, None if targets is None else targets[indices])
            results.extend(self._explain_batch(batch, originals, organ))
        return results

    def _prepare(self, originals: np.ndarray, organ: np.ndarray, targets) -> Batch:
        size = self.classifier.working_size(originals.shape[1:3])
        images = tf.convert_to_tensor(originals)
        if tuple(images.shape[1:3]) != size:
            images = tf.image.resize(images, size, "bilinear", antialias=True)
        organ_w = tf.image.resize(tf.convert_to_tensor(organ[..., None], tf.float32), size, "nearest")
        self.classifier.resolve(images)
        probabilities = self.classifier.probabilities(images).numpy()
        targets = self.classifier.default_targets(probabilities) if targets is None else targets
        self.classifier.check_targets(targets, probabilities)
        scores = self.classifier.target_probability(probabilities, targets).numpy()
        return Batch(images, organ_w, np.asarray(targets, np.int32), scores)

    def _explain_batch(self, batch: Batch, originals: np.ndarray, organ: np.ndarray) -> list[Explanation]:
        raise NotImplementedError

    def counterfactuals(self, infiller, batch: Batch, originals: np.ndarray, masks: np.ndarray):
        """:func:`inpaint_and_score` for a prepared batch."""
        return inpaint_and_score(self.classifier, infiller, batch.images, originals, masks, batch.targets)


def inpaint_and_score(classifier: ClassifierAdapter, infiller, working, originals: np.ndarray, masks: np.ndarray,
                      targets):
    """Inpaint each image's result mask and score it.

    Args:
        classifier: the :class:`ClassifierAdapter`.
        infiller: a :class:`~tfsal.explain.infill.Infiller`.
        working: float32 ``[B, h, w, 1]``, the images at the working size.
        originals: float32 ``[B, H, W, 1]`` at the image size (may be ``working`` itself).
        masks: bool ``[B, H, W]``, the regions to delete.
        targets: int ``[B]``.

    Returns:
        ``(counterfactuals float32 [B, H, W], scores float32 [B])``: the images with the masks
        inpainted at the working size (kept pixels are the originals'), and p(target) for them.
    """
    size = tuple(working.shape[1:3])
    keep = 1.0 - masks[..., None].astype(np.float32)
    keep_w = tf.image.resize(keep, size, "nearest") if keep.shape[1:3] != size else tf.constant(keep)
    fill = resize_maps(infiller.fill(tf.convert_to_tensor(working, tf.float32), keep_w)[..., 0],
                       originals.shape[1:3])[..., None]
    counterfactual = keep * originals + (1.0 - keep) * fill
    seen = tf.convert_to_tensor(counterfactual)
    if tuple(seen.shape[1:3]) != size:
        seen = tf.image.resize(seen, size, "bilinear", antialias=True)
    scores = classifier.target_probability(classifier.probabilities(seen), targets)
    return counterfactual[..., 0], scores.numpy()
