"""The amortised counterfactual explainer: a mask network proposes, in one forward pass, the region
the optimiser of :mod:`tfsal.explain.counterfactual` would search for; the inpainter and the
classifier then verify it.

References: D. Lenis, D. Major, M. Wimmer, A. Berg, G. Sluiter, K. Bühler, "Domain aware medical
image classifier interpretation by counterfactual impact analysis", Medical Image Computing and
Computer Assisted Intervention (MICCAI), 2020 (a network trained to predict the counterfactual
map in one pass); P. Dabkowski, Y. Gal, "Real time image saliency for black box classifiers",
Advances in Neural Information Processing Systems (NeurIPS), 2017 (a masking model trained with
the saliency objective itself).

The network g maps an image I to mask logits theta = g(I) on the optimiser's grid of ``cell`` x
``cell`` pixel cells (a 32nd of the working height: 8 px at 256 rows). g is either a head on the
classifier's own frozen feature maps at strides ``cell``, 2 ``cell`` and 4 ``cell``
(:func:`build_feature_mask_network`, as Dabkowski & Gal's masking model sits on a pre-trained
encoder) or a small network on the image (:func:`build_mask_network`). M = sigmoid(theta),
upsampled and fixed to 1 outside the organ, as :meth:`tfsal.explain.mask.MaskOptimiser.masks`
does. It is trained (``tfsal train explainer``, :mod:`tfsal.train.explainer`) over a data set's
training images by minimising the optimiser's own loss, per image

    L(g(I)) = l1 (phi + psi) + l2 tv(M) + l3 ar(M)

with phi, psi, tv and ar as in :mod:`tfsal.explain.mask` (the classifier sees the composite
M I + (1 - M) F with F the precomputed in-fill, straight-through; p(c | C) clipped at the hinge
``score_floor``), so a healthy image (p below the hinge) is taught an empty mask. At explanation
time the proposal goes through :func:`~tfsal.explain.verify.verified_explanations`: its cut is
inpainted by the inpainter and scored by the classifier, and grown until the decision flips,
exactly as the optimiser's result is. An image the classifier calls positive on which the cut is
empty starts from its cell of the lowest logit (:func:`seed_cells`), as an empty region cannot grow.

The network explains the class it was trained for (``target`` of its training, 1: the mass
class of a single sigmoid): asked for another, it refuses.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfsal.evaluation.metrics import DECISION_THRESHOLD
from tfsal.explain.base import Batch, Explainer
from tfsal.explain.counterfactual import load_inpainter_argument
from tfsal.explain.explanation import Explanation
from tfsal.explain.infill import as_infiller
from tfsal.explain.mask import MaskOptimiser, MaskSettings, default_cell
from tfsal.explain.verify import verified_explanations
from tfsal.models.classifier import feature_layers
from tfsal.util.checks import check_int

__all__ = ["DEFAULT_MASK_NETWORK", "SEED_LOGIT", "AmortisedExplainer", "build_feature_mask_network",
           "build_mask_network", "check_pairing", "feature_layers", "levels", "load_mask_network", "seed_cells"]

DEFAULT_MASK_NETWORK = "mask_network.keras"
"""The shipped mask network in ``saved_models/``: a feature head for the shipped classifier and
inpainter (``saved_models/README.md``)."""


def levels(height: int) -> int:
    """The network's strided levels at ``height`` rows: its cell 2 ** levels is the power of two
    nearest the optimiser's default cell (:func:`~tfsal.explain.mask.default_cell`: 8 px at 256 rows)."""
    return max(1, round(math.log2(default_cell(height))))


def build_mask_network(size: tuple[int, int] = (256, 192), filters: tuple[int, ...] | None = None,
                       context: int = 64, bias: float = 2.0, name: str = "mask_network") -> keras.Model:
    """A small fully convolutional network ``[B, H, W, 1] -> [B, ceil(H / c), ceil(W / c), 1]`` mask
    logits of any ``[H, W]``, c = 2 ** len(filters) (by default ``levels(size[0])`` widths from 16
    up, doubling to 64: 8 px cells at 256 rows, as the optimiser's): per level a strided and a plain
    3x3 convolution, then dilated 3x3 convolutions (rates 2, 4, 8) for context and a 1x1
    convolution whose bias starts at ``bias`` (every cell kept, as the optimiser's start keeps most
    of them)."""
    if filters is None:
        filters = tuple(min(64, 16 * 2 ** i) for i in range(levels(size[0])))
    image = keras.Input((None, None, 1), name="image")  # any size: ``size`` sets the depth only
    x = image
    for width in filters:
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    for rate in (2, 4, 8):
        x = keras.layers.Conv2D(context, 3, padding="same", dilation_rate=rate, activation="relu")(x)
    logits = keras.layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(bias), name="logits")(x)
    return keras.Model(image, logits, name=name)


def build_feature_mask_network(classifier: keras.Model, cell: int | None = None, width: int = 64,
                               bias: float = 2.0, name: str = "mask_network") -> keras.Model:
    """A head on a frozen copy of ``classifier``'s feature maps (:func:`feature_layers`):
    ``[B, H, W, 1]`` at the classifier's input size -> ``[B, ceil(H / cell), ceil(W / cell), 1]`` mask
    logits. Each map goes through a 1x1 convolution (32 channels) and is resized to the finest
    map's grid; then a 3x3 and a dilated 3x3 convolution (``width`` channels) and a 1x1 convolution
    whose bias starts at ``bias`` (every cell kept). The copy's weights are frozen and its batch
    normalisation runs in inference mode, so training the head never changes the classifier.

    Args:
        classifier: a flat Keras classifier (one model, no nested ones) with strided feature maps.
        cell: the mask cell in pixels; default ``2 ** levels(H)``, the optimiser's (8 px at 256 rows).
    """
    cell = cell or 2 ** levels(int(classifier.input_shape[1]))
    names = feature_layers(classifier, cell)
    backbone = keras.models.clone_model(classifier)
    backbone.set_weights(classifier.get_weights())
    backbone.trainable = False
    maps = [backbone.get_layer(n).output for n in names]
    grid = tuple(int(v) for v in maps[0].shape[1:3])
    parts = []
    for index, features in enumerate(maps):
        x = keras.layers.Conv2D(32, 1, activation="relu", name=f"head_reduce_{index}")(features)
        if tuple(x.shape[1:3]) != grid:
            x = keras.layers.Resizing(*grid, interpolation="bilinear", name=f"head_resize_{index}")(x)
        parts.append(x)
    x = keras.layers.Concatenate(name="head_concat")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="head_conv")(x)
    x = keras.layers.Conv2D(width, 3, padding="same", dilation_rate=2, activation="relu", name="head_context")(x)
    logits = keras.layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(bias), name="logits")(x)
    return keras.Model(backbone.input, logits, name=name)


def load_mask_network(mask_network=None) -> keras.Model:
    """A mask network as given (a Keras model), loaded from a ``.keras`` path, or the shipped one for None.

    Raises:
        TfsalError: the file is missing or not a Keras model.
    """
    if isinstance(mask_network, keras.Model):
        return mask_network
    from tfsal.models.loading import load_keras_model

    if mask_network is None:
        from tfsal.errors import TfsalError
        from tfsal.util.resources import saved_models_dir

        mask_network = saved_models_dir() / DEFAULT_MASK_NETWORK
        if not mask_network.is_file():
            raise TfsalError(f"{mask_network} is missing from this installation: train a mask network for your "
                             "classifier and inpainter with tfsal train explainer and pass it as mask_network")
    return load_keras_model(mask_network, "mask network")


def check_pairing(network: keras.Model, classifier) -> None:
    """Refuse a feature mask network whose frozen copy of a classifier is not ``classifier`` (its
    layers of the same names hold other weights, or ``classifier`` has none of them): its proposals
    would come from another network's features. An image network, or a classifier that is not a
    Keras model, cannot be checked.

    Raises:
        ValueError: the network was built on another classifier.
    """
    if not isinstance(classifier, keras.Model) or "head_conv" not in {layer.name for layer in network.layers}:
        return
    own = {layer.name: layer for layer in classifier.layers if layer.weights}
    shared = [layer for layer in network.layers if layer.weights and not layer.trainable]
    matching = [layer for layer in shared if layer.name in own
                and len(layer.weights) == len(own[layer.name].weights) and all(
                    a.shape == b.shape and np.array_equal(a, b) for a, b in zip(
                        (w.numpy() for w in layer.weights), (w.numpy() for w in own[layer.name].weights),
                        strict=True))]
    if not shared or len(matching) < len(shared):
        raise ValueError(f"this mask network was trained on the features of another classifier than "
                         f"{classifier.name!r}: train one for it with tfsal train explainer")


SEED_LOGIT = -8.0
"""The logit given to a seeded cell: sigmoid(-8) keeps 0.03 % of it."""


def seed_cells(theta, organ_grid, scores, threshold: float):
    """``theta`` with, on each image called positive (``scores`` >= 0.5) whose keep probability
    sigmoid(theta) reaches ``threshold`` in every organ cell (a proposal that deletes nothing), the
    organ cell of the lowest logit set to :data:`SEED_LOGIT`: the network's likeliest cell, from
    which the verification's growth starts (an empty region cannot grow). Graph-compatible."""
    inside = organ_grid > 0.5
    deletes = tf.reduce_any(inside & (tf.sigmoid(theta) < threshold), axis=[1, 2, 3])
    needs = (tf.cast(scores, tf.float32) >= DECISION_THRESHOLD) & ~deletes & tf.reduce_any(inside, axis=[1, 2, 3])
    flat = tf.reshape(tf.where(inside, theta, tf.fill(tf.shape(theta), float("inf"))), [tf.shape(theta)[0], -1])
    lowest = tf.reshape(tf.one_hot(tf.argmin(flat, axis=1), tf.shape(flat)[1], on_value=True, off_value=False),
                        tf.shape(theta))
    return tf.where(needs[:, None, None, None] & lowest, tf.minimum(theta, SEED_LOGIT), theta)


class AmortisedExplainer(Explainer):
    """One pass of a trained mask network, verified by the inpainter and the classifier (see the
    module docstring).

    Args:
        model: the classifier the network was trained for (any Keras model or callable, see
            :class:`~tfsal.explain.classifier_adapter.ClassifierAdapter`).
        inpainter: a Keras inpainter, a ``.keras`` path, an :class:`~tfsal.explain.infill.Infiller`,
            or None for the shipped one.
        mask_network: a Keras model from :func:`build_feature_mask_network` or
            :func:`build_mask_network` (trained by ``tfsal train explainer``) or a ``.keras`` path;
            None is the shipped one, made for the shipped classifier and inpainter.
        threshold: the result mask is ``M < threshold``.
        grow_steps: dilate a result that leaves a positive decision standing by half a cell up
            to this many times, keeping the first that flips it (as the optimiser's); 0 turns it off.
        target: the class the network was trained to explain; others are refused.
        batch_size, logits, activation, preprocess, input_size: as :class:`~tfsal.explain.base.Explainer`.
    """

    method = "amortised"

    def __init__(self, model, inpainter=None, mask_network=None, threshold: float = 0.5, grow_steps: int = 8,
                 target: int = 1, **kwargs):
        super().__init__(model, **kwargs)
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1). Received: threshold={threshold}")
        self.threshold = float(threshold)
        self.grow_steps = check_int("grow_steps", grow_steps, minimum=0)
        self.target = check_int("target", target, minimum=0)
        self.network = load_mask_network(mask_network)
        check_pairing(self.network, model)
        self.infiller = as_infiller(load_inpainter_argument(inpainter))
        self._grids: dict[int, MaskOptimiser] = {}

    def provenance(self) -> dict:
        """The base's, with the mask network identified as the models are."""
        from tfsal.models.loading import model_identity

        return {**super().provenance(), "mask_network": model_identity(self.network)}

    def proposal(self, images, organ, scores=None):
        """``(keep [B, h, w, 1], cell)``: the network's soft keep masks at the working size. With the
        classifier's ``scores`` [B] (p(target)), an image called positive whose proposal deletes no
        cell gets its most-deleted organ cell (:func:`seed_cells`), so the growth has a region to grow."""
        size = tuple(images.shape[1:3])
        theta = self.network(images, training=False)
        cell = math.ceil(size[0] / int(theta.shape[1]))
        if cell not in self._grids:  # the optimiser's grid and upsampling, with this cell
            self._grids[cell] = MaskOptimiser(self.classifier, self.infiller, MaskSettings(cell=cell))
        grid = self._grids[cell]
        organ_grid = grid.organ_grid(organ, size)
        if scores is not None and self.grow_steps:
            theta = seed_cells(theta, organ_grid, scores, self.threshold)
        _, keep = grid.masks(theta, organ, organ_grid, cell)
        return keep, cell

    def explain_batch(self, batch: Batch, originals: np.ndarray, organ: np.ndarray) -> list[Explanation]:
        other = sorted({int(t) for t in batch.targets} - {self.target})
        if other:
            raise ValueError(f"this mask network explains class {self.target}; asked for {other}")
        keep, cell = self.proposal(batch.images, batch.organ, batch.scores)
        return verified_explanations(self, batch, originals, organ, keep.numpy(), np.zeros((len(originals), 0)),
                                     cell, self.threshold, self.grow_steps)
