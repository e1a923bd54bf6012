"""Any Keras classifier or callable, seen by the explainers as one function: images -> class probabilities.

Model-agnostic as ``../shared/design.md`` asks: one sigmoid unit (p(c=1) = y, p(c=0) = 1 - y),
K independent sigmoid units (multi-label, as chest X-ray models such as CheXNet have), a softmax
over K classes, or logits of either with ``logits=True``; a 1- or 3-channel input (grayscale
repeated); a fixed input size that differs from the image's (the explainers work at the model's
size and bring the maps back to the image's).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["ClassifierAdapter"]

ACTIVATIONS = ("auto", "sigmoid", "softmax")
"""How outputs are read: ``auto`` (from the last layer, else by their shape and sums), ``sigmoid`` or ``softmax``."""


def _static_input_shape(model):
    """``(height, width, channels)`` of a Keras model's input, with None where unknown."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None, None, None
    if isinstance(shape, list):
        shape = shape[0]
    if not isinstance(shape, tuple) or len(shape) != 4:
        return None, None, None
    return shape[1], shape[2], shape[3]


def _declared_activation(model) -> str | None:
    """'sigmoid' or 'softmax' when the model's last layer says so, else None."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    name = getattr(getattr(layers[-1], "activation", None), "__name__", None)
    return name if name in ("sigmoid", "softmax") else None


class ClassifierAdapter:
    """Wraps a classifier so explainers can ask for class probabilities of ``[B, h, w, 1]`` images.

    Args:
        model: a Keras model (functional, Sequential, subclassed) or any callable mapping
            ``[B, H, W, C]`` float32 to ``[B, K]`` (or ``[B]``) outputs.
        logits: the outputs are logits (sigmoid or softmax is applied here).
        activation: ``auto`` (from the model's last layer; else one output is a sigmoid and K
            outputs whose rows sum to 1 are a softmax), ``sigmoid`` or ``softmax``.
        preprocess: optional callable applied to the ``[0, 1]`` images (after resizing and
            channel repetition) before the model, e.g. a ``keras.applications`` preprocessing.
        input_size: ``(height, width)`` for a model whose input size is not declared; None
            works at each image's size.

    Raises:
        ValueError: an unknown activation, or a model input with 2 or more than 3 channels.
    """

    def __init__(self, model, logits: bool = False, activation: str = "auto", preprocess=None, input_size=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}. Received: activation={activation!r}")
        if not callable(model):
            raise ValueError(f"model must be a Keras model or a callable. Received: {type(model).__name__}")
        height, width, channels = _static_input_shape(model)
        self.model, self.logits, self.preprocess = model, bool(logits), preprocess
        self.channels = channels or 1
        if self.channels not in (1, 3):
            raise ValueError(f"the model takes {self.channels} channels; tfsal explains 1- or 3-channel models")
        self.input_size = (height, width) if height and width else (tuple(input_size) if input_size else None)
        self.activation = activation if activation != "auto" else (_declared_activation(model) or "auto")
        self.outputs: int | None = None  # K, known after resolve()
        # Keras models run as one compiled graph (eager dispatch costs more than a small model's pass)
        self._forward = (tf.function(lambda x: model(x, training=False), reduce_retracing=True)
                         if isinstance(model, keras.Model) else model)

    def working_size(self, image_size) -> tuple[int, int]:
        """Where the explanation is computed: the model's input size, else the image's."""
        return tuple(self.input_size) if self.input_size else tuple(int(v) for v in image_size)

    def model_input(self, images):
        """What the model is fed for ``[B, h, w, 1]`` images in [0, 1]: channels repeated, preprocessed."""
        x = tf.convert_to_tensor(images, tf.float32)
        if self.channels == 3:
            x = tf.repeat(x, 3, axis=-1)
        return self.preprocess(x) if self.preprocess is not None else x

    @staticmethod
    def flat_outputs(y):
        """A model's output as float32 ``[B, K]`` (the first output of a multi-output model)."""
        if isinstance(y, dict):
            y = next(iter(y.values()))
        elif isinstance(y, (list, tuple)):
            y = y[0]
        y = tf.cast(y, tf.float32)
        return tf.reshape(y, [tf.shape(y)[0], -1])

    def outputs_of(self, x):
        """``[B, K]`` outputs for the model's own input ``x`` (see :meth:`model_input`)."""
        y = self._forward(x)
        return self.flat_outputs(y)

    def _raw(self, images):
        return self.outputs_of(self.model_input(images))

    def to_probabilities(self, outputs):
        """``[B, K]`` model outputs as probabilities (applies the activation for logits)."""
        if self.logits:
            return tf.nn.softmax(outputs) if self.activation == "softmax" else tf.sigmoid(outputs)
        return outputs

    def resolve(self, images) -> None:
        """Count the outputs and settle ``auto`` activation from the outputs for ``images`` (eager)."""
        if self.outputs is not None and self.activation != "auto":
            return
        y = self._raw(images).numpy()
        self.outputs = int(y.shape[1])
        if self.activation != "auto":
            return
        if y.shape[1] == 1:
            self.activation = "sigmoid"
        elif not self.logits and np.allclose(y.sum(axis=1), 1.0, atol=1e-3) and (y >= 0).all():
            self.activation = "softmax"
        else:
            self.activation = "sigmoid"

    def probabilities(self, images):
        """``[B, K]`` float32 class probabilities of ``[B, h, w, 1]`` images at the working size."""
        return self.to_probabilities(self._raw(images))

    def num_classes(self, probabilities) -> int:
        """K, counting the two classes of a single sigmoid unit as 2."""
        k = int(probabilities.shape[-1])
        return 2 if k == 1 else k

    def target_probability(self, probabilities, targets):
        """``[B]``: p(target | image); for one sigmoid unit target 0 is ``1 - y``."""
        targets = tf.convert_to_tensor(targets, tf.int32)
        if (self.outputs or probabilities.shape[-1]) == 1:  # static even where a graph lost the shape
            p = probabilities[:, 0]
            return tf.where(targets == 1, p, 1.0 - p)
        return tf.gather(probabilities, targets, axis=1, batch_dims=1)

    def default_targets(self, probabilities) -> np.ndarray:
        """The pathological class (1) for one sigmoid unit, else the most probable class."""
        probabilities = np.asarray(probabilities)
        if probabilities.shape[-1] == 1:
            return np.ones(len(probabilities), np.int32)
        return probabilities.argmax(axis=-1).astype(np.int32)

    def check_targets(self, targets: np.ndarray, probabilities) -> None:
        k = self.num_classes(probabilities)
        if (targets >= k).any():
            raise ValueError(f"target {int(targets.max())} is out of range: the model has {k} classes")
