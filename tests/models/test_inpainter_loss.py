import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter_loss import (
    DEFAULT_WEIGHTS,
    InpaintingLoss,
    classifier_feature_extractor,
    gram_matrix,
    total_variation_loss,
)

TERMS = ("valid", "hole", "perceptual", "style", "tv")


def _tiny_extractor(channels=1):
    inputs = keras.Input((None, None, channels))
    a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="a")(inputs)
    b = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="b")(a)
    model = keras.Model(inputs, [a, b])
    model.trainable = False
    return model


def _case(seed=0, size=(8, 6)):
    rng = np.random.default_rng(seed)
    image = rng.random((2, *size, 1)).astype("float32")
    mask = np.ones((2, *size, 1), "float32")
    mask[:, 2:5, 1:4] = 0
    return image, mask


def _parts(loss, *args):
    total, parts = loss(*args)
    return float(total), {k: float(v) for k, v in parts.items()}


def test_prediction_equal_to_image_leaves_only_the_image_s_own_variation():
    image, mask = _case()
    total, parts = _parts(InpaintingLoss(_tiny_extractor()), image, mask, image)
    assert all(parts[k] == pytest.approx(0.0, abs=1e-7) for k in ("valid", "hole", "perceptual", "style"))
    assert parts["tv"] == pytest.approx(float(total_variation_loss(image, mask))) and parts["tv"] > 0
    flat = np.full_like(image, 0.3)
    total, parts = _parts(InpaintingLoss(_tiny_extractor()), flat, mask, flat)
    assert total == pytest.approx(0.0, abs=1e-7) and all(parts[k] == pytest.approx(0.0, abs=1e-7) for k in TERMS)


def test_prediction_wrong_only_in_the_hole():
    image, mask = _case()
    prediction = np.where(mask == 0, 1.0 - image, image)
    _, parts = _parts(InpaintingLoss(_tiny_extractor()), image, mask, prediction)
    assert parts["valid"] == 0 and parts["hole"] > 0 and parts["perceptual"] > 0 and parts["style"] > 0
    assert parts["tv"] > 0


def test_valid_and_hole_l1_by_hand():
    image = np.zeros((1, 2, 2, 1), "float32")
    prediction = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 2, 2, 1)
    mask = np.array([1.0, 0.0, 0.0, 1.0], "float32").reshape(1, 2, 2, 1)
    _, parts = _parts(InpaintingLoss(), image, mask, prediction)
    assert parts["valid"] == pytest.approx((1 + 4) / 4) and parts["hole"] == pytest.approx((2 + 3) / 4)


def test_gram_matrix_by_hand():
    features = np.array([[1.0, 2.0], [3.0, 4.0]], "float32").reshape(1, 1, 2, 2)  # 2 pixels, 2 channels
    expected = np.array([[1 + 9, 2 + 12], [2 + 12, 4 + 16]]) / (2 * 1 * 2)
    np.testing.assert_allclose(gram_matrix(features).numpy(), expected[None])


def test_total_variation_only_counts_pairs_in_the_dilated_hole():
    image = np.array([0.0, 1.0, 5.0, 3.0], "float32").reshape(1, 1, 4, 1)
    prediction = np.array([9.0, 9.0, 3.0, 9.0], "float32").reshape(1, 1, 4, 1)
    mask = np.array([1.0, 1.0, 0.0, 1.0], "float32").reshape(1, 1, 4, 1)
    # composite [0, 1, 3, 3]; dilated hole = pixels 1, 2, 3; pairs (1,2): 2, (2,3): 0; 4 elements
    _, parts = _parts(InpaintingLoss(), image, mask, prediction)
    assert parts["tv"] == pytest.approx(2 / 4)
    assert float(total_variation_loss(image, np.ones_like(mask))) == 0


def test_total_is_the_weighted_sum_and_weights_change_it():
    image, mask = _case(1)
    prediction = np.random.default_rng(2).random(image.shape).astype("float32")
    extractor = _tiny_extractor()
    total, parts = _parts(InpaintingLoss(extractor), image, mask, prediction)
    assert total == pytest.approx(sum(DEFAULT_WEIGHTS[k] * parts[k] for k in TERMS), rel=1e-5)
    for term in TERMS:
        changed, _ = _parts(InpaintingLoss(extractor, weights={term: DEFAULT_WEIGHTS[term] + 1.0}), image, mask,
                            prediction)
        assert changed == pytest.approx(total + parts[term], rel=1e-5) and changed != total


def test_without_extractor_perceptual_and_style_are_zero():
    image, mask = _case(3)
    prediction = 1.0 - image
    _, parts = _parts(InpaintingLoss(None), image, mask, prediction)
    assert parts["perceptual"] == 0 and parts["style"] == 0 and parts["hole"] > 0


def test_grayscale_is_repeated_for_a_three_channel_extractor():
    image, mask = _case(4)
    _, parts = _parts(InpaintingLoss(_tiny_extractor(channels=3)), image, mask, 1.0 - image)
    assert parts["perceptual"] > 0


def test_gradient_with_respect_to_the_prediction_is_finite():
    image, mask = _case(5)
    prediction = tf.Variable(np.full(image.shape, 0.5, "float32"))
    with tf.GradientTape() as tape:
        total, _ = InpaintingLoss(_tiny_extractor())(image, mask, prediction)
    grad = tape.gradient(total, prediction).numpy()
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_classifier_extractor_is_frozen_and_gives_the_named_layers():
    classifier = build_classifier((32, 32))
    names = ("conv_pw_1_relu", "conv_pw_3_relu")
    extractor = classifier_feature_extractor(classifier, names)
    assert extractor.trainable_weights == [] and not extractor.trainable
    assert classifier.trainable and classifier.trainable_weights  # the classifier is left alone
    x = np.random.default_rng(6).random((1, 32, 32, 1)).astype("float32")
    reference = keras.Model(classifier.input, [classifier.get_layer(n).output for n in names])
    for got, expected in zip(extractor(x), reference(x), strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)
    _, parts = _parts(InpaintingLoss(extractor), x, np.ones_like(x), 1.0 - x)
    assert parts["perceptual"] > 0


def test_unknown_layer_name_is_rejected():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs), name="tiny")
    with pytest.raises(ValueError, match=r"`layer_names` must name layers of 'tiny'; not found: \['nope'\]"):
        classifier_feature_extractor(model, ("conv", "nope"))


@pytest.mark.parametrize("weights, message", [
    ({"ssim": 1.0}, r"Unknown loss terms \['ssim'\]; allowed: \['valid', 'hole', 'perceptual', 'style', 'tv'\]"),
    ({"hole": -1.0}, r"Loss weights must be non-negative. Received: weights=\{'hole': -1.0\}"),
])
def test_bad_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        InpaintingLoss(None, weights)
