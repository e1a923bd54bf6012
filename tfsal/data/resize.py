"""Aspect-preserving, invertible resizing to the working size.

Every image enters tfsal at a fixed working size (256x192 by default, the paper uses
576x448). :class:`PadResize` scales an image by one factor so that it fits the working
size, and centres it on a zero (black) canvas; :meth:`PadResize.invert` crops the padding
and scales a map (a saliency map, a mask) back onto the original pixels.

Geometry, for a source size ``(h, w)`` and a destination size ``(H, W)``::

    scale   = min(H / h, W / w)
    resized = (clip(round(h * scale), 1, H), clip(round(w * scale), 1, W))
    offset  = ((H - resized_h) // 2, (W - resized_w) // 2)

``round`` is Python's (half to even), and :func:`tf_pad_resize` computes the same numbers
in TensorFlow, so a tf.data pipeline and numpy code agree on where each pixel lands.

This module imports TensorFlow only inside :func:`tf_pad_resize`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["PadResize", "check_hw", "tf_pad_resize"]


def check_hw(name: str, hw) -> tuple[int, int]:
    """``hw`` as two positive ints ``(height, width)``; ValueError naming ``name`` otherwise."""
    try:
        h, w = (operator.index(v) for v in hw)
    except (TypeError, ValueError):
        h = w = 0
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be two positive integers (height, width). Received: {name}={hw!r}")
    return h, w


def _fit_geometry(src_hw, dst_hw):
    """Returns ``(scale, resized_hw, offset_hw)`` as in the module docstring."""
    (sh, sw), (dh, dw) = src_hw, dst_hw
    scale = min(dh / sh, dw / sw)
    rh = min(max(round(sh * scale), 1), dh)
    rw = min(max(round(sw * scale), 1), dw)
    return scale, (rh, rw), ((dh - rh) // 2, (dw - rw) // 2)


def _resize(array: np.ndarray, hw: tuple[int, int], interpolation: int) -> np.ndarray:
    """``cv2.resize`` to ``hw`` that keeps a trailing channel axis (cv2 drops C=1)."""
    out = cv2.resize(array, (hw[1], hw[0]), interpolation=interpolation)
    if array.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


@dataclass(frozen=True)
class PadResize:
    """An aspect-preserving resize with centred zero padding, and its inverse.

    Build one with :meth:`fit`; the fields describe the geometry.

    Args:
        src_hw: the original size ``(height, width)``.
        dst_hw: the working size ``(height, width)``.
        scale: the one scale factor, ``min(dst_h / src_h, dst_w / src_w)``.
        resized_hw: the size of the scaled image inside the canvas.
        offset_hw: the top-left corner of the scaled image in the canvas.

    Example:

    >>> t = PadResize.fit((100, 100), (64, 48))
    >>> t.resized_hw, t.offset_hw
    ((48, 48), (8, 0))
    """

    src_hw: tuple[int, int]
    dst_hw: tuple[int, int]
    scale: float
    resized_hw: tuple[int, int]
    offset_hw: tuple[int, int]

    @classmethod
    def fit(cls, src_hw, dst_hw) -> PadResize:
        """Computes the geometry that fits ``src_hw`` into ``dst_hw``.

        Raises:
            ValueError: a size is not two positive integers.
        """
        src_hw, dst_hw = check_hw("src_hw", src_hw), check_hw("dst_hw", dst_hw)
        scale, resized, offset = _fit_geometry(src_hw, dst_hw)
        return cls(src_hw, dst_hw, scale, resized, offset)

    # -- helpers -------------------------------------------------------------------------
    def _check(self, array, expected_hw, what: str) -> np.ndarray:
        array = np.asarray(array)
        if array.ndim not in (2, 3) or tuple(array.shape[:2]) != tuple(expected_hw):
            raise ValueError(
                f"{what} must have shape {expected_hw} or {(*expected_hw, 'C')}. "
                f"Received: shape={array.shape}"
            )
        return array

    def _crop(self, array: np.ndarray) -> np.ndarray:
        (oy, ox), (rh, rw) = self.offset_hw, self.resized_hw
        return array[oy : oy + rh, ox : ox + rw]

    def _pad(self, array: np.ndarray) -> np.ndarray:
        (oy, ox), (rh, rw) = self.offset_hw, self.resized_hw
        canvas = np.zeros(self.dst_hw + array.shape[2:], array.dtype)
        canvas[oy : oy + rh, ox : ox + rw] = array
        return canvas

    # -- forward -------------------------------------------------------------------------
    def apply(self, image) -> np.ndarray:
        """Resizes an image of the source size onto the zero-padded working canvas.

        Area interpolation when shrinking (no aliasing), bilinear when enlarging.

        Args:
            image: numpy ``[H, W]`` or ``[H, W, C]`` of the source size, any float or int type.

        Returns:
            float32 array ``[dst_h, dst_w]`` or ``[dst_h, dst_w, C]``; padding is 0.

        Raises:
            ValueError: the image does not have the source size.
        """
        image = self._check(image, self.src_hw, "image").astype(np.float32, copy=False)
        interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        return self._pad(_resize(image, self.resized_hw, interpolation))

    def apply_mask(self, mask) -> np.ndarray:
        """Resizes a mask of the source size (nearest neighbour); bool in, bool out.

        Raises:
            ValueError: the mask does not have the source size.
        """
        mask = self._check(mask, self.src_hw, "mask")
        out = _resize(mask.astype(np.uint8), self.resized_hw, cv2.INTER_NEAREST_EXACT)
        return self._pad(out > 0)

    # -- inverse -------------------------------------------------------------------------
    def invert(self, array) -> np.ndarray:
        """Maps a working-size float map back onto the source pixels (bilinear).

        Args:
            array: numpy ``[dst_h, dst_w]`` or ``[dst_h, dst_w, C]``.

        Returns:
            float32 array of the source size; the padding is dropped.

        Raises:
            ValueError: the map does not have the working size.
        """
        array = self._check(array, self.dst_hw, "map").astype(np.float32, copy=False)
        return _resize(np.ascontiguousarray(self._crop(array)), self.src_hw, cv2.INTER_LINEAR)

    def invert_mask(self, mask) -> np.ndarray:
        """Maps a working-size mask back onto the source pixels (nearest); returns bool.

        Raises:
            ValueError: the mask does not have the working size.
        """
        mask = self._check(mask, self.dst_hw, "mask").astype(np.uint8)
        out = _resize(np.ascontiguousarray(self._crop(mask)), self.src_hw, cv2.INTER_NEAREST_EXACT)
        return out > 0


def tf_pad_resize(image, dst_hw):
    """TensorFlow version of :meth:`PadResize.apply`, for tf.data graphs.

    The geometry (scale, resized size, offsets) equals :meth:`PadResize.fit` for every size,
    including dynamic ``H, W``. Values differ slightly from the cv2 version: ``tf.image.resize``
    with ``area`` (shrinking) or ``bilinear`` (enlarging) is not bit-identical to cv2's
    ``INTER_AREA`` / ``INTER_LINEAR``.

    Args:
        image: a ``[H, W, C]`` tensor (H and W may be unknown until run time).
        dst_hw: the working size ``(height, width)``, Python ints.

    Returns:
        float32 tensor ``[dst_h, dst_w, C]``, zero padded.

    Raises:
        ValueError: ``dst_hw`` is not two positive integers, or ``image`` is not rank 3.
    """
    import tensorflow as tf

    dh, dw = check_hw("dst_hw", dst_hw)
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3:
        raise ValueError(f"image must be a [H, W, C] tensor. Received: shape={image.shape}")
    image = tf.cast(image, tf.float32)
    src = tf.cast(tf.shape(image)[:2], tf.float64)
    scale = tf.minimum(dh / src[0], dw / src[1])
    # tf.round rounds half to even, as Python's round does in PadResize.fit.
    rh = tf.clip_by_value(tf.cast(tf.round(src[0] * scale), tf.int32), 1, dh)
    rw = tf.clip_by_value(tf.cast(tf.round(src[1] * scale), tf.int32), 1, dw)
    resized = tf.cond(
        scale < 1,
        lambda: tf.image.resize(image, tf.stack([rh, rw]), method="area"),
        lambda: tf.image.resize(image, tf.stack([rh, rw]), method="bilinear"),
    )
    out = tf.image.pad_to_bounding_box(resized, (dh - rh) // 2, (dw - rw) // 2, dh, dw)
    return tf.ensure_shape(out, [dh, dw, image.shape[-1]])
