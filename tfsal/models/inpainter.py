"""The inpainter pi: a partial-convolution U-Net (Liu et al. 2018) for one-channel images.

As in the paper's "Image Inpainting with Partial Convolutions" paragraph: eight partial
convolution layers in the encoder and eight in the decoder; the network takes the hole image
``I ⊙ M`` and the mask ``M`` (1 keeps a pixel, 0 is a hole) and predicts the whole image.
The counterfactual image is :func:`composite` ``C = M ⊙ I + (1 - M) ⊙ pi(M)``.

Departures from Liu et al., each forced by the data or the hardware:

- Liu's eight encoder layers all halve a 512x512 image. Here only the first ``k`` do, with ``k``
  from :func:`count_downsamplings` (halve while the smaller side stays at least ``min_side``
  pixels); the other encoder layers keep the resolution, and the decoder upsamples only where the
  encoder halved. The input is zero-padded (image and mask, so the padding is a hole) at the bottom
  and right to a multiple of ``2**k`` and the prediction is cropped back, so any size works.
- Channel widths start at ``base_filters`` (16, Liu 64) and double up to ``max_filters`` (128,
  Liu 512), so the network trains on a CPU.
- The output is one channel through a sigmoid (Liu: three channels, no activation), so the
  prediction lies in [0, 1] like the images; ``output_activation="linear"`` gives Liu's raw output.
- Masks: the encoder carries one-channel masks; at each skip concatenation every mask is repeated
  over its feature channels and the masks are concatenated like the features, so the decoder's
  partial convolutions see the exact per-channel masks (Liu's multi-channel masks).
"""

from __future__ import annotations

import os

import keras
from keras import ops

from tfsal.models.arguments import positive_int
from tfsal.models.loading import load_keras_model
from tfsal.models.pconv import PartialConv2D

__all__ = [
    "ENCODER_KERNEL_SIZES",
    "build_inpainter",
    "composite",
    "count_downsamplings",
    "encoder_batch_norm_layers",
    "freeze_encoder_batch_norm",
    "load_default_inpainter",
    "load_inpainter",
]

DEFAULT_SIZE = (256, 192)
ENCODER_KERNEL_SIZES = (7, 5, 5, 3, 3, 3, 3, 3)  # Liu et al. 2018, PConv1-8
DECODER_KERNEL_SIZE = 3
MIN_SIDE = 4
LEAKY_RELU_SLOPE = 0.2
BATCHNORM_MOMENTUM = 0.9  # as the classifier: Keras' 0.99 lags behind in short runs
OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


@keras.saving.register_keras_serializable(package="tfsal")
class PadToMultiple(keras.layers.Layer):
    """Zero-pads height and width at the bottom and right up to a multiple of ``multiple``.

    Args:
        multiple: a positive int; 1 leaves the input unchanged.
    """

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = positive_int(multiple, "multiple")

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h, pad_w = (-shape[1]) % self.multiple, (-shape[2]) % self.multiple
        return ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        padded = (None if n is None else -(-n // self.multiple) * self.multiple for n in (height, width))
        return batch, *padded, channels

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="tfsal")
class CropToReference(keras.layers.Layer):
    """Crops ``[x, reference]`` to ``x[:, :H, :W]`` with ``H, W`` the reference's height and width."""

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return x_shape[0], reference_shape[1], reference_shape[2], x_shape[3]


@keras.saving.register_keras_serializable(package="tfsal")
class RepeatChannels(keras.layers.Layer):
    """Repeats a one-channel tensor (a mask) ``channels`` times along the last axis.

    Args:
        channels: a positive int.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = positive_int(channels, "channels")

    def call(self, inputs):
        return ops.repeat(inputs, self.channels, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def count_downsamplings(size, layers: int = len(ENCODER_KERNEL_SIZES), min_side: int = MIN_SIDE) -> int:
    """Number of stride-2 encoder layers for an image of ``size``.

    The rule: the largest ``k <= layers`` with ``min(H, W) / 2**k >= min_side``, i.e. halve while
    the smaller side stays at least ``min_side`` pixels (0 if it is already smaller). E.g. 5 for
    256x192, 6 for 576x448, 3 for 64x48, 2 for 37x29.

    Args:
        size: ``(height, width)`` in pixels.
        layers: number of encoder layers (the most there can be).
        min_side: smallest side of the bottleneck, in pixels.

    Returns:
        ``k``, an int in ``[0, layers]``.
    """
    side = min(int(v) for v in size)
    k = 0
    while k < layers and side / 2 ** (k + 1) >= min_side:
        k += 1
    return k


def composite(image, mask, prediction):
    """The counterfactual image ``C = M ⊙ I + (1 - M) ⊙ P``: known pixels kept, holes in-filled."""
    return mask * image + (1.0 - mask) * prediction


def _check_size(size):
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(
            f"`size` must be (height, width), each a positive int or None. Received: size={size}") from None
    for value in (height, width):
        if value is not None:
            positive_int(value, "size")
    return height, width


def _as_feature_mask(mask, channels: int, name: str):
    """The mask repeated over ``channels`` feature channels (unchanged if it already has them)."""
    return mask if mask.shape[-1] == channels else RepeatChannels(channels, name=name)(mask)


def build_inpainter(
    size=DEFAULT_SIZE,
    base_filters: int = 16,
    max_filters: int = 128,
    kernel_sizes=ENCODER_KERNEL_SIZES,
    downsamplings: int | None = None,
    min_side: int = MIN_SIDE,
    batch_norm: bool = True,
    output_activation: str = "sigmoid",
) -> keras.Model:
    """The partial-convolution U-Net, for ``[B, H, W, 1]`` images and masks in [0, 1].

    Encoder layer ``i`` (1-based): ``PartialConv2D(min(base_filters * 2**(i-1), max_filters),
    kernel_sizes[i-1], stride 2 for i <= k else 1)``, then batch normalisation (not on layer 1,
    named ``enc{i}_bn``) and ReLU. Decoder layer ``j``: nearest upsampling of features and mask
    (where encoder layer ``depth + 1 - j`` halved), concatenation with the skip features and
    masks of encoder level ``depth - j`` (level 0 is the input hole image and mask),
    ``PartialConv2D`` 3x3 with the skip level's width, batch normalisation and LeakyReLU(0.2); the
    last decoder layer has one filter, no normalisation and ``output_activation``.

    Args:
        size: ``(height, width)``; ``(None, None)`` builds a model for any size.
        base_filters: width of the first encoder layer.
        max_filters: the widest layer.
        kernel_sizes: encoder kernel sizes, one per encoder layer (Liu: 7, 5, 5, 3, 3, 3, 3, 3).
        downsamplings: number of stride-2 encoder layers ``k``; default :func:`count_downsamplings`
            of ``size`` (of 256x192 when a side is None).
        min_side: ``min_side`` of :func:`count_downsamplings`.
        batch_norm: whether to use batch normalisation (phase 1 of Liu's training).
        output_activation: ``"sigmoid"`` (prediction in [0, 1]) or ``"linear"``.

    Returns:
        An uncompiled ``keras.Model`` with inputs ``image`` and ``mask`` (``[B, H, W, 1]``) and
        output ``prediction`` (``[B, H, W, 1]``), the network's prediction at every pixel; use
        :func:`composite` to keep the known pixels.

    Raises:
        ValueError: a bad argument.
    """
    height, width = _check_size(size)
    kernel_sizes, downsamplings = _check_layers(height, width, base_filters, max_filters, kernel_sizes, downsamplings,
                                                min_side)
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"`output_activation` must be one of {OUTPUT_ACTIVATIONS}. "
                         f"Received: output_activation={output_activation}")

    def width_of(level):
        return min(base_filters * 2 ** (level - 1), max_filters)

    image = keras.Input((height, width, 1), name="image")
    mask = keras.Input((height, width, 1), name="mask")
    levels = _encoder(image, mask, kernel_sizes, downsamplings, width_of, batch_norm)
    x = _decoder(levels, downsamplings, width_of, batch_norm)
    x = CropToReference(name="crop")([x, image])
    prediction = keras.layers.Activation(output_activation, name="prediction")(x)
    return keras.Model({"image": image, "mask": mask}, prediction, name="tfsal_pconv_unet")


def _check_layers(height, width, base_filters, max_filters, kernel_sizes, downsamplings, min_side) -> tuple[tuple, int]:
    """Checks the widths and kernels; returns the kernel sizes as a tuple and the number of downsamplings."""
    positive_int(base_filters, "base_filters")
    positive_int(max_filters, "max_filters")
    positive_int(min_side, "min_side")
    kernel_sizes = tuple(kernel_sizes)
    if not kernel_sizes:
        raise ValueError(f"`kernel_sizes` must not be empty. Received: kernel_sizes={kernel_sizes}")
    for kernel in kernel_sizes:
        positive_int(kernel, "kernel_sizes")
    depth = len(kernel_sizes)
    if downsamplings is None:
        known = height is not None and width is not None
        downsamplings = count_downsamplings((height, width) if known else DEFAULT_SIZE, depth, min_side)
    if isinstance(downsamplings, bool) or not isinstance(downsamplings, int) or not 0 <= downsamplings <= depth:
        raise ValueError(f"`downsamplings` must be an int in [0, {depth}]. Received: downsamplings={downsamplings}")
    return kernel_sizes, downsamplings


def _encoder(image, mask, kernel_sizes, downsamplings, width_of, batch_norm) -> list:
    """The padded hole image and the encoder layers: ``[(features, mask)]`` of levels 0 (input) to depth."""
    m = PadToMultiple(2**downsamplings, name="pad_mask")(mask)
    x = keras.layers.Multiply(name="hole_image")([PadToMultiple(2**downsamplings, name="pad_image")(image), m])
    levels = [(x, m)]
    for i, kernel in enumerate(kernel_sizes, start=1):
        x, m = PartialConv2D(width_of(i), kernel, strides=2 if i <= downsamplings else 1, name=f"enc{i}_pconv")([x, m])
        if batch_norm and i > 1:
            x = keras.layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"enc{i}_bn")(x)
        x = keras.layers.ReLU(name=f"enc{i}_relu")(x)
        levels.append((x, m))
    return levels


def _decoder(levels: list, downsamplings: int, width_of, batch_norm):
    """The decoder from the deepest level down, with skips from ``levels``; returns its one-channel output."""
    depth = len(levels) - 1
    x, m = levels[-1]
    for j in range(1, depth + 1):
        level = depth - j
        if level + 1 <= downsamplings:
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"dec{j}_up")(x)
            m = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"dec{j}_mask_up")(m)
        skip_x, skip_m = levels[level]
        m = keras.layers.Concatenate(name=f"dec{j}_mask_concat")([
            _as_feature_mask(m, x.shape[-1], f"dec{j}_mask_repeat"),
            _as_feature_mask(skip_m, skip_x.shape[-1], f"dec{j}_skip_mask_repeat")])
        x = keras.layers.Concatenate(name=f"dec{j}_concat")([x, skip_x])
        last = level == 0
        x, m = PartialConv2D(1 if last else width_of(level), DECODER_KERNEL_SIZE, name=f"dec{j}_pconv")([x, m])
        if not last:
            if batch_norm:
                x = keras.layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"dec{j}_bn")(x)
            x = keras.layers.LeakyReLU(LEAKY_RELU_SLOPE, name=f"dec{j}_lrelu")(x)
    return x


def encoder_batch_norm_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The encoder's batch normalisation layers (named ``enc{i}_bn``), in order."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization) and layer.name.startswith("enc")]


def freeze_encoder_batch_norm(model: keras.Model) -> list[str]:
    """Liu's training phase 2: freeze the encoder's batch normalisation (inference mode, no updates).

    Returns:
        The names of the layers frozen. Recompile the model afterwards.
    """
    layers = encoder_batch_norm_layers(model)
    for layer in layers:
        layer.trainable = False
    return [layer.name for layer in layers]


def load_inpainter(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """Load an inpainter saved as ``.keras``, naming the file on error.

    Importing this module registers :class:`PartialConv2D` and the padding layers, so the file
    loads in a process that imported nothing else.

    Raises:
        TfsalError: the file is missing or is not a loadable Keras model.
    """
    return load_keras_model(path, "inpainter", compile=compile)


def load_default_inpainter() -> keras.Model:
    """The shipped inpainter, ``saved_models/inpainter.keras`` (see its README)."""
    from tfsal.util.resources import DEFAULT_INPAINTER, saved_model_path

    return load_inpainter(saved_model_path(DEFAULT_INPAINTER))
