"""The mask's cell grid in the optimisation step: bilinear upsampling as matrix products, the area
term summed on the grid, and the straight-through composite, each giving the value of the plain
formula it replaces (``tests/explain/test_mask_blocks.py``) with less work per step over the
image's pixels (``benchmarks/``, issue 20). :class:`tfsal.explain.mask.MaskOptimiser` and the
amortised explainer's masks use them.

The straight-through estimator: Y. Bengio, N. Léonard, A. Courville, "Estimating or propagating
gradients through stochastic neurons for conditional computation", arXiv:1308.3432, 2013.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["cell_weights", "image_size", "straight_through_composite", "upsample_cells", "upsampling_matrix"]


def upsampling_matrix(cells: int, cell: int, length: int) -> np.ndarray:
    """float32 ``[length, cells]``: the weights with which bilinear upsampling by ``cell`` (half-pixel
    centres, no antialiasing: ``tf.image.resize(..., "bilinear")``) mixes ``cells`` values into each
    of the first ``length`` pixels (``length <= cells * cell``)."""
    source = np.maximum((np.arange(length) + 0.5) / cell - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), cells - 1)
    high = np.minimum(low + 1, cells - 1)
    weight = (source - low).astype(np.float32)
    matrix = np.zeros((length, cells), np.float32)
    np.add.at(matrix, (np.arange(length), low), 1.0 - weight)
    np.add.at(matrix, (np.arange(length), high), weight)
    return matrix


def image_size(images):
    """``(h, w)`` of ``[B, h, w, C]`` images: Python ints where known when traced, else scalar tensors."""
    if None not in images.shape[1:3]:
        return tuple(int(v) for v in images.shape[1:3])
    shape = tf.shape(images)
    return shape[1], shape[2]


def upsample_cells(values, cell: int, size):
    """``values`` ``[B, gh, gw, 1]`` upsampled bilinearly by ``cell`` and cropped to ``size`` = ``(h, w)``:
    ``tf.image.resize(values, [gh * cell, gw * cell], "bilinear")[:, :h, :w]``, computed as two
    matrix products ``R_h V R_w^T`` (:func:`upsampling_matrix`), whose backward pass is two more
    (``benchmarks/``: cheaper in the optimisation loop than the resize and its gradient on a CPU).
    Falls back to the resize where the grid's or the image's size is not known when traced."""
    gh, gw = values.shape[1:3]
    static = [tf.get_static_value(v) for v in (size[0], size[1], cell)]
    if gh is None or gw is None or any(v is None for v in static):
        up = tf.image.resize(values, tf.shape(values)[1:3] * cell, "bilinear")
        return up[:, :size[0], :size[1]]
    height, width, cell = (int(v) for v in static)
    rows = tf.constant(upsampling_matrix(gh, cell, height))
    cols = tf.constant(upsampling_matrix(gw, cell, width))
    return tf.einsum("yi,bij,xj->byx", rows, values[..., 0], cols)[..., None]


def cell_weights(organ, cell: int, grid_size):
    """``[B, gh, gw, 1]``: W = R_h^T organ^2 R_w, so that for the keep mask M = 1 - organ * (1 - up)
    of :meth:`tfsal.explain.mask.MaskOptimiser.masks` the saliency's sum over the image is
    ``sum(organ^2) - sum(sigmoid(theta) * W) = sum((1 - sigmoid(theta)) * W)`` (each row of R sums to
    1, so ``sum(W) = sum(organ^2)``): the area term computed on the cell grid, without a pass over
    the image's pixels in each step."""
    gh, gw = grid_size
    size = organ.shape[1:3]
    rows = tf.constant(upsampling_matrix(gh, cell, int(size[0])))
    cols = tf.constant(upsampling_matrix(gw, cell, int(size[1])))
    return tf.einsum("yi,byx,xj->bij", rows, tf.square(organ[..., 0]), cols)[..., None]


@tf.custom_gradient
def straight_through_composite(up, organ, images, fill, threshold):
    """The composite the classifier sees in a step, from the upsampled soft keep values ``up``:
    ``C = B * I + (1 - B) * F`` with the binary B = ``M >= threshold`` of the keep mask
    M = 1 - organ * (1 - up), and the gradient of the soft composite ``M * I + (1 - M) * F`` with
    respect to ``up``: organ * (I - F) times the upstream gradient (the straight-through estimator,
    in one pass each way). The other inputs get no gradient."""
    def gradient(upstream):
        return upstream * (images - fill) * organ, None, None, None, None

    return tf.where(1.0 - organ * (1.0 - up) >= threshold, images, fill), gradient
