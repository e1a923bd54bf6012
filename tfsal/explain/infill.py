"""The inpainter as the marginaliser: fill holes of working-size images with healthy tissue.

The inpainter has a fixed input size (the shipped one 256x192); images at another working size
are resized to it and the fill is resized back, inside the graph.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["Infiller"]


class Infiller:
    """Wraps an inpainter ``{"image", "mask"} -> prediction`` (mask 1 = keep, 0 = hole)."""

    def __init__(self, inpainter):
        self.inpainter = inpainter
        shape = inpainter.input_shape
        shape = shape["image"] if isinstance(shape, dict) else shape[0] if isinstance(shape, list) else shape
        self.size = (shape[1], shape[2]) if shape[1] and shape[2] else None
        # One compiled graph for the model's forward pass: called eagerly, a Keras model
        # dispatches layer by layer, which cost more than the pass itself (docs/benchmarks.md).
        self._predict = tf.function(lambda image, mask: inpainter({"image": image, "mask": mask}, training=False),
                                    reduce_retracing=True)

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
