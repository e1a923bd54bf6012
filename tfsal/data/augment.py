"""Random augmentation of training images: rotation, zoom, flips, gamma and film tone, stateless and seeded.

Paper: the classifier was trained with "rotation, zoom, ... flips". A random gamma (off by default)
adds the tone differences between acquisitions (film and detector, exposure, processing):
``image ** g`` with ``log g`` uniform in ``[log low, log high]``. A random film tone (off by default)
draws, for a share of the images, the tone of the synthetic mixture's scanned films
(:func:`tfsal.data.synthetic_families.film_tone`): ``max(S(m + gain (I - m) + lift), 0)`` with ``m`` the
mean of the tissue's pixels (those above :data:`TISSUE`), ``gain`` and ``lift`` uniform in the mixture's
ranges and ``S`` the film's shoulder; the background falls towards black, as a film's frame.
:class:`Augmentation` holds the ranges; :func:`augment_image` applies them to one ``[H, W, C]`` image
with a stateless seed, so the same seed gives the same result in any ``tf.data`` graph
(:mod:`tfsal.data.pipelines` uses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from tfsal.data.synthetic import SynthConfig
from tfsal.data.synthetic_families import film_shoulder
from tfsal.util.checks import check_range

__all__ = ["Augmentation", "augment_image", "random_film_tone", "random_flips", "random_gamma", "rotate_zoom"]

TISSUE = 0.1  # pixels above this are the tissue whose mean the film tone stretches about
_MIXTURE = SynthConfig.mixture()


@dataclass(frozen=True)
class Augmentation:
    """Random augmentation of whole images (paper: "rotation, zoom, ... flips"), and a random gamma.

    Args:
        rotation: largest rotation in degrees; the angle is uniform in ``[-rotation, rotation]``.
        zoom: ``(low, high)`` range of the zoom factor (> 1 enlarges), uniform.
        horizontal_flip: flip left-right with probability 1/2.
        vertical_flip: flip up-down with probability 1/2.
        gamma: ``(low, high)`` range of a tone curve ``image ** g``, ``log g`` uniform; ``g > 1``
            darkens the mid-tones. ``(1.0, 1.0)`` (the default) leaves the tones alone.
        film_tone: share of the images given a film's tone (:func:`random_film_tone`); 0 (the
            default) gives none.
        film_gain, film_lift: the film tone's ranges, uniform; the synthetic mixture's by default.

    Rotation and zoom are about the image centre, bilinear, filled with 0 (the background).
    """

    rotation: float = 15.0
    zoom: tuple[float, float] = (0.9, 1.1)
    horizontal_flip: bool = True
    vertical_flip: bool = True
    gamma: tuple[float, float] = (1.0, 1.0)
    film_tone: float = 0.0
    film_gain: tuple[float, float] = _MIXTURE.film_gain_range
    film_lift: tuple[float, float] = _MIXTURE.film_lift_range

    def __post_init__(self):
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"rotation must be in [0, 180] degrees. Received: rotation={self.rotation!r}")
        if len(self.zoom) != 2 or not 0 < self.zoom[0] <= self.zoom[1]:
            raise ValueError(f"zoom must be (low, high) with 0 < low <= high. Received: zoom={self.zoom!r}")
        check_range("gamma", self.gamma)
        if not 0 <= self.film_tone <= 1:
            raise ValueError(f"film_tone must be a share in [0, 1]. Received: film_tone={self.film_tone!r}")
        check_range("film_gain", self.film_gain)
        if len(self.film_lift) != 2 or not self.film_lift[0] <= self.film_lift[1]:
            raise ValueError(f"film_lift must be (low, high) with low <= high. Received: {self.film_lift!r}")


def random_flips(image, seed, horizontal=True, vertical=True):
    """Stateless random left-right and up-down flips of ``[H, W, C]`` (all channels alike)."""
    s_h, s_v = tf.unstack(tf.random.split(seed, 2))
    image = tf.image.stateless_random_flip_left_right(image, s_h) if horizontal else image
    return tf.image.stateless_random_flip_up_down(image, s_v) if vertical else image


def rotate_zoom(image, seed, rotation: float, zoom: tuple[float, float]):
    """Random rotation and zoom about the centre ``c``, bilinear, filled with 0: the projective
    transform maps each output pixel ``p`` to the input pixel ``c + R(angle) (p - c) / zoom``.
    """
    s_angle, s_zoom = tf.unstack(tf.random.split(seed, 2))
    angle = tf.random.stateless_uniform([], s_angle, -rotation, rotation) * (math.pi / 180)
    factor = tf.random.stateless_uniform([], s_zoom, zoom[0], zoom[1])
    height, width = image.shape[0], image.shape[1]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    a0, a1 = tf.cos(angle) / factor, -tf.sin(angle) / factor
    b0, b1 = tf.sin(angle) / factor, tf.cos(angle) / factor
    transform = tf.stack([a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, 0.0, 0.0])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=[height, width], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]


def random_film_tone(image, seed, probability: float, gain: tuple[float, float], lift: tuple[float, float]):
    """With ``probability``, ``max(S(m + g (image - m) + l), 0)``: ``m`` the mean of the pixels above
    :data:`TISSUE` (of every pixel when none is), ``g`` and ``l`` uniform in ``gain`` and ``lift``, ``S``
    the film's shoulder (:func:`tfsal.data.synthetic_families.film_shoulder`); else ``image``."""
    s_apply, s_gain, s_lift = tf.unstack(tf.random.split(seed, 3))
    tissue = tf.cast(image > TISSUE, image.dtype)
    count = tf.reduce_sum(tissue)
    mean = tf.where(count > 0, tf.reduce_sum(image * tissue) / tf.maximum(count, 1.0), tf.reduce_mean(image))
    g = tf.random.stateless_uniform([], s_gain, gain[0], gain[1])
    lifted = tf.random.stateless_uniform([], s_lift, lift[0], lift[1])
    toned = tf.maximum(film_shoulder(mean + g * (image - mean) + lifted, xp=tnp), 0.0)
    apply = tf.random.stateless_uniform([], s_apply) < probability
    return tf.where(apply, tf.cast(toned, image.dtype), image)


def random_gamma(image, seed, low: float, high: float):
    """``image ** g`` (``image`` in [0, 1]) with ``log g`` uniform in ``[log low, log high]``."""
    log_g = tf.random.stateless_uniform([], seed, math.log(low), math.log(high))
    return tf.pow(image, tf.exp(log_g))


def augment_image(image, seed, augmentation: Augmentation, mask=None):
    """Rotation and zoom (when the ranges allow any), clipping to [0, 1], a gamma (when its range is not
    (1, 1)), a film tone (when its share is not 0), then flips, as ``augmentation`` sets.

    With ``mask`` (``[H, W, C']``, e.g. a lesion mask) the same rotation, zoom and flips move it too (the
    gamma and the film tone only touch ``image``), and ``(image, mask)`` is returned; ``image`` is then what it would be
    without a mask.
    """
    channels = image.shape[-1]
    both = image if mask is None else tf.concat([image, tf.cast(mask, image.dtype)], -1)
    s_flip, s_affine = tf.unstack(tf.random.split(seed, 2))
    if augmentation.rotation > 0 or augmentation.zoom != (1.0, 1.0):
        both = rotate_zoom(both, s_affine, augmentation.rotation, augmentation.zoom)
    both = tf.clip_by_value(both, 0.0, 1.0)  # bilinear interpolation may overshoot by an ulp
    if augmentation.gamma != (1.0, 1.0):  # a seed of its own keeps the other draws as they were
        s_gamma = tf.random.experimental.stateless_fold_in(seed, 1)
        both = tf.concat([random_gamma(both[..., :channels], s_gamma, *augmentation.gamma), both[..., channels:]], -1)
    if augmentation.film_tone > 0:  # a seed of its own too
        s_tone = tf.random.experimental.stateless_fold_in(seed, 2)
        toned = random_film_tone(both[..., :channels], s_tone, augmentation.film_tone, augmentation.film_gain,
                                 augmentation.film_lift)
        both = tf.concat([toned, both[..., channels:]], -1)
    both = random_flips(both, s_flip, augmentation.horizontal_flip, augmentation.vertical_flip)
    return both if mask is None else (both[..., :channels], both[..., channels:])
