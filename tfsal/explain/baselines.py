"""The paper's baselines with the uniform API: SAL (input gradients), CAM and Grad-CAM.

    SAL       S = max_channels |d p(c | I) / d I|
    CAM       S = sum_k w_{k,c} A_k                   (A_k the last conv features, w the dense weights)
    Grad-CAM  S = ReLU(sum_k a_k A_k),  a_k = mean_{x,y} d logodds(p(c | I)) / d A_k(x, y)

On a model whose last convolution goes through global average pooling into one dense layer (as
MobileNet), Grad-CAM at that convolution is ReLU(CAM) up to a positive scale (a_k = w_k / (h w)):
it adds nothing to CAM but the loss of the negative part. ``gradcam-early`` takes Grad-CAM at an
earlier block (:func:`earlier_conv_layer`, twice the last convolution's resolution), where it is
a different map.

References: K. Simonyan, A. Vedaldi, A. Zisserman, "Deep inside convolutional networks:
visualising image classification models and saliency maps", ICLR Workshop, 2014. B. Zhou,
A. Khosla, A. Lapedriza, A. Oliva, A. Torralba, "Learning deep features for discriminative
localization", IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2016.
R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: visual
explanations from deep networks via gradient-based localization", IEEE International
Conference on Computer Vision (ICCV), 2017.

Each computes a raw map at the classifier's working size, brings it back to the image's size
and thresholds it at the ``percentile``-th percentile inside the organ (the paper's P = 50, 75,
90). With an inpainter, each also inpaints its result mask and scores the counterfactual, so
every method's faithfulness is measured the same way as ours.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfsal.explain.base import Batch, Explainer
from tfsal.explain.explanation import Explanation, percentile_mask
from tfsal.explain.infill import as_infiller
from tfsal.explain.scoring import EPS, log_odds, resize_maps

__all__ = ["CAMExplainer", "EarlyGradCAMExplainer", "GradCAMExplainer", "MapExplainer", "SaliencyExplainer",
           "earlier_conv_layer", "last_conv_layer", "target_gradient"]

_PADDING = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)
_PASS_THROUGH = (keras.layers.Dropout, keras.layers.Reshape, keras.layers.Flatten, keras.layers.Activation)


def _graph_model(model, what: str):
    if not getattr(model, "inputs", None) or not hasattr(model, "layers"):
        raise ValueError(f"{what} needs a functional or Sequential Keras model (it reads an inner layer); "
                         "use 'sal' or 'counterfactual' for other models")
    return model


def last_conv_layer(model) -> keras.layers.Layer:
    """The last layer with a 4-D output (``[B, h, w, C]``, ``h`` and ``w`` > 1): Grad-CAM's default."""
    for layer in reversed(_graph_model(model, "Grad-CAM").layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and (shape[1] is None or shape[1] > 1 or shape[2] is None or shape[2] > 1):
            return layer
    raise ValueError("the model has no layer with a 4-D output for Grad-CAM")


def target_gradient(classifier, images, targets, input_space: bool = False):
    """``d p(target) / d x`` for working-size ``images`` ``[B, h, w, 1]``: x is the model's input
    (channels repeated for a 3-channel model), or the images themselves with ``input_space``."""
    with tf.GradientTape() as tape:
        if input_space:
            tape.watch(images)
        x = classifier.model_input(images)
        if not input_space:
            tape.watch(x)
        p = classifier.target_probability(classifier.to_probabilities(classifier.outputs_of(x)), targets)
    # a model that ignores its input has a zero gradient, not None
    return tape.gradient(p, images if input_space else x, unconnected_gradients=tf.UnconnectedGradients.ZERO)


class MapExplainer(Explainer):
    """A map computed in one pass, thresholded at a percentile inside the organ.

    Args:
        model: as :class:`~tfsal.explain.base.Explainer`.
        percentile: P of the result mask (the paper: 50, 75 or 90).
        inpainter: optional; with it, each result mask is inpainted and scored.
        **kwargs: as :class:`~tfsal.explain.base.Explainer`.
    """

    compiled = True  # saliency_maps is traced as one tf.function; perturbation methods run it eagerly

    def __init__(self, model, percentile: float = 90.0, inpainter=None, **kwargs):
        super().__init__(model, **kwargs)
        if not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100]. Received: percentile={percentile}")
        self.percentile = float(percentile)
        self.infiller = as_infiller(inpainter) if inpainter is not None else None
        self._compiled_maps = tf.function(self.saliency_maps, reduce_retracing=True) if self.compiled \
            else self.saliency_maps

    def _maps(self, batch: Batch) -> np.ndarray:
        """``[B, h, w]`` maps at the working size."""
        return np.asarray(self._compiled_maps(batch.images, tf.constant(batch.targets, tf.int32), batch.organ))

    def saliency_maps(self, images, targets, organ):
        """``[B, h, w]`` maps of working-size ``images`` ``[B, h, w, 1]`` for ``targets`` ``[B]``, with
        the ``organ`` ``[B, h, w, 1]`` (1 inside) for methods that use it, as a tensor or array (the
        hook a new map method implements; traced once per batch shape unless ``compiled`` is False)."""
        raise NotImplementedError

    def explain_batch(self, batch, originals, organ):
        maps = resize_maps(self._maps(batch), originals.shape[1:3])
        masks = np.stack([percentile_mask(m, o, self.percentile) for m, o in zip(maps, organ, strict=True)])
        counterfactuals = scores = [None] * len(maps)
        if self.infiller is not None:
            counterfactuals, scores = self.counterfactuals(self.infiller, batch, originals, masks)
        return [Explanation(self.method, int(t), m.astype(np.float32), k, o, float(s0),
                            None if s1 is None else float(s1), c)
                for t, m, k, o, s0, s1, c in zip(batch.targets, maps, masks, organ, batch.scores, scores,
                                                 counterfactuals, strict=True)]


class SaliencyExplainer(MapExplainer):
    """SAL (Simonyan et al. 2014): ``|d p(target) / d image|``, the maximum over the model's channels."""

    method = "sal"

    def saliency_maps(self, images, targets, organ):
        return tf.reduce_max(tf.abs(target_gradient(self.classifier, images, targets)), axis=-1)


class GradCAMExplainer(MapExplainer):
    """Grad-CAM (Selvaraju et al. 2017) on any conv model: ``ReLU(sum_k a_k A_k)``, ``a_k`` the
    spatial mean of ``d logodds(target) / d A_k`` (log-odds stand in for the pre-softmax score).

    Args:
        layer: name of the conv layer; None finds the last layer with a 4-D output.
        (others as :class:`MapExplainer`)
    """

    method = "gradcam"

    def __init__(self, model, layer: str | None = None, **kwargs):
        super().__init__(model, **kwargs)
        graph = _graph_model(model, "Grad-CAM")
        self.layer = graph.get_layer(layer) if layer else last_conv_layer(graph)
        self._features = keras.Model(graph.inputs, [self.layer.output, graph.outputs[0]])

    def saliency_maps(self, images, targets, organ):
        x = self.classifier.model_input(images)
        with tf.GradientTape() as tape:
            features, y = self._features(x, training=False)
            tape.watch(features)
            p = self.classifier.target_probability(
                self.classifier.to_probabilities(self.classifier.flat_outputs(y)), targets)
            score = log_odds(tf.clip_by_value(p, EPS, 1.0 - EPS))
        gradient = tape.gradient(score, features)
        weights = tf.reduce_mean(gradient, axis=[1, 2], keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))


def earlier_conv_layer(model, factor: int = 2) -> keras.layers.Layer:
    """The last layer whose 4-D output is at least ``factor`` times the last conv layer's height
    (MobileNet at 256x192: ``conv_pw_11_relu``, 16x12, against ``conv_pw_13_relu``, 8x6)."""
    last = last_conv_layer(model)
    height = last.output.shape[1]
    for layer in reversed(_graph_model(model, "Grad-CAM").layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if (len(shape) == 4 and shape[1] is not None and height is not None and shape[1] >= factor * height
                and not isinstance(layer, _PADDING)):
            return layer
    raise ValueError(f"the model has no layer with {factor} times the resolution of {last.name!r}; "
                     "name the layer to explain with layer=...")


class EarlyGradCAMExplainer(GradCAMExplainer):
    """Grad-CAM at an earlier block: by default :func:`earlier_conv_layer` with ``factor`` 2.

    Args:
        layer: name of the conv layer; None takes :func:`earlier_conv_layer`.
        factor: its resolution against the last conv layer's (with ``layer`` None).
        (others as :class:`GradCAMExplainer`)
    """

    method = "gradcam-early"

    def __init__(self, model, layer: str | None = None, factor: int = 2, **kwargs):
        super().__init__(model, layer=layer or earlier_conv_layer(_graph_model(model, "Grad-CAM"), factor).name,
                         **kwargs)


_GLOBAL_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _cam_head(model):
    """The global pool layer (average or max) and the dense layer it feeds (through dropout/reshape)."""
    layers = _graph_model(model, "CAM").layers
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, _GLOBAL_POOLS)]
    if pools:
        for layer in layers[pools[-1] + 1:]:
            if isinstance(layer, keras.layers.Dense):
                return layers[pools[-1]], layer
            if not isinstance(layer, _PASS_THROUGH):
                break
    raise ValueError("CAM needs a model whose last conv features go through a global pool (average or max) into a "
                     "Dense layer (as MobileNet's); use 'gradcam' for other conv models")


class CAMExplainer(MapExplainer):
    """CAM (Zhou et al. 2016) for global-pool + dense models: ``sum_k w_k,c A_k``.

    With a global average pool the map's mean is the logit (less the bias); with a global max pool
    the logit is ``sum_k w_k,c max A_k``, and the map still shows each place's evidence.

    For one sigmoid unit, target 0's weights are the negated unit's (logit(1 - y) = -logit(y)).
    """

    method = "cam"

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        pool, self._dense = _cam_head(model)
        self._features = keras.Model(model.inputs, pool.input)

    def saliency_maps(self, images, targets, organ):
        features = tf.cast(self._features(self.classifier.model_input(images), training=False), tf.float32)
        kernel = tf.cast(self._dense.kernel, tf.float32)  # [C, K]
        if kernel.shape[1] == 1:
            weights = tf.where(targets[:, None] == 1, kernel[:, 0][None], -kernel[:, 0][None])
        else:
            weights = tf.gather(tf.transpose(kernel), targets)
        return tf.einsum("bhwc,bc->bhw", features, weights)
