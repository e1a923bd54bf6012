"""The amortised explainer's head on the classifier's frozen feature maps
(:func:`tfsal.explain.amortised.build_feature_mask_network`): which maps it takes, that training it
leaves the classifier as it was, and that it learns where the blob is from a classifier with strided
feature maps (the blob detector of ``conftest.py`` with its map pooled to strides 2, 4 and 8)."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from tfsal.errors import TfsalError
from tfsal.explain.amortised import (
    SEED_LOGIT,
    AmortisedExplainer,
    build_feature_mask_network,
    check_pairing,
    feature_layers,
    seed_cells,
)
from tfsal.models.classifier import build_classifier
from tfsal.models.inpainter import build_inpainter
from tfsal.train.explainer import ExplainerSettings, train_explainer

from .conftest import SIZE, _blob_classifier
from .test_amortised import _blob_image, _centre, blob_data  # noqa: F401 (a fixture)


def _strided_blob_classifier():
    """The blob detector of ``conftest.py`` with its map pooled to strides 2, 4 and 8: the same
    scores, and feature maps at the strides a head takes."""
    return _blob_classifier(pools=3)


def test_the_head_takes_the_last_maps_at_one_two_and_four_cells():
    mobilenet = build_classifier((SIZE, SIZE))  # cell 2 at 64 rows
    assert feature_layers(mobilenet, 2) == ["conv_pw_1_relu", "conv_pw_3_relu", "conv_pw_5_relu"]
    assert feature_layers(build_classifier((256, 192)), 8) == ["conv_pw_5_relu", "conv_pw_11_relu",
                                                               "conv_pw_13_relu"]
    assert feature_layers(_strided_blob_classifier(), 2) == ["pool_2", "pool_4", "pool_8"]
    network = build_feature_mask_network(mobilenet)
    assert tuple(network(np.zeros((2, SIZE, SIZE, 1), np.float32)).shape) == (2, 32, 32, 1)


def test_a_classifier_without_strided_maps_gets_the_image_network(blob_classifier):
    with pytest.raises(ValueError, match="no feature map at stride 2"):
        feature_layers(blob_classifier, 2)


def test_training_the_head_leaves_the_classifier_as_it_was():
    classifier = build_classifier((SIZE, SIZE))
    before = [w.copy() for w in classifier.get_weights()]
    network = build_feature_mask_network(classifier)
    assert len(network.trainable_weights) == 12  # the head's six convolutions only
    import tensorflow as tf

    images = np.random.default_rng(0).random((4, SIZE, SIZE, 1)).astype(np.float32)
    frozen = [w.copy() for w in network.get_weights()]
    optimizer = keras.optimizers.Adam(1e-2)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(network(images, training=True) ** 2)
        optimizer.apply(tape.gradient(loss, network.trainable_weights), network.trainable_weights)
    assert all(np.array_equal(a, b) for a, b in zip(before, classifier.get_weights(), strict=True))
    trainable = {id(v) for v in network.trainable_weights}
    changed = {id(v) for v, start in zip(network.weights, frozen, strict=True) if not np.array_equal(v.numpy(), start)}
    assert changed and changed <= trainable  # the copy's weights and its BN statistics stayed as they were


def test_trained_on_the_teacher_the_head_finds_blobs_it_never_saw(blob_data, mean_inpainter, tmp_path):  # noqa: F811
    classifier = _strided_blob_classifier()
    settings = ExplainerSettings(network="features", epochs=20, batch_size=8, lr=1e-2, delete_weight=50.0,
                                 patience=20)
    summary = train_explainer(blob_data, tmp_path / "net.keras", settings, progress=False, classifier=classifier,
                              inpainter=mean_inpainter)
    assert summary["network"] == "features" and summary["best_val_flipped"] >= 0.8
    explainer = AmortisedExplainer(classifier, mean_inpainter, str(tmp_path / "net.keras"), grow_steps=0)
    rng = np.random.default_rng(7)
    cases = [_blob_image(rng, _centre(rng)) for _ in range(6)]
    explanations = explainer.explain(np.stack([c[0] for c in cases])[..., None])
    for (_, truth), e in zip(cases, explanations, strict=True):
        assert e.score_original >= 0.5 > e.score_counterfactual  # the proposal alone flips it, no growth
        near = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the blob and 2 px around it
        assert e.mask.any() and (e.mask & near).sum() >= 0.8 * e.mask.sum()  # the region is on the blob
    with pytest.raises(TfsalError, match="no feature map at stride"):
        train_explainer(blob_data, tmp_path / "other.keras", settings, progress=False,
                        classifier=_blob_classifier(), inpainter=mean_inpainter)


def test_a_saved_head_still_pairs_with_its_classifier_and_not_with_a_retrained_one(tmp_path):
    classifier = build_classifier((SIZE, SIZE))
    build_feature_mask_network(classifier).save(tmp_path / "head.keras")
    loaded = keras.models.load_model(tmp_path / "head.keras")
    check_pairing(loaded, classifier)  # the frozen copy is this classifier's, weight for weight
    changed = keras.models.clone_model(classifier)
    changed.set_weights([w + 0.01 for w in classifier.get_weights()])  # fine-tuned since: other features
    with pytest.raises(ValueError, match="features of another classifier"):
        check_pairing(loaded, changed)
    with pytest.raises(ValueError, match="features of another classifier"):
        AmortisedExplainer(changed, build_inpainter((SIZE, SIZE), 4, 8), loaded)


def test_an_empty_proposal_on_a_positive_image_is_seeded_at_its_lowest_organ_cell():
    theta = np.full((3, 4, 3, 1), 3.0, np.float32)  # keeps every cell
    theta[:, 0, 0, 0] = -1.0  # the lowest logit, but outside the organ
    theta[:, 2, 1, 0] = 0.5  # the lowest inside: sigmoid 0.62 still keeps it
    theta[2, 3, 2, 0] = -2.0  # the third image's proposal already deletes a cell
    organ_grid = np.ones((3, 4, 3, 1), np.float32)
    organ_grid[:, 0, 0, 0] = 0.0
    seeded = seed_cells(theta, organ_grid, np.array([0.9, 0.2, 0.9]), 0.5).numpy()
    assert seeded[0, 2, 1, 0] == SEED_LOGIT
    assert (np.delete(seeded[0].ravel(), 7) == np.delete(theta[0].ravel(), 7)).all()  # and nothing else
    np.testing.assert_array_equal(seeded[1], theta[1])  # called negative: nothing to explain
    np.testing.assert_array_equal(seeded[2], theta[2])  # a proposal that deletes is left as it is


def test_a_positive_image_with_an_empty_proposal_grows_from_the_seed(blob_classifier, mean_inpainter):
    from .test_amortised import _blob_image

    image, truth = _blob_image(np.random.default_rng(1), (30, 20))
    cells = np.full((1, 32, 32, 1), 2.0, np.float32)  # a "network" that keeps every cell (sigmoid 0.88) ...
    cells[0, 15, 10, 0] = 1.0  # ... but ranks the blob's cell first (sigmoid 0.73: still kept)
    dip = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Lambda(lambda x: x[:, ::2, ::2] * 0 + cells)])
    (explanation,) = AmortisedExplainer(blob_classifier, mean_inpainter, dip, grow_steps=8).explain(image[None])
    assert explanation.score_original >= 0.5 > explanation.score_counterfactual  # grown from the seed to a flip
    near = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert explanation.mask.any() and (explanation.mask & near).sum() >= 0.8 * explanation.mask.sum()
    (kept,) = AmortisedExplainer(blob_classifier, mean_inpainter, dip, grow_steps=0).explain(image[None])
    assert not kept.mask.any()  # without the growth, no seed: the network's own cut, empty
