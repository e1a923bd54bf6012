"""SAL, CAM and Grad-CAM: they point at the mass, thresholds keep their share of the organ."""

import numpy as np
import pytest

from tfsal.evaluation.metrics import roc_auc
from tfsal.explain import CAMExplainer, GradCAMExplainer, SaliencyExplainer, percentile_mask
from tfsal.explain.baselines import last_conv_layer
from tfsal.models.classifier import LAST_CONV_LAYER, build_classifier

from .conftest import blob_pixels, mammogram_like, organ

BASELINES = (SaliencyExplainer, CAMExplainer, GradCAMExplainer)


@pytest.mark.parametrize("cls", BASELINES)
def test_the_map_peaks_on_the_mass(cls, blob_classifier):
    (e,) = cls(blob_classifier, percentile=99).explain(mammogram_like(0)[None], organ_masks=[organ()])
    peak = np.unravel_index(np.argmax(e.saliency), e.saliency.shape)
    assert blob_pixels()[peak]
    assert (e.mask & blob_pixels()).sum() > 0.5 * e.mask.sum()


@pytest.mark.parametrize("cls", BASELINES)
@pytest.mark.parametrize("percentile", [50, 75, 90])
def test_percentile_keeps_its_share_of_the_organ(cls, percentile, blob_classifier):
    (e,) = cls(blob_classifier, percentile=percentile).explain(mammogram_like(3)[None], organ_masks=[organ()])
    assert not (e.mask & ~e.organ).any()
    assert e.area_fraction >= (100 - percentile) / 100 - 0.01  # ties at the threshold are kept


@pytest.mark.parametrize("cls", BASELINES)
def test_with_an_inpainter_the_mask_is_inpainted_and_scored(cls, blob_classifier, mean_inpainter):
    (e,) = cls(blob_classifier, percentile=95, inpainter=mean_inpainter).explain(
        mammogram_like(0)[None], organ_masks=[organ()])
    assert e.score_counterfactual < e.score_original
    np.testing.assert_array_equal(e.counterfactual[~e.mask], mammogram_like(0)[..., 0][~e.mask])


def test_gradcam_finds_mobilenets_last_conv_layer_and_takes_another_by_name():
    model = build_classifier((64, 64))
    assert last_conv_layer(model).name == LAST_CONV_LAYER
    image = mammogram_like(0)[None]
    last = GradCAMExplainer(model).explain(image)[0].saliency
    earlier = GradCAMExplainer(model, layer="conv_pw_11_relu").explain(image)[0].saliency
    assert last.shape == earlier.shape == (64, 64)
    assert not np.allclose(last / last.max(), earlier / earlier.max(), atol=1e-3)


def test_cam_needs_a_pooled_dense_head(blob_classifier):
    import keras

    inputs = keras.Input((64, 64, 1))
    flat = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs)))
    with pytest.raises(ValueError, match="global pool"):
        CAMExplainer(keras.Model(inputs, flat))


def test_cam_of_a_max_pooled_classifier_is_the_same_evidence_map():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(4)
    averaged, maxed = build_classifier((64, 64)), build_classifier((64, 64), pooling="max")
    maxed.set_weights(averaged.get_weights())  # the same features and dense weights, another pool
    images = tf.constant(mammogram_like(0)[None])
    targets, organs = tf.constant([1]), tf.ones_like(images)
    np.testing.assert_allclose(CAMExplainer(maxed).saliency_maps(images, targets, organs).numpy(),
                               CAMExplainer(averaged).saliency_maps(images, targets, organs).numpy(), rtol=1e-5)


def test_cam_of_the_healthy_class_is_the_negated_map(blob_classifier):
    image = mammogram_like(0)[None]
    mass = CAMExplainer(blob_classifier).explain(image, targets=1)[0].saliency
    healthy = CAMExplainer(blob_classifier).explain(image, targets=0)[0].saliency
    np.testing.assert_allclose(healthy, -mass, rtol=1e-5, atol=1e-6)


def test_percentile_mask_on_known_values():
    saliency = np.arange(16, dtype=np.float32).reshape(4, 4)
    inside = np.ones((4, 4), bool)
    assert percentile_mask(saliency, inside, 75).sum() == 4
    assert percentile_mask(saliency, inside, 0).all()
    inside[:2] = False
    assert (percentile_mask(saliency, inside, 50) == (saliency >= 11.5) & inside).all()
    # ties are broken so a method keeps exactly its share: a constant map keeps 10 % at P = 90, not all
    assert percentile_mask(np.ones((4, 4)), inside, 90).sum() == round(0.1 * inside.sum())
    assert percentile_mask(np.ones((4, 4)), inside, 50).sum() == 4
    assert not (percentile_mask(np.ones((4, 4)), inside, 50) & ~inside).any()
    assert not percentile_mask(saliency, np.zeros((4, 4), bool), 50).any()
    with pytest.raises(ValueError):
        percentile_mask(saliency, inside, 101)


def test_gradcam_on_a_pooled_dense_model_is_relu_of_cam_up_to_scale():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(3)  # the convolutions' initial weights: the same whatever ran before
    model = build_classifier((128, 128))  # last convolution 4x4
    rng = np.random.default_rng(3)
    dense = model.layers[-1]
    dense.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in dense.get_weights()])
    images = tf.constant(rng.random((2, 128, 128, 1)).astype(np.float32))
    targets, organs = tf.constant([1, 1]), tf.ones_like(images)
    cam = CAMExplainer(model).saliency_maps(images, targets, organs).numpy()
    grad = GradCAMExplainer(model).saliency_maps(images, targets, organs).numpy()
    assert (cam < 0).any() and (cam > 0).any()
    # a_k = w_k / (h w): Grad-CAM is ReLU(CAM) / 16 at the 4x4 convolution, exactly
    np.testing.assert_allclose(grad, np.maximum(cam, 0) / 16, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, options", [("gradcam-early", {}), ("smoothgrad", {"samples": 4}),
                                           ("sal-blur", {}), ("ig", {"steps": 8}), ("occlusion", {}),
                                           ("rise", {"masks": 64, "cells": 4}),
                                           ("extremal", {"steps": 30, "areas": (0.05,), "cell": 4})])
def test_every_new_baseline_puts_the_mass_first(name, options, blob_classifier, mean_inpainter):
    from tfsal.explain import registry

    if name == "gradcam-early":
        model = build_classifier((64, 64))
        explainer = registry.get(name).load()(model)
        assert explainer.layer.output.shape[1] >= 2 * last_conv_layer(model).output.shape[1]
        return
    if registry.get(name).uses_inpainter:
        options = {**options, "inpainter": mean_inpainter}
    image = mammogram_like()
    explanation = registry.get(name).load()(blob_classifier, **options).explain(image[None], targets=1,
                                                                               organ_masks=organ()[None])[0]
    saliency, blob, inside = explanation.saliency, blob_pixels(), organ()
    # scale-free (RISE's map carries an offset, the mean score): the map ranks blob pixels above
    # the rest of the organ, and its top 2 % of the organ lies mostly on the blob
    assert roc_auc(blob[inside], saliency[inside]) > 0.9, name
    top = saliency >= np.quantile(saliency[inside], 0.98)
    assert (top & blob).sum() > 0.6 * (top & inside).sum(), name


def test_extremal_area_term_and_its_gradient_equal_the_sorted_form():
    """The area constraint ||sort(m) - r||^2 without the sort: same value, same gradient, ties
    (the flat start of the optimisation) included."""
    import tensorflow as tf

    from tfsal.explain.mask import top_count_mask

    rng = np.random.default_rng(1)
    flat = np.round(rng.random((4, 300)), 1).astype(np.float32)  # many ties
    flat[0] = 0.5
    flat = tf.constant(flat)
    wanted = tf.constant([0, 7, 30, 299], tf.int32)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(flat)
        ranked = tf.sort(flat, direction="DESCENDING")
        sorted_form = tf.reduce_mean(tf.square(ranked - tf.sequence_mask(wanted, 300, tf.float32)), axis=1)
        reference = top_count_mask(tf.stop_gradient(flat), wanted)
        new_form = tf.reduce_mean(tf.square(flat - reference), axis=1)
    np.testing.assert_allclose(new_form.numpy(), sorted_form.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(tape.gradient(new_form, flat).numpy(), tape.gradient(sorted_form, flat).numpy())
    np.testing.assert_array_equal(reference.numpy().sum(axis=1), wanted.numpy())
