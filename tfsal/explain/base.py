"""The uniform explainer API: ``Explainer(model, ...).explain(images, targets, organ_masks)``.

Subclasses compute a map for a batch of same-sized images at the classifier's working size;
this base converts inputs (numpy, tensors, tf.data), picks default targets, finds the organ,
batches, and brings every map back to its image's size.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from tfsal.data.organ import breast_mask
from tfsal.explain.classifier_adapter import ClassifierAdapter
from tfsal.explain.explanation import Explanation, Explanations
from tfsal.explain.inputs import as_images, as_organs, as_targets, same_shape_batches
from tfsal.explain.scoring import inpaint_and_score
from tfsal.util.checks import check_int

__all__ = ["Batch", "Explainer", "constructor_arguments", "organ_of"]


def organ_of(image: np.ndarray) -> np.ndarray:
    """The breast mask of an ``[H, W, 1]`` image; the whole image where none is found."""
    organ = breast_mask(image[:, :, 0])
    return organ if organ.any() else np.ones(image.shape[:2], bool)


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


def constructor_arguments(cls: type, args: tuple, kwargs: dict) -> dict:
    """The arguments ``cls(model, *args, **kwargs)`` is made with, defaults filled in, those its
    ``**kwargs`` pass on to its bases included (with their defaults), the model and in-painter
    left out (they are identified, not recorded)."""
    signature = inspect.signature(cls.__init__)
    bound = signature.bind_partial(None, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, parameter in signature.parameters.items():  # **options merged in, *args kept as a list
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}))
    for klass in cls.__mro__[1:]:  # the bases' defaults for what the subclass passes on unset
        if "__init__" in vars(klass) and klass is not object:
            for name, parameter in inspect.signature(klass.__init__).parameters.items():
                if parameter.default is not inspect.Parameter.empty:
                    arguments.setdefault(name, parameter.default)
    for name in ("self", "model", "inpainter"):
        arguments.pop(name, None)
    return arguments


def _plain(value):
    """``value`` as JSON holds it: numbers, strings, None and lists as they are; anything else
    (a preprocessing function) by its qualified name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):  # by content, so that two different arrays never look alike
        return f"ndarray{list(value.shape)}:{hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]}"
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"{getattr(value, '__module__', type(value).__module__)}.{name}"


class Explainer:
    """Base of all local explainers (they meet :class:`~tfsal.explain.interface.ImageExplainer`).
    Subclasses set ``method`` and implement :meth:`explain_batch`.

    Args:
        model: a Keras classifier or callable (see :class:`ClassifierAdapter`).
        batch_size: images explained together.
        logits, activation, preprocess, input_size: as :class:`ClassifierAdapter`.
    """

    method = "base"
    steps = None  # one-pass methods; the optimising ones set their steps

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._arguments = constructor_arguments(cls, args, kwargs)
        return self

    def __init__(self, model, batch_size: int = 8, logits: bool = False, activation: str = "auto",
                 preprocess=None, input_size=None):
        self.batch_size = check_int("batch_size", batch_size)
        self.classifier = ClassifierAdapter(model, logits, activation, preprocess, input_size)

    def get_config(self) -> dict:
        """Every setting this explainer was made with: its constructor's arguments, given or
        default (the base's ``batch_size``, ``logits``... included), as JSON values; the models
        are not settings (:meth:`provenance` identifies them)."""
        return {name: _plain(value) for name, value in self._arguments.items()}

    def provenance(self) -> dict:
        """What made this explainer's results, as every result JSON records it: ``method``,
        ``settings`` (:meth:`get_config`), ``seed`` (None for a method without one) and the
        ``classifier`` and ``inpainter`` (None when the method uses none) as
        :func:`~tfsal.models.loading.model_identity` names them."""
        from tfsal.models.loading import model_identity

        settings = self.get_config()
        return {"method": self.method, "settings": settings, "seed": settings.get("seed"),
                "classifier": model_identity(self.classifier.model),
                "inpainter": model_identity(getattr(self, "infiller", None))}

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The classifier's ``(H, W)`` that files are fitted to, or None for a model of any size."""
        return self.classifier.input_size

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
            One :class:`Explanation` per image, in order, at the image's size, as an
            :class:`~tfsal.explain.explanation.Explanations` list (fields stacked for images of one size).

        Raises:
            ValueError: bad images, targets or organ masks.
        """
        images, dataset_targets = as_images(images)
        targets = as_targets(targets if targets is not None else dataset_targets, len(images))
        organs = [o if o is not None else organ_of(image)
                  for o, image in zip(as_organs(organ_masks, images), images, strict=True)]
        results: dict[int, Explanation] = {}
        for indices in same_shape_batches(images, self.batch_size):
            originals = np.stack([images[i] for i in indices])
            organ = np.stack([organs[i] for i in indices])
            batch = self.prepare(originals, organ, None if targets is None else targets[indices])
            for i, explanation in zip(indices, self.explain_batch(batch, originals, organ), strict=True):
                results[int(i)] = replace(explanation, image=images[i][:, :, 0])
        return Explanations(results[i] for i in range(len(images)))

    def prepare(self, originals: np.ndarray, organ: np.ndarray, targets) -> Batch:
        """The batch at the working size, with its targets (checked, or the defaults) and scores."""
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

    def explain_batch(self, batch: Batch, originals: np.ndarray, organ: np.ndarray) -> list[Explanation]:
        """A method's work on one prepared batch (the hook a new method implements).

        Args:
            batch: the images at the working size with targets and scores.
            originals: float32 ``[B, H, W, 1]`` as given; organ: bool ``[B, H, W]``.

        Returns:
            One :class:`Explanation` per image at the size of ``originals``.
        """
        raise NotImplementedError

    def counterfactuals(self, infiller, batch: Batch, originals: np.ndarray, masks: np.ndarray):
        """:func:`inpaint_and_score` for a prepared batch."""
        return inpaint_and_score(self.classifier, infiller, batch.images, originals, masks, batch.targets)

