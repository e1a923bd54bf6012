"""One contract for every registered explainer: every input kind, batch sizes 1 and 3, on tiny
models. The checks are functions, so a method registered by another test runs through them too."""

import numpy as np
import pytest
import tensorflow as tf

from tfsal.explain import Explanation, ImageExplainer, registry
from tfsal.explain.amortised import build_feature_mask_network

from .conftest import SIZE, mammogram_like

N = 3


def _images():
    return np.stack([mammogram_like(seed) for seed in range(N)])


INPUTS = {
    "numpy [N,H,W,1]": lambda: _images(),
    "numpy [N,H,W]": lambda: _images()[..., 0],
    "uint8 numpy": lambda: (_images() * 255).astype(np.uint8),
    "tensor": lambda: tf.constant(_images()),
    "list": lambda: list(_images()),
    "tf.data images": lambda: tf.data.Dataset.from_tensor_slices(_images()),
    "tf.data batched (image, target)": lambda: tf.data.Dataset.from_tensor_slices(
        (_images(), np.ones(N, np.int32))).batch(2),
}


STEPS = 3
_BUILT = {}  # one explainer per method, models and batch size, reused across input kinds (traced once)


_NETWORKS = {}  # an (untrained) amortised mask network per classifier: the contract is the same for any weights


def build(name, classifier, inpainter, batch_size):
    """The method built as ``tfsal explain`` builds it: only the options it takes are passed (a method
    for one classifier gets a mask network built on this one's features)."""
    if id(classifier) not in _NETWORKS:
        _NETWORKS[id(classifier)] = build_feature_mask_network(classifier)
    return registry.get(name).build(classifier, inpainter=inpainter, steps=STEPS, percentile=90.0,
                                    batch_size=batch_size, logits=False, mask_network=_NETWORKS[id(classifier)])


def built(name, classifier, inpainter, batch_size):
    """:func:`build`, once per (method, models, batch size) in a session."""
    key = (name, id(registry.get(name)), id(classifier), id(inpainter), batch_size)
    if key not in _BUILT:
        _BUILT[key] = build(name, classifier, inpainter, batch_size)
    return _BUILT[key]


def check_every_input_kind(name, kind, batch_size, classifier, inpainter):
    explainer = built(name, classifier, inpainter, batch_size)
    assert isinstance(explainer, ImageExplainer) and explainer.method == name
    assert explainer.batch_size == batch_size and explainer.input_size == (SIZE, SIZE)
    explanations = explainer.explain(INPUTS[kind]())
    assert len(explanations) == N
    for e in explanations:
        assert isinstance(e, Explanation) and e.method == name and e.target == 1
        assert e.saliency.shape == e.mask.shape == e.organ.shape == (SIZE, SIZE)
        assert e.saliency.dtype == np.float32 and np.isfinite(e.saliency).all()
        assert e.mask.dtype == bool and not (e.mask & ~e.organ).any()
        assert 0.0 <= e.score_original <= 1.0 and 0.0 <= e.area_fraction <= 1.0
        # every method was given the inpainter, so every result mask is inpainted and scored
        assert e.counterfactual.shape == (SIZE, SIZE) and np.isfinite(e.counterfactual).all()
        assert 0.0 <= e.score_counterfactual <= 1.0
        if explainer.steps is not None:  # an optimising method: one loss per step run
            assert e.loss.shape == (STEPS,) and np.isfinite(e.loss).all()
    # the same results stacked, for other tools' metrics, and the images they explain
    assert explanations.saliency.shape == explanations.masks.shape == (N, SIZE, SIZE)
    np.testing.assert_array_equal(explanations.saliency[1], explanations[1].saliency)
    assert explanations.counterfactuals.shape == (N, SIZE, SIZE)
    np.testing.assert_allclose(explanations.scores_original, [e.score_original for e in explanations])
    np.testing.assert_allclose(explanations[2].image, _images()[2, ..., 0], atol=1 / 255)


def check_batching_does_not_change_the_result(name, classifier, inpainter):
    images = _images()
    one = built(name, classifier, inpainter, 1).explain(images)
    three = built(name, classifier, inpainter, 3).explain(images)
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(a.saliency, b.saliency, atol=1e-4)
        assert a.score_original == pytest.approx(b.score_original, abs=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("name", list(registry.names()))
def test_every_explainer_takes_every_input_kind(name, kind, batch_size, tiny_classifier, tiny_inpainter):
    check_every_input_kind(name, kind, batch_size, tiny_classifier, tiny_inpainter)


@pytest.mark.parametrize("name", list(registry.names()))
def test_batching_does_not_change_the_result(name, tiny_classifier, tiny_inpainter):
    check_batching_does_not_change_the_result(name, tiny_classifier, tiny_inpainter)


def test_a_single_image_with_a_channel_axis_is_one_image(tiny_classifier, tiny_inpainter):
    from tfsal.explain.inputs import as_images

    rng = np.random.default_rng(0)
    assert [i.shape for i in as_images(rng.random((40, 30, 1)))[0]] == [(40, 30, 1)]  # as read_image returns it
    assert [i.shape for i in as_images(rng.random((40, 30, 3)))[0]] == [(40, 30, 1)]
    assert [i.shape for i in as_images(rng.random((2, 40, 30)))[0]] == [(40, 30, 1)] * 2
    with pytest.raises(ValueError, match=r"expected one image \[H, W\] or \[H, W, C\], or a batch"):
        as_images(rng.random((1, 2, 40, 30, 1)))
    (explanation,) = built("cam", tiny_classifier, tiny_inpainter, 3).explain(_images()[0])
    assert explanation.saliency.shape == (SIZE, SIZE)
