"""The two searches that decide "flipped": the first share of a deletion curve below 0.5, and the
growth of ours' mask, which must keep the first grown mask that flips, not a later one."""

import numpy as np
import tensorflow as tf

from tfsal.evaluation.curves import first_flip
from tfsal.explain.growth import grow_until_flipped


def test_first_flip_is_the_first_share_below_one_half_of_a_positive_image():
    scores = np.array([[0.9, 0.55, 0.5, 0.49, 0.1],   # 0.5 is not below the threshold: flips at index 3
                       [0.9, 0.8, 0.7, 0.6, 0.51],    # never below 0.5
                       [0.4, 0.3, 0.2, 0.1, 0.0]])    # a negative image has nothing to flip
    np.testing.assert_array_equal(first_flip(scores, [0.95, 0.95, 0.45]), [3, -1, -1])
    np.testing.assert_array_equal(first_flip([[0.6, 0.2, 0.7, 0.1]], [0.8]), [1])  # the first, not the last


def test_growth_keeps_the_first_flipping_mask():
    size = 15
    result = np.zeros((1, size, size, 1), np.float32)
    result[0, 7, 7] = 1.0
    organ = np.ones_like(result)

    def score(masks, pending):  # flips once the mask covers 5 pixels or more (the first dilation)
        area = tf.reduce_sum(masks, axis=[1, 2, 3])
        return masks, tf.where(area >= 5, 0.1, 0.9)

    grown, _, after = grow_until_flipped(score, tf.constant(result), tf.constant(organ), tf.constant([0.9]),
                                         tf.constant([0.9]), tf.constant(result), step=1, times=4)
    assert float(after[0]) < 0.5
    assert int(tf.reduce_sum(grown)) == 5  # one cross dilation of one pixel: later masks also flip, larger
