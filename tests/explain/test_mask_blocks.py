"""The optimisation loop's building blocks give the values of the plain formulas they replace."""

import numpy as np
import pytest
import tensorflow as tf

from tfsal.explain.mask_grid import cell_weights, straight_through_composite, upsample_cells, upsampling_matrix


@pytest.mark.parametrize(("grid", "cell", "size"), [((4, 3), 8, (32, 24)), ((5, 4), 6, (27, 20)), ((3, 3), 1, (3, 3)),
                                                    ((2, 7), 18, (30, 120))])
def test_upsampling_is_the_bilinear_resize_cropped(grid, cell, size):
    values = tf.random.stateless_uniform((2, *grid, 1), seed=(1, 2))
    expected = tf.image.resize(values, [grid[0] * cell, grid[1] * cell], "bilinear")[:, :size[0], :size[1]]
    np.testing.assert_allclose(upsample_cells(values, cell, size), expected, atol=1e-6)


def test_upsampling_rows_sum_to_one_and_mix_two_cells():
    matrix = upsampling_matrix(5, 8, 37)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    assert ((matrix > 0).sum(axis=1) <= 2).all()


def test_upsampling_without_static_sizes_falls_back_to_the_resize():
    values = tf.random.stateless_uniform((1, 4, 3, 1), seed=(3, 4))
    traced = tf.function(lambda v, s: upsample_cells(v, 8, (s[0], s[1])),
                         input_signature=[tf.TensorSpec([None, None, None, 1]), tf.TensorSpec([2], tf.int32)])
    np.testing.assert_allclose(traced(values, tf.constant([30, 20])), upsample_cells(values, 8, (30, 20)), atol=1e-6)


def test_the_area_on_the_grid_is_the_sum_of_the_saliency_over_the_pixels():
    keep = tf.random.stateless_uniform((3, 5, 4, 1), seed=(5, 6))
    organ = tf.random.stateless_uniform((3, 37, 30, 1), seed=(7, 8))  # a soft organ: organ^2 != organ
    up = upsample_cells(keep, 8, (37, 30))
    direct = tf.reduce_sum((1.0 - (1.0 - organ * (1.0 - up))) * organ, axis=[1, 2, 3])  # (1 - M) * organ
    on_grid = (tf.reduce_sum(organ ** 2, axis=[1, 2, 3])
               - tf.reduce_sum(keep * cell_weights(organ, 8, (5, 4)), axis=[1, 2, 3]))
    np.testing.assert_allclose(on_grid, direct, rtol=1e-5)


def test_straight_through_composite_shows_the_binary_mask_and_passes_the_soft_gradient():
    up = tf.random.stateless_uniform((2, 6, 5, 1), seed=(9, 10))
    organ = tf.cast(tf.random.stateless_uniform((2, 6, 5, 1), seed=(11, 12)) > 0.3, tf.float32)
    images = tf.random.stateless_uniform((2, 6, 5, 1), seed=(13, 14))
    fill = tf.random.stateless_uniform((2, 6, 5, 1), seed=(15, 16))
    weights = tf.random.stateless_normal((2, 6, 5, 1), seed=(17, 18))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(up)
        ours = straight_through_composite(up, organ, images, fill, 0.5)
        mask = 1.0 - organ * (1.0 - up)
        seen = mask + tf.stop_gradient(tf.cast(mask >= 0.5, tf.float32) - mask)
        plain = seen * images + (1.0 - seen) * fill
        ours_total, plain_total = tf.reduce_sum(ours * weights), tf.reduce_sum(plain * weights)
    np.testing.assert_array_equal(ours, tf.where(mask >= 0.5, images, fill))
    np.testing.assert_allclose(ours, plain, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours_total, up), tape.gradient(plain_total, up), atol=1e-6)
