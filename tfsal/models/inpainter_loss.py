"""The inpainter's training loss, after Liu et al. 2018, section 3.3.

With image ``I``, mask ``M`` (1 keeps a pixel, 0 is a hole), prediction ``P`` and composite
``C = M ⊙ I + (1 - M) ⊙ P``, and ``phi_p`` the p-th feature map of a frozen network::

    L_valid = mean |M ⊙ (P - I)|                        (Liu eq. 1: normalised by the element count)
    L_hole  = mean |(1 - M) ⊙ (P - I)|
    L_perc  = sum_p mean |phi_p(P) - phi_p(I)| + mean |phi_p(C) - phi_p(I)|             (eq. 3)
    L_style = sum_p mean |G_p(P) - G_p(I)| + mean |G_p(C) - G_p(I)|                      (eq. 4, 5)
              G_p(X) = phi_p(X)^T phi_p(X) / (C_p H_p W_p), a C_p x C_p Gram matrix
    L_tv    = sum over neighbour pairs both in R of |C_a - C_b|, divided by the element count of C
              R = the hole region dilated by one pixel (3x3)                                (eq. 6)
    L_total = 1 L_valid + 6 L_hole + 0.05 L_perc + 120 L_style + 0.1 L_tv                  (eq. 7)

The mean over the ``C_p x C_p`` Gram difference is Liu's ``1 / C_p^2`` normalisation.

Departure: Liu's ``phi`` is an ImageNet VGG-16 (pool1, pool2, pool3); no ImageNet weights can be
downloaded here, so the default feature network is the trained classifier's early blocks
(:func:`classifier_feature_extractor`); any Keras model works. Without a feature network the
perceptual and style terms are 0.
"""

from __future__ import annotations

import keras
from keras import ops

from tfsal.models.inpainter import composite

__all__ = [
    "DEFAULT_FEATURE_LAYERS",
    "DEFAULT_WEIGHTS",
    "InpaintingLoss",
    "classifier_feature_extractor",
    "gram_matrix",
    "hole_loss",
    "perceptual_loss",
    "style_loss",
    "total_variation_loss",
    "valid_loss",
]

DEFAULT_WEIGHTS = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}  # Liu eq. 7
DEFAULT_FEATURE_LAYERS = ("conv_pw_1_relu", "conv_pw_3_relu", "conv_pw_5_relu")


def valid_loss(image, mask, prediction):
    """``mean |M ⊙ (P - I)|``: the L1 error on the known pixels."""
    return ops.mean(ops.abs(mask * (prediction - image)))


def hole_loss(image, mask, prediction):
    """``mean |(1 - M) ⊙ (P - I)|``: the L1 error in the holes."""
    return ops.mean(ops.abs((1.0 - mask) * (prediction - image)))


def gram_matrix(features):
    """``phi^T phi / (C H W)`` per image: ``[B, H, W, C]`` -> ``[B, C, C]``."""
    shape = ops.shape(features)
    flat = ops.reshape(features, (shape[0], -1, shape[3]))
    norm = ops.cast(shape[1] * shape[2] * shape[3], features.dtype)
    return ops.einsum("bnc,bnd->bcd", flat, flat) / norm


def perceptual_loss(prediction_features, composite_features, image_features):
    """``sum_p mean|phi_p(P) - phi_p(I)| + mean|phi_p(C) - phi_p(I)|`` over lists of feature maps."""
    total = 0.0
    for p, c, i in zip(prediction_features, composite_features, image_features, strict=True):
        total = total + ops.mean(ops.abs(p - i)) + ops.mean(ops.abs(c - i))
    return total


def style_loss(prediction_features, composite_features, image_features):
    """``sum_p mean|G(phi_p(P)) - G(phi_p(I))| + mean|G(phi_p(C)) - G(phi_p(I))|`` (:func:`gram_matrix`)."""
    total = 0.0
    for p, c, i in zip(prediction_features, composite_features, image_features, strict=True):
        gram_i = gram_matrix(i)
        total = total + ops.mean(ops.abs(gram_matrix(p) - gram_i)) + ops.mean(ops.abs(gram_matrix(c) - gram_i))
    return total


def total_variation_loss(composite_image, mask):
    """Liu's TV: L1 of neighbour differences of the composite where both pixels lie in the dilated hole.

    Args:
        composite_image: ``[B, H, W, C]``.
        mask: ``[B, H, W, 1]`` or ``[B, H, W, C]``, 1 keeps a pixel.

    Returns:
        The sum of ``|C_a - C_b|`` over horizontal and vertical neighbours ``a, b`` both within one
        pixel (3x3) of a hole, divided by the number of elements of the composite.
    """
    region = ops.max_pool(1.0 - mask, pool_size=3, strides=1, padding="same")
    region = region * ops.ones_like(composite_image)
    horizontal = ops.abs(composite_image[:, :, 1:] - composite_image[:, :, :-1]) * region[:, :, 1:] * region[:, :, :-1]
    vertical = ops.abs(composite_image[:, 1:] - composite_image[:, :-1]) * region[:, 1:] * region[:, :-1]
    count = ops.cast(ops.size(composite_image), composite_image.dtype)
    return (ops.sum(horizontal) + ops.sum(vertical)) / count


def classifier_feature_extractor(classifier: keras.Model, layer_names=DEFAULT_FEATURE_LAYERS,
                                 name: str = "feature_extractor") -> keras.Model:
    """A frozen multi-output model giving the named layers' outputs of (a copy of) ``classifier``.

    The default layers are MobileNet's first, third and fifth pointwise blocks (strides 2, 4, 8,
    like Liu's VGG pool1-3); for another network the default takes its last maps at those strides
    (:func:`tfsal.models.classifier.feature_layers`). The classifier is copied, so freezing the
    extractor leaves it trainable.

    Args:
        classifier: a functional Keras model (the tfsal classifier by default; any model works).
        layer_names: names of top-level layers of ``classifier``.
        name: the extractor's name.

    Returns:
        A ``keras.Model`` with ``classifier``'s inputs and a list of outputs, one per layer name,
        with ``trainable = False``.

    Raises:
        ValueError: no layer names, a name that is not a layer of ``classifier``, or (by default)
            no feature map at stride 2.
    """
    layer_names = tuple(layer_names)
    if layer_names == DEFAULT_FEATURE_LAYERS:  # whatever the network: its maps at strides 2, 4, 8
        from tfsal.models.classifier import feature_layers

        layer_names = tuple(feature_layers(classifier, 2))
    available = [layer.name for layer in classifier.layers]
    missing = [n for n in layer_names if n not in available]
    if not layer_names or missing:
        raise ValueError(f"`layer_names` must name layers of {classifier.name!r}; not found: {missing}. "
                         f"Received: layer_names={layer_names}")
    copy = keras.models.clone_model(classifier)
    copy.set_weights(classifier.get_weights())
    inputs = copy.inputs[0] if len(copy.inputs) == 1 else copy.inputs
    extractor = keras.Model(inputs, [copy.get_layer(n).output for n in layer_names], name=name)
    extractor.trainable = False
    return extractor


def _as_list(outputs):
    if isinstance(outputs, dict):
        return list(outputs.values())
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


class InpaintingLoss:
    """Liu et al.'s inpainting loss (see the module docstring for the formulas).

    Args:
        feature_extractor: a frozen Keras model mapping images to one or more feature maps
            ``[B, h, w, c]`` (:func:`classifier_feature_extractor`), or None: no perceptual and
            style terms (they are reported as 0). A one-channel image is repeated to the
            extractor's input channels.
        weights: weights of the terms ``valid``, ``hole``, ``perceptual``, ``style``, ``tv``; the
            ones not given keep :data:`DEFAULT_WEIGHTS` (Liu: 1, 6, 0.05, 120, 0.1).

    Raises:
        ValueError: an unknown term or a negative weight.

    Example: ``total, parts = InpaintingLoss(extractor)(image, mask, prediction)``.
    """

    def __init__(self, feature_extractor: keras.Model | None = None, weights: dict | None = None):
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(DEFAULT_WEIGHTS))
        if unknown:
            raise ValueError(
                f"Unknown loss terms {unknown}; allowed: {list(DEFAULT_WEIGHTS)}. Received: weights={weights}")
        self.weights = {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in weights.items()}}
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"Loss weights must be non-negative. Received: weights={negative}")
        self.feature_extractor = feature_extractor

    def _features(self, prediction, composite_image, image):
        """Feature maps of P, C and I from one call of the extractor (in inference mode)."""
        batch = ops.concatenate([prediction, composite_image, image], axis=0)
        channels = self.feature_extractor.input_shape[-1]
        if channels not in (None, batch.shape[-1]) and batch.shape[-1] == 1:
            batch = ops.repeat(batch, channels, axis=-1)
        outputs = _as_list(self.feature_extractor(batch, training=False))
        split = [ops.split(o, 3, axis=0) for o in outputs]
        return [s[0] for s in split], [s[1] for s in split], [s[2] for s in split]

    def __call__(self, image, mask, prediction):
        """The loss of ``prediction`` for ``image`` with hole mask ``mask``.

        Args:
            image: ``[B, H, W, C]`` ground truth.
            mask: ``[B, H, W, 1]`` or ``[B, H, W, C]``, 1 keeps a pixel, 0 is a hole.
            prediction: ``[B, H, W, C]``, the inpainter's raw output.

        Returns:
            ``(total, parts)``: the weighted sum and a dict of the unweighted terms ``valid``,
            ``hole``, ``perceptual``, ``style``, ``tv`` (scalars).
        """
        image = ops.convert_to_tensor(image, "float32")
        prediction = ops.convert_to_tensor(prediction, "float32")
        mask = ops.cast(mask, "float32")
        composite_image = composite(image, mask, prediction)
        zero = ops.zeros((), "float32")
        parts = {
            "valid": valid_loss(image, mask, prediction),
            "hole": hole_loss(image, mask, prediction),
            "perceptual": zero,
            "style": zero,
            "tv": total_variation_loss(composite_image, mask),
        }
        if self.feature_extractor is not None:
            features = self._features(prediction, composite_image, image)
            parts["perceptual"] = perceptual_loss(*features)
            parts["style"] = style_loss(*features)
        total = sum(self.weights[k] * parts[k] for k in DEFAULT_WEIGHTS)
        return total, parts
