"""Gradient baselines beyond SAL: SmoothGrad, SAL smoothed by a Gaussian, Integrated Gradients.

    SmoothGrad   S = 1/n sum_i max_channels |d p(c | I + e_i) / d I|,    e_i ~ N(0, sigma^2)
    SAL-blur     S = G_s * max_channels |d p(c | I) / d I|               (G_s a Gaussian of s px)
    IG           S = g( sum_channels (I - I0) * 1/m sum_{k=1..m} d p(c | I0 + k/m (I - I0)) / d I )

with g = |.| or max(., 0) (``sign``) and the baseline image I0 black or the image blurred.

References: D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg, "SmoothGrad: removing noise by
adding noise", ICML Workshop on Visualization for Deep Learning, 2017. M. Sundararajan, A. Taly,
Q. Yan, "Axiomatic attribution for deep networks", International Conference on Machine Learning
(ICML), 2017. SAL is K. Simonyan, A. Vedaldi, A. Zisserman, ICLR Workshop 2014
(:mod:`tfsal.explain.baselines`).

Every free parameter's default was chosen on the validation split (``docs/evaluation.md``).
"""

from __future__ import annotations

import tensorflow as tf

from tfsal.explain.baselines import MapExplainer, target_gradient
from tfsal.explain.infill import BLUR_SIGMA, gaussian_blur

__all__ = ["IG_BASELINES", "IG_SIGNS", "BlurredSaliencyExplainer", "IntegratedGradientsExplainer",
           "SmoothGradExplainer"]

IG_BASELINES = ("black", "blur")
"""Integrated Gradients' baseline image I0: all zeros, or the image blurred (sigma 10 px)."""

IG_SIGNS = ("abs", "positive")
"""How Integrated Gradients' signed attributions become a map: their magnitude or their positive part."""


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be positive. Received: {name}={value}")
    return float(value)


class SmoothGradExplainer(MapExplainer):
    """SmoothGrad (Smilkov et al. 2017): SAL averaged over ``samples`` noisy copies of the image.

    Args:
        noise: the noise's standard deviation as a share of the image range [0, 1].
        samples: noisy copies.
        seed: the noise draw.
        (others as :class:`~tfsal.explain.baselines.MapExplainer`)
    """

    method = "smoothgrad"

    def __init__(self, model, noise: float = 0.05, samples: int = 32, seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        self.noise, self.samples, self.seed = _positive("noise", noise), int(_positive("samples", samples)), int(seed)

    def saliency_maps(self, images, targets, organ):
        total = tf.zeros(tf.shape(images)[:3])
        for i in tf.range(self.samples):
            noise = tf.random.stateless_normal(tf.shape(images), [self.seed, i]) * self.noise
            total += tf.reduce_max(tf.abs(target_gradient(self.classifier, images + noise, targets)), axis=-1)
        return total / self.samples


class BlurredSaliencyExplainer(MapExplainer):
    """SAL smoothed by a Gaussian of ``sigma`` working-size pixels.

    Args:
        sigma: the Gaussian's standard deviation in pixels.
        (others as :class:`~tfsal.explain.baselines.MapExplainer`)
    """

    method = "sal-blur"

    def __init__(self, model, sigma: float = 16.0, **kwargs):
        super().__init__(model, **kwargs)
        self.sigma = _positive("sigma", sigma)

    def saliency_maps(self, images, targets, organ):
        saliency = tf.reduce_max(tf.abs(target_gradient(self.classifier, images, targets)), axis=-1)
        return gaussian_blur(saliency[..., None], self.sigma)[..., 0]


class IntegratedGradientsExplainer(MapExplainer):
    """Integrated Gradients (Sundararajan et al. 2017) with a Riemann sum of ``steps`` points.

    Args:
        steps: points on the path from the baseline to the image.
        baseline: one of :data:`IG_BASELINES`.
        sign: one of :data:`IG_SIGNS`.
        (others as :class:`~tfsal.explain.baselines.MapExplainer`)
    """

    method = "ig"

    def __init__(self, model, steps: int = 16, baseline: str = "blur", sign: str = "abs", **kwargs):
        super().__init__(model, **kwargs)
        if baseline not in IG_BASELINES or sign not in IG_SIGNS:
            raise ValueError(f"baseline must be one of {IG_BASELINES} and sign one of {IG_SIGNS}. "
                             f"Received: baseline={baseline!r}, sign={sign!r}")
        self.path_steps, self.baseline, self.sign = int(_positive("steps", steps)), baseline, sign

    def saliency_maps(self, images, targets, organ):
        start = tf.zeros_like(images) if self.baseline == "black" else gaussian_blur(images, BLUR_SIGMA)
        total = tf.zeros_like(images)
        for k in tf.range(1, self.path_steps + 1):
            alpha = tf.cast(k, tf.float32) / self.path_steps
            total += tf.reduce_sum(target_gradient(self.classifier, start + alpha * (images - start), targets,
                                                   input_space=True), axis=-1, keepdims=True)
        attribution = ((images - start) * total / self.path_steps)[..., 0]
        return tf.abs(attribution) if self.sign == "abs" else tf.nn.relu(attribution)
