"""Model-agnostic explanation: model kinds, output kinds, channels and input sizes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsal.explain import CounterfactualExplainer, SaliencyExplainer, registry
from tfsal.explain.classifier_adapter import ClassifierAdapter

from .conftest import blob_pixels, mammogram_like, organ


def _conv_head(inputs, units, activation):
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)  # a second stage, for Grad-CAM's earlier block
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.layers.Dense(units, activation=activation)(x)


def functional(units=1, activation="sigmoid", channels=1, size=64):
    inputs = keras.Input((size, size, channels))
    return keras.Model(inputs, _conv_head(inputs, units, activation))


def test_sequential_and_subclassed_models_and_plain_callables(mean_inpainter):
    sequential = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                                   keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(1, activation="sigmoid")

        def call(self, x):
            return self.dense(self.pool(self.conv(x)))

    subclassed = Subclassed()
    subclassed(np.zeros((1, 64, 64, 1), np.float32))

    def plain(x):
        return tf.sigmoid(20.0 * (tf.reduce_max(x, axis=[1, 2]) - 0.9))

    image = mammogram_like(0)[None]
    for model in (sequential, subclassed, plain):
        (e,) = CounterfactualExplainer(model, inpainter=mean_inpainter, steps=3, cell=4).explain(image)
        assert e.saliency.shape == (64, 64) and np.isfinite(e.saliency).all()
    for model in (sequential, plain):
        (e,) = SaliencyExplainer(model).explain(image)
        assert np.isfinite(e.saliency).all()
    with pytest.raises(ValueError, match="functional or Sequential"):
        registry.get("gradcam").load()(subclassed)
    with pytest.raises(ValueError, match=r"no layer with 2 times the resolution.*layer="):
        registry.get("gradcam-early").load()(sequential)  # one conv stage only: no earlier block


def test_output_kinds_and_default_targets():
    image = mammogram_like(0)[None]
    sigmoid = ClassifierAdapter(functional(1, "sigmoid"))
    softmax = ClassifierAdapter(functional(3, "softmax"))
    multilabel = ClassifierAdapter(functional(4, "sigmoid"))
    for adapter, k in ((sigmoid, 2), (softmax, 3), (multilabel, 4)):
        adapter.resolve(image)
        p = adapter.probabilities(image)
        assert adapter.num_classes(p) == k
    assert (softmax.activation, multilabel.activation) == ("softmax", "sigmoid")
    p = softmax.probabilities(image).numpy()
    assert softmax.default_targets(p)[0] == p.argmax()
    assert sigmoid.default_targets(sigmoid.probabilities(image).numpy())[0] == 1
    p1 = sigmoid.probabilities(image)
    np.testing.assert_allclose(sigmoid.target_probability(p1, [0]), 1 - p1[:, 0], atol=1e-7)


def test_softmax_detected_from_outputs_of_a_callable():
    def softmax_callable(x):
        m = tf.reduce_mean(x, axis=[1, 2, 3])
        return tf.nn.softmax(tf.stack([m, 2 * m, -m], axis=1))

    adapter = ClassifierAdapter(softmax_callable)
    adapter.resolve(mammogram_like(0)[None])
    assert adapter.activation == "softmax"


def test_logits_flag_gives_the_probability_models_explanation(mean_inpainter):
    probabilities = functional(3, "softmax")
    # the same network without its softmax: same weights, logits out
    pre = keras.Model(probabilities.inputs, keras.layers.Dense(3)(probabilities.layers[-2].output))
    pre.layers[-1].set_weights(probabilities.layers[-1].get_weights())
    image = np.stack([mammogram_like(0), mammogram_like(1)])
    a = SaliencyExplainer(probabilities).explain(image, targets=[2, 1])
    b = SaliencyExplainer(pre, logits=True, activation="softmax").explain(image, targets=[2, 1])
    for x, y in zip(a, b, strict=True):
        assert x.score_original == pytest.approx(y.score_original, abs=1e-6)
        np.testing.assert_allclose(x.saliency, y.saliency, rtol=1e-4, atol=1e-9)
    c = SaliencyExplainer(pre, logits=False, activation="softmax").explain(image, targets=[2, 1])
    assert c[0].score_original != pytest.approx(a[0].score_original, abs=1e-4)


def test_three_channel_model_and_other_input_size(blob_classifier, mean_inpainter):
    # a 3-channel model of 48x48 explains 64x64 grayscale images; the maps come back at 64x64
    model = functional(1, "sigmoid", channels=3, size=48)
    explanations = CounterfactualExplainer(model, inpainter=mean_inpainter, steps=3, cell=2).explain(
        np.stack([mammogram_like(0), mammogram_like(1)]))
    assert all(e.saliency.shape == e.counterfactual.shape == (64, 64) for e in explanations)
    for name in ("sal", "cam", "gradcam"):
        (e,) = registry.get(name).load()(model).explain(mammogram_like(0)[None])
        assert e.saliency.shape == (64, 64)


def test_an_image_larger_than_the_model_is_explained_at_its_own_size(blob_classifier, mean_inpainter):
    big = tf.image.resize(mammogram_like(0)[None], (128, 128)).numpy()
    (e,) = CounterfactualExplainer(blob_classifier, inpainter=mean_inpainter, steps=40, cell=2).explain(big)
    assert e.mask.shape == (128, 128) and e.score_counterfactual < 0.5
    blob = tf.image.resize(blob_pixels()[None, :, :, None].astype(np.float32), (128, 128)).numpy()[0, :, :, 0] > 0.5
    assert e.mask.any() and (e.mask & blob).sum() > 0.8 * e.mask.sum()


def test_images_of_several_sizes_in_one_call(blob_classifier, mean_inpainter):
    images = [mammogram_like(0), tf.image.resize(mammogram_like(1)[None], (80, 96)).numpy()[0]]
    explanations = SaliencyExplainer(blob_classifier, batch_size=4).explain(images)
    assert [e.saliency.shape for e in explanations] == [(64, 64), (80, 96)]


def test_bad_targets_and_images_are_refused(blob_classifier):
    explainer = SaliencyExplainer(blob_classifier)
    with pytest.raises(ValueError, match="out of range"):
        explainer.explain(mammogram_like(0)[None], targets=2)
    with pytest.raises(ValueError, match="NaN"):
        explainer.explain(np.full((1, 64, 64, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="expected 1 or 2"):
        explainer.explain(np.stack([mammogram_like(0)] * 2), targets=[1, 1, 1])
    with pytest.raises(ValueError, match="organ mask 0"):
        explainer.explain(mammogram_like(0)[None], organ_masks=[organ()[:10]])


def rgb_softmax_models(size=64):
    """A user's RGB classifier with three softmax classes, as a Sequential and a functional model."""
    sequential = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                                   keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
                                   keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    return {"sequential": sequential, "functional": functional(3, "softmax", channels=3, size=size)}


@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("name", [n for n in registry.names() if not registry.get(n).for_one_classifier])
def test_rgb_softmax_three_classes_explained_for_a_chosen_class(kind, name, mean_inpainter):
    model = rgb_softmax_models()[kind]
    rgb = np.repeat(np.stack([mammogram_like(0), mammogram_like(1)]), 3, axis=-1)  # a user's RGB images
    explanations = registry.get(name).build(model, inpainter=mean_inpainter, steps=3).explain(rgb, targets=[2, 0])
    expected = model.predict(rgb, verbose=0)
    assert [e.target for e in explanations] == [2, 0]
    assert explanations[0].score_original == pytest.approx(float(expected[0, 2]), abs=1e-5)
    assert explanations[1].score_original == pytest.approx(float(expected[1, 0]), abs=1e-5)
    assert all(e.saliency.shape == (64, 64) for e in explanations)
