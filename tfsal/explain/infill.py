"""Marginalisers: what replaces deleted pixels. Each has ``fill(images, keep) -> [B, h, w, 1]``,
the values that the composite ``keep * I + (1 - keep) * F`` puts where ``keep`` is 0.

- :class:`Infiller`: the inpainter, healthy tissue (the method's own marginaliser). The inpainter
  has a fixed input size (the shipped one 256x192); images at another working size are resized
  to it and the fill is resized back, inside the graph.
- :class:`BlurFill`: the image blurred by a Gaussian, the marginaliser of extremal perturbations
  (R. Fong, M. Patrick, A. Vedaldi, "Understanding deep networks via extremal perturbations and
  smooth masks", ICCV 2019), which no method here optimises against.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

__all__ = ["BLUR_SIGMA", "BlurFill", "Infiller", "as_infiller", "gaussian_blur"]

BLUR_SIGMA = 10.0
"""The blur marginaliser's Gaussian standard deviation in working-size pixels (TorchRay's default)."""


class Infiller:
    """Wraps an inpainter ``{"image", "mask"} -> prediction`` (mask 1 = keep, 0 = hole).

    Args:
        inpainter: the Keras inpainter.
        jit_compile: compile the inpainter's forward pass with XLA. On the CPU this is about a
            quarter faster for the shipped inpainter (its partial convolutions' mask arithmetic is
            fused) and agrees with the default to about 2e-6, but every new batch shape costs a
            compilation of about 2 s, and TF Serving runs XLA on CPUs only when told to, so it is
            for long runs of fixed batches (``tfsal evaluate``), off by default.
    """

    def __init__(self, inpainter, jit_compile: bool = False):
        self.inpainter = inpainter
        shape = inpainter.input_shape
        shape = shape["image"] if isinstance(shape, dict) else shape[0] if isinstance(shape, list) else shape
        self.size = (shape[1], shape[2]) if shape[1] and shape[2] else None
        # One compiled graph for the model's forward pass: called eagerly, a Keras model
        # dispatches layer by layer, which cost more than the pass itself (docs/benchmarks.md).
        self._predict = tf.function(lambda image, mask: inpainter({"image": image, "mask": mask}, training=False),
                                    reduce_retracing=True, jit_compile=bool(jit_compile) or None)

    def fill(self, images, keep):
        """The inpainter's prediction ``[B, h, w, 1]`` for ``images`` with holes where ``keep`` is 0.

        ``keep`` must be binary: partial convolutions renormalise by the mask's sum, so a soft
        hole value counts as known content.
        """
        size = tf.shape(images)[1:3]
        if self.size is not None:
            images = tf.image.resize(images, self.size, "bilinear")
            keep = tf.cast(tf.image.resize(keep, self.size, "bilinear") > 0.5, tf.float32)
        prediction = tf.cast(self._predict(images * keep, keep), tf.float32)
        if self.size is not None:
            prediction = tf.image.resize(prediction, size, "bilinear")
        return prediction


def as_infiller(inpainter) -> Infiller:
    """``inpainter`` if it is already an :class:`Infiller` (so that explainers and the evaluation
    can share one, and its compiled forward pass), else a new one around the Keras inpainter."""
    return inpainter if isinstance(inpainter, Infiller) else Infiller(inpainter)


@functools.lru_cache(maxsize=16)
def blur_matrix(size: int, sigma: float) -> np.ndarray:
    """The read-only ``[size, size]`` matrix that blurs a line of ``size`` pixels by a Gaussian of standard
    deviation ``sigma`` pixels (the kernel reaches 3 sigma; the border reflected without repeating
    the edge pixel, as often as a kernel longer than the line needs)."""
    radius = max(1, int(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * np.square(offsets / sigma))
    kernel /= kernel.sum()
    period = max(2 * size - 2, 1)
    source = np.mod(np.arange(size)[:, None] + offsets[None, :], period)
    source = np.where(source < size, source, period - source)
    matrix = np.zeros((size, size), np.float64)
    np.add.at(matrix, (np.repeat(np.arange(size), offsets.size), source.ravel()), np.tile(kernel, size))
    matrix = matrix.astype(np.float32)
    matrix.flags.writeable = False  # cached: every blur of this size and sigma shares it
    return matrix


def gaussian_blur(images, sigma: float):
    """``images`` ``[B, h, w, 1]`` blurred by a separable Gaussian of standard deviation ``sigma``
    pixels (:func:`blur_matrix`): two matrix products, whose memory does not grow with ``sigma``."""
    images = tf.convert_to_tensor(images, tf.float32)
    rows = tf.constant(blur_matrix(int(images.shape[1]), sigma))
    columns = tf.constant(blur_matrix(int(images.shape[2]), sigma))
    blurred = tf.matmul(tf.matmul(rows, images[..., 0]), columns, transpose_b=True)
    return blurred[..., None]


class BlurFill:
    """Deleted pixels get the image blurred by a Gaussian of ``sigma`` pixels (``keep`` is not needed).

    Raises:
        ValueError: ``sigma`` not positive.
    """

    def __init__(self, sigma: float = BLUR_SIGMA):
        if not sigma > 0:
            raise ValueError(f"sigma must be positive. Received: sigma={sigma}")
        self.sigma = float(sigma)

    def fill(self, images, keep=None):
        """The blurred ``images`` ``[B, h, w, 1]``."""
        return gaussian_blur(images, self.sigma)
