"""The mass classifier: ``keras.applications.MobileNet`` on one-channel mammograms.

As in the paper's "Image Classifier" paragraph: a MobileNet (Howard et al. 2017) binary
classifier, healthy (0) vs with masses (1), pre-trained on patches (background vs mass)
because no ImageNet weights are used. ``backbone="mobilenet_v3_small"`` swaps in another
network family under the same head: MobileNetV3-Small (Howard et al., "Searching for
MobileNetV3", ICCV 2019; inverted residual blocks with squeeze-and-excitation and hard-swish),
for asking whether the network, not the data, limits a classifier. The network is flat (no
nested models), so CAM and Grad-CAM find its last convolution (MobileNet's
``conv_pw_13_relu``; :func:`last_features` for any backbone) and the dense layer after the
global pool. The pool averages (the paper's MobileNet) or, with ``pooling="max"``, takes each
feature's largest value, which keeps a small lesion's evidence from being averaged away over a
large healthy image (multiple-instance pooling; CAM applies to both).

Input: float32 ``[B, H, W, 1]`` in [0, 1] (as :func:`tfsal.data.image_io.read_image` gives);
the model rescales to [-1, 1] itself. Output: ``[B, 1]`` probability of a mass.
"""

from __future__ import annotations

import math
import os

import keras

from tfsal.models.card import warn_if_weak
from tfsal.models.loading import load_keras_model

DEFAULT_SIZE = (256, 192)
DEFAULT_ALPHA = 0.25
POOLINGS = ("avg", "max")
BACKBONES = ("mobilenet", "mobilenet_v3_small")
GLOBAL_POOL = "global_pool"
LAST_CONV_LAYER = "conv_pw_13_relu"
OUTPUT_LAYER = "mass_probability"
# Keras' default BN momentum (0.99) lets the moving statistics lag far behind the weights in
# short runs, so inference-mode predictions collapse to one value for many epochs; 0.9 tracks.
BATCHNORM_MOMENTUM = 0.9


def build_classifier(size=DEFAULT_SIZE, alpha: float = DEFAULT_ALPHA, dropout: float = 0.2,
                     pooling: str = "avg", backbone: str = "mobilenet") -> keras.Model:
    """A MobileNet (or MobileNetV3-Small) with one sigmoid output for ``[H, W, 1]`` images in [0, 1].

    Args:
        size: input ``(height, width)``, each at least 32 (patches for pre-training and whole
            images share every weight, so one model's weights load into the other's).
        alpha: width multiplier of the backbone.
        dropout: dropout rate before the output layer.
        pooling: ``"avg"`` (global average) or ``"max"`` (global max) over the last features;
            it has no weights, so a model of one pooling loads the other's weights.
        backbone: ``"mobilenet"`` (the paper's MobileNet v1) or ``"mobilenet_v3_small"``.

    Returns:
        An uncompiled ``keras.Model`` named ``tfsal_<backbone>``.

    Raises:
        ValueError: a bad size, alpha, dropout, pooling or backbone.
    """
    height, width = (int(v) for v in size)
    if min(height, width) < 32:
        raise ValueError(f"size must be at least 32x32. Received: size={size}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive. Received: alpha={alpha}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}. Received: backbone={backbone!r}")
    inputs = keras.Input((height, width, 1), name="image")
    scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="to_unit_range")(inputs)
    if backbone == "mobilenet":
        network = keras.applications.MobileNet(
            input_tensor=scaled, alpha=alpha, include_top=False, weights=None, pooling=None)
    else:  # its own rescaling off: the input is already in [-1, 1]
        network = keras.applications.MobileNetV3Small(
            input_tensor=scaled, alpha=alpha, include_top=False, weights=None, pooling=None,
            include_preprocessing=False)
    pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
    features = pool(name=GLOBAL_POOL)(network.output)
    features = keras.layers.Dropout(dropout, name="dropout")(features)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)(features)
    model = keras.Model(inputs, outputs, name=f"tfsal_{backbone}")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    return model


def last_features(model: keras.Model):
    """The last feature maps of a :func:`build_classifier` model (any backbone): the global pool's input."""
    return model.get_layer(GLOBAL_POOL).input


def feature_layers(classifier: keras.Model, cell: int) -> list[str]:
    """The names of the last layers of a flat Keras ``classifier`` whose outputs are feature maps at
    strides ``cell``, ``2 cell`` and ``4 cell`` of its input (each map ``ceil(H / stride)`` rows and
    columns), finest first; strides the classifier has no map at are left out.

    Raises:
        ValueError: no map at stride ``cell`` (a classifier without strided layers, or a nested one).
    """
    height, width = (int(v) for v in classifier.input_shape[1:3])
    found: dict[int, str] = {}
    for layer in classifier.layers:
        shape = getattr(layer, "output", None) is not None and tuple(layer.output.shape)
        if not shape or len(shape) != 4 or isinstance(layer, keras.layers.InputLayer):
            continue
        for stride in (cell, 2 * cell, 4 * cell):
            if shape[1:3] == (math.ceil(height / stride), math.ceil(width / stride)):
                found[stride] = layer.name  # the last one at this stride wins
    if cell not in found:
        raise ValueError(f"the classifier {classifier.name!r} has no feature map at stride {cell} of its "
                         f"{height}x{width} input (no strided layers, or a nested model)")
    return [found[stride] for stride in sorted(found)]


def load_classifier(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """Load a classifier saved as ``.keras`` (or any Keras model file), naming the file on error.

    Logs a warning when a model card beside the file (``tfsal train all``) says the classifier is
    weak (its validation AUC interval includes 0.5).
    """
    model = load_keras_model(path, "classifier", compile=compile)
    warn_if_weak(path)
    return model


def load_default_classifier() -> keras.Model:
    """The shipped classifier, ``saved_models/classifier.keras`` (see its README)."""
    from tfsal.util.resources import DEFAULT_CLASSIFIER, saved_model_path

    return load_classifier(saved_model_path(DEFAULT_CLASSIFIER))
