"""Partial convolution (Liu et al. 2018), the building block of the inpainter.

Reference: G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, "Image Inpainting for
Irregular Holes Using Partial Convolutions", ECCV 2018 — reference [18] of the paper, whose
"Image Inpainting with Partial Convolutions" paragraph prints the same formula. The mask-ratio
computation follows the published reference implementation (NVIDIA/partialconv): the mask path
carries no gradient and masks are assumed binary.
"""

from __future__ import annotations

import keras
from keras import ops

from tfsal.models.arguments import positive_int

__all__ = ["PartialConv2D"]

ALLOWED_PADDINGS = ("same", "valid")
ALLOWED_STRIDES = (1, 2)


def _pair(value, name: str) -> tuple[int, int]:
    """``value`` as a pair of ints (an int is repeated), or ``ValueError`` naming ``name``."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"`{name}` must be an int or a tuple of 2 ints. Received: {name}={value}")
    return pair


@keras.saving.register_keras_serializable(package="tfsal")
class PartialConv2D(keras.layers.Layer):
    """2D partial convolution: a convolution that only reads the valid (mask = 1) pixels.

    For each sliding window with features ``X``, binary mask ``M`` (1 keeps a pixel, 0 is a
    hole), kernel ``W`` and bias ``b`` (Liu et al. 2018, eq. 1 and 2)::

        x' = W^T (X ⊙ M) · window_size / sum(M) + b    if sum(M) > 0
        x' = 0                                          otherwise
        m' = 1 if sum(M) > 0 else 0

    ``window_size`` is ``kernel_h * kernel_w * in_channels`` for a multi-channel mask (one mask
    channel per feature channel) and ``kernel_h * kernel_w`` for a single-channel mask, which is
    broadcast over the feature channels. The bias is added before the update mask is applied, so
    hole positions output exactly 0. As in NVIDIA/partialconv, the mask path (window sums and
    update mask) is computed under ``stop_gradient``, and the ratio is computed as
    ``window_size / max(sum(M), 1) · m'``, so the gradient with respect to the features is finite
    everywhere, all-hole windows included. Masks are expected to be 0/1; a soft mask with a
    window sum below 1 gets the ratio ``window_size`` and the update mask 1.

    The layer is a pure partial convolution: batch normalisation and activation are separate
    layers (Liu et al. apply them outside the partial convolution).

    Padding follows Keras (TensorFlow) semantics: the mask is zero-padded, so border windows are
    re-normalised by their number of valid pixels. NVIDIA/partialconv pads symmetrically, which is
    the same as ``padding="same"`` except for stride 2 on an even size, where Keras pads one
    pixel less before than after.

    Args:
        filters: number of output channels, a positive int.
        kernel_size: int or tuple of 2 positive ints.
        strides: 1, 2 or a tuple of 2 of these.
        padding: ``"same"`` or ``"valid"`` (case-insensitive).
        use_bias: whether to add a bias.
        kernel_initializer: initializer of the kernel.
        bias_initializer: initializer of the bias.
        kernel_regularizer: optional regularizer of the kernel.
        bias_regularizer: optional regularizer of the bias.
        kernel_constraint: optional constraint of the kernel.
        bias_constraint: optional constraint of the bias.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        A list ``[features, mask]``: features ``[B, H, W, C]``; mask ``[B, H, W, 1]`` or
        ``[B, H, W, C]``.

    Output shape:
        A list ``[features, new_mask]``: features ``[B, H', W', filters]``; new_mask
        ``[B, H', W', 1]`` for a single-channel mask, else ``[B, H', W', filters]`` (all its
        channels are equal). ``H'``, ``W'`` as for ``keras.layers.Conv2D``.

    Returns:
        The list ``[features, new_mask]``.

    Raises:
        ValueError: a bad argument, or a mask whose channels are neither 1 nor ``C``.

    Example:

    >>> import numpy as np
    >>> x, m = np.ones((1, 8, 8, 3)), np.ones((1, 8, 8, 1))
    >>> y, new_m = PartialConv2D(4, 3, strides=2)([x, m])
    >>> print(y.shape, new_m.shape)
    (1, 4, 4, 4) (1, 4, 4, 1)
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "same",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        if min(self.kernel_size) <= 0:
            raise ValueError(f"`kernel_size` must be positive. Received: kernel_size={kernel_size}")
        self.strides = _pair(strides, "strides")
        if not all(s in ALLOWED_STRIDES for s in self.strides):
            raise ValueError(f"`strides` must be 1 or 2 in each dimension. Received: strides={strides}")
        if not isinstance(padding, str) or padding.lower() not in ALLOWED_PADDINGS:
            raise ValueError(f"`padding` must be one of {ALLOWED_PADDINGS}. Received: padding={padding}")
        self.padding = padding.lower()
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = [keras.InputSpec(ndim=4), keras.InputSpec(ndim=4)]

    def _split_shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"PartialConv2D expects a list [features, mask]. Received: input_shape={input_shape}")
        features_shape, mask_shape = (tuple(s) for s in input_shape)
        channels, mask_channels = features_shape[-1], mask_shape[-1]
        if channels is None:
            raise ValueError(
                f"The channel dimension of the features must be known. Received: input_shape={input_shape}")
        if mask_channels not in (1, channels):
            raise ValueError(
                f"The mask must have 1 channel or as many as the features ({channels}). "
                f"Received: mask shape={mask_shape}")
        return features_shape, mask_shape

    def build(self, input_shape):
        features_shape, mask_shape = self._split_shapes(input_shape)
        channels = features_shape[-1]
        self.input_spec = [keras.InputSpec(ndim=4, axes={-1: channels}),
                           keras.InputSpec(ndim=4, axes={-1: mask_shape[-1]})]
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        # The fixed all-ones kernel of the mask path is a constant built in ``call``, not a weight.
        self._mask_channels = mask_shape[-1]

    def _conv(self, inputs, kernel):
        return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding, data_format="channels_last")

    def _mask_ratio(self, mask):
        """Window sums of the mask -> (ratio · update mask, update mask), both ``[B, H', W', 1]``."""
        mask = ops.stop_gradient(mask)
        ones = ops.ones((*self.kernel_size, self._mask_channels, 1), dtype=mask.dtype)
        window_sum = self._conv(mask, ones)
        window_size = float(self.kernel_size[0] * self.kernel_size[1] * self._mask_channels)
        update = ops.cast(ops.greater(window_sum, 0.0), mask.dtype)
        ratio = window_size / ops.maximum(window_sum, 1.0) * update
        return ops.stop_gradient(ratio), ops.stop_gradient(update)

    def call(self, inputs):
        features, mask = inputs
        mask = ops.cast(mask, features.dtype)
        ratio, update = self._mask_ratio(mask)
        outputs = self._conv(features * mask, self.kernel) * ratio
        if self.use_bias:
            outputs = outputs + self.bias
        outputs = outputs * update
        if self._mask_channels != 1:
            update = ops.repeat(update, self.filters, axis=-1)
        return [outputs, update]

    def compute_output_shape(self, input_shape):
        features_shape, mask_shape = self._split_shapes(input_shape)
        spatial = [self._output_length(n, k, s)
                   for n, k, s in zip(features_shape[1:3], self.kernel_size, self.strides, strict=True)]
        mask_channels = 1 if mask_shape[-1] == 1 else self.filters
        return [(features_shape[0], *spatial, self.filters), (mask_shape[0], *spatial, mask_channels)]

    def _output_length(self, length, kernel, stride):
        if length is None:
            return None
        if self.padding == "same":
            return -(-length // stride)
        return (length - kernel) // stride + 1

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        })
        return config
