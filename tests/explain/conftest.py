"""Tiny real models for the explainer tests (64x64), built in-process: no file, no mock.

``blob_classifier`` is a hand-set CNN that scores bright blobs (a "mass detector"): a 5x5 local
mean, ReLU above 0.7, global average pooling, a sigmoid unit. ``mean_inpainter`` is a real
inpainter of the normalised-convolution kind: each hole is filled with the mean of the kept
pixels around it, so a bright blob inside a hole disappears. Together they give explanations
with a known right answer.
"""

import keras
import numpy as np
import pytest

from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter

SIZE = 64
BLOB_CENTRE, BLOB_RADIUS = (40, 24), 5


class _MeanFill(keras.layers.Layer):
    def call(self, image, mask):
        pool = keras.layers.AveragePooling2D(pool_size=31, strides=1, padding="same")
        return pool(image * mask) / keras.ops.maximum(pool(mask), 1e-3)


def _mean_inpainter(size=SIZE):
    image = keras.Input((size, size, 1), name="image")
    mask = keras.Input((size, size, 1), name="mask")
    return keras.Model({"image": image, "mask": mask}, _MeanFill()(image, mask), name="mean_inpainter")


def _blob_classifier(size=SIZE, pools: int = 0):
    """The blob detector; ``pools`` > 0 average-pools its map ``pools`` times by 2 before the global
    average (layers ``pool_2``, ``pool_4``...): the same scores, with feature maps at those strides."""
    inputs = keras.Input((size, size, 1), name="image")
    local = keras.layers.Conv2D(1, 5, padding="same", activation="relu", name="local_mean")(inputs)
    for level in range(1, pools + 1):
        local = keras.layers.AveragePooling2D(2, name=f"pool_{2 ** level}")(local)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(local)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(pooled)
    model = keras.Model(inputs, outputs, name="blob_classifier")
    model.get_layer("local_mean").set_weights([np.full((5, 5, 1, 1), 1 / 25, np.float32), np.array([-0.7])])
    model.get_layer("score").set_weights([np.array([[2000.0]], np.float32), np.array([-2.0], np.float32)])
    return model


def organ(size=SIZE):
    y, x = np.mgrid[0:size, 0:size]
    return ((y - size / 2) / (0.47 * size)) ** 2 + (x / (0.9 * size)) ** 2 < 1


def mammogram_like(seed=0, blob=True, size=SIZE):
    """Textured tissue in a half-ellipse on black, with a bright disc (the 'mass') when ``blob``."""
    rng = np.random.default_rng(seed)
    image = np.where(organ(size), 0.35 + 0.1 * rng.random((size, size)), 0.0)
    if blob:
        y, x = np.mgrid[0:size, 0:size]
        image[(y - BLOB_CENTRE[0]) ** 2 + (x - BLOB_CENTRE[1]) ** 2 <= BLOB_RADIUS ** 2] = 0.95
    return image.astype(np.float32)[:, :, None]


def blob_pixels(size=SIZE):
    y, x = np.mgrid[0:size, 0:size]
    return (y - BLOB_CENTRE[0]) ** 2 + (x - BLOB_CENTRE[1]) ** 2 <= BLOB_RADIUS ** 2


@pytest.fixture(scope="session")
def blob_classifier():
    return _blob_classifier()


@pytest.fixture(scope="session")
def mean_inpainter():
    return _mean_inpainter()


@pytest.fixture(scope="session")
def tiny_classifier():
    return build_classifier((SIZE, SIZE))


@pytest.fixture(scope="session")
def tiny_inpainter():
    return build_inpainter((SIZE, SIZE), 4, 8)
