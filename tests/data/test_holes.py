"""Tests of tfsal.data.holes: random hole masks for inpainter training."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from tfsal.data.holes import (
    default_hole_size,
    dilated,
    random_blob_mask,
    random_hole_mask,
    random_hole_mask_numpy,
)

H, W = 64, 48


def half_ellipse(h=H, w=W):
    y, x = np.mgrid[0:h, 0:w]
    return ((y - h / 2) / (0.45 * h)) ** 2 + (x / (0.8 * w)) ** 2 < 1


def holes(seed=0, **kwargs):
    kwargs.setdefault("hole_size", 4)
    return random_hole_mask_numpy(seed, H, W, **kwargs)[:, :, 0] == 0


def test_default_hole_size_scales_the_paper():
    assert default_hole_size(576) == 8
    assert default_hole_size(256) == 4
    assert default_hole_size(64) == 1
    assert default_hole_size(1152) == 16


def test_binary_float_mask_with_bounded_hole_fraction():
    for seed in range(5):
        mask = random_hole_mask_numpy(seed, H, W, hole_size=4, max_holes=40)
        assert mask.shape == (H, W, 1) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        fraction = 1 - mask.mean()
        assert 0 < fraction <= 40 * 4 * 4 / (H * W)


def test_holes_inside_organ():
    organ = half_ellipse()
    for seed in range(5):
        hole = holes(seed, organ=organ)
        assert hole.any() and not (hole & ~organ).any()
    # float and [H, W, 1] organs work the same
    np.testing.assert_array_equal(holes(3, organ=organ), holes(3, organ=organ[:, :, None].astype(np.float32)))


def test_empty_organ_gives_no_holes():
    assert not holes(0, organ=np.zeros((H, W), bool)).any()


def test_same_seed_same_mask_and_different_seed_differs():
    np.testing.assert_array_equal(holes(7), holes(7))
    assert (holes(7) != holes(8)).any()
    a = random_hole_mask(tf.constant([1, 2]), H, W).numpy()
    b = random_hole_mask(tf.constant([2, 1]), H, W).numpy()
    assert (a != b).any()


def test_runs_in_graph_mode_like_eager():
    fn = tf.function(lambda s: random_hole_mask(s, H, W, hole_size=3))
    seed = tf.constant([5, 6], tf.int64)
    np.testing.assert_array_equal(fn(seed).numpy(), random_hole_mask(seed, H, W, hole_size=3).numpy())
    ds = tf.data.Dataset.range(3).map(lambda i: random_hole_mask(tf.stack([i, i]), H, W))
    assert [m.shape for m in ds] == [(H, W, 1)] * 3


def test_clusters_and_singles_exist():
    sizes = []
    for seed in range(5):
        labels, _count = ndimage.label(holes(seed, hole_size=2, max_holes=60))
        sizes.extend(np.bincount(labels.ravel())[1:])
    assert max(sizes) > 3 * 2 * 2  # a cluster: several holes in one component
    assert 2 * 2 in sizes  # a single hole (border holes may be cut)


def test_only_singles_without_clusters():
    labels, count = ndimage.label(holes(0, hole_size=2, max_holes=5, min_holes=5, cluster_probability=0.0))
    assert np.all(np.bincount(labels.ravel())[1:] <= 2 * 2 * 5) and count >= 1


@pytest.mark.parametrize(
    "option",
    [
        {"hole_size": 3},
        {"max_holes": 10},
        {"min_holes": 100},
        {"cluster_probability": 0.0},
        {"max_cluster_holes": 2},
        {"organ": half_ellipse()},
    ],
)
def test_each_option_changes_the_mask(option):
    base = {"hole_size": 4, "max_holes": 200, "min_holes": 1, "cluster_probability": 0.5, "max_cluster_holes": 24}
    changed = {**base, **option}
    assert any((holes(s, **base) != holes(s, **changed)).any() for s in range(3))


def test_max_holes_bounds_the_count():
    hole = holes(0, hole_size=1, max_holes=3, min_holes=3, cluster_probability=0.0)
    assert 1 <= hole.sum() <= 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hole_size": 0}, "hole_size must be an int"),
        ({"hole_size": 100}, "hole_size must be an int"),
        ({"max_holes": 0}, "min_holes and max_holes"),
        ({"min_holes": 5, "max_holes": 4}, "min_holes and max_holes"),
        ({"cluster_probability": 1.5}, "cluster_probability must be in"),
        ({"max_cluster_holes": 1}, "max_cluster_holes must be"),
        ({"organ": np.ones((10, 10), bool)}, r"organ must have shape \[64, 48\]"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_hole_mask(tf.constant([0, 0]), H, W, **kwargs)


def test_bad_size():
    with pytest.raises(ValueError, match="height and width must be positive ints"):
        random_hole_mask(tf.constant([0, 0]), 0, W)


def blobs(seed=0, **kwargs):
    return random_blob_mask(tf.constant([seed, 0]), 128, 96, **kwargs).numpy()[:, :, 0] == 0


def test_blob_mask_covers_the_drawn_share_of_the_organ_only():
    organ = half_ellipse(128, 96)
    for seed in range(4):
        hole = blobs(seed, organ=organ, fraction=(0.1, 0.1))
        assert not (hole & ~organ).any()
        assert hole.sum() / organ.sum() == pytest.approx(0.1, abs=0.01)


def test_blobs_are_mass_sized_connected_regions_not_scattered_pixels():
    hole = blobs(1, fraction=(0.05, 0.05), cell=(0.15, 0.15))
    labels, count = ndimage.label(hole)
    largest = np.bincount(labels.ravel())[1:].max()
    assert count <= 10 and largest >= 0.3 * hole.sum()  # a few blobs, one of them big
    assert ndimage.binary_opening(hole, iterations=3).sum() >= 0.5 * hole.sum()  # thick, not speckle


def test_blob_mask_is_a_function_of_the_seed_and_runs_in_graphs():
    np.testing.assert_array_equal(blobs(5), blobs(5))
    assert (blobs(5) != blobs(6)).any()
    graph = tf.function(lambda seed: random_blob_mask(seed, 128, 96))(tf.constant([5, 0]))
    np.testing.assert_array_equal(graph.numpy()[:, :, 0] == 0, blobs(5))


def test_blob_mask_zero_share_and_empty_organ_give_no_holes():
    assert not blobs(0, fraction=(0.0, 0.0)).any()
    assert not blobs(0, organ=np.zeros((128, 96), bool)).any()


def test_blob_mask_rejects_bad_ranges():
    with pytest.raises(ValueError, match="fraction"):
        random_blob_mask(tf.constant([0, 0]), 32, 32, fraction=(0.5, 0.1))
    with pytest.raises(ValueError, match="cell"):
        random_blob_mask(tf.constant([0, 0]), 32, 32, cell=(0.1, 2.0))


def test_dilation_is_the_4_connected_cross_repeated():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    y, x = np.mgrid[0:9, 0:9]
    np.testing.assert_array_equal(dilated(mask, 2), np.abs(y - 4) + np.abs(x - 4) <= 2)
    np.testing.assert_array_equal(dilated(mask.astype(np.float32), 0), mask)


@pytest.mark.parametrize("pixels", [0, 1, 3, 6])
def test_dilation_of_a_batch_dilates_each_slice_alone(pixels):
    masks = np.random.default_rng(pixels).random((2, 3, 20, 15)) > 0.95
    masks[0, 0, 0, :] = True  # a row at the edge must not grow into the next slice
    cross = ndimage.generate_binary_structure(2, 1)
    out = dilated(masks, pixels)
    assert out.shape == masks.shape and out.dtype == bool
    for index in np.ndindex(*masks.shape[:2]):
        expected = ndimage.binary_dilation(masks[index], cross, iterations=pixels) if pixels else masks[index]
        np.testing.assert_array_equal(out[index], expected)
