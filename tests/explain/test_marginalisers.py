"""The blur marginaliser and the Gaussian blur the gradient baselines share."""

import numpy as np
import pytest
from scipy import ndimage

from tfsal.explain.infill import BlurFill, blur_matrix, gaussian_blur


@pytest.mark.parametrize("sigma, shape", [(2.0, (24, 20)), (5.0, (8, 30)), (16.0, (12, 9))])
def test_gaussian_blur_matches_scipy_with_mirrored_border(sigma, shape):
    # scipy's "mirror" reflects about the edge pixel without repeating it, as many times as the
    # kernel needs; (5, 8) and (16, (12, 9)) have kernels longer than the image.
    image = np.random.default_rng(0).random((2, *shape, 1)).astype(np.float32)
    expected = np.stack([ndimage.gaussian_filter(i[..., 0].astype(np.float64), sigma, mode="mirror", truncate=3.0)
                         for i in image])
    blurred = np.asarray(gaussian_blur(image, sigma))[..., 0]
    np.testing.assert_allclose(blurred, expected, atol=1e-5)


def test_blur_matrix_rows_are_probability_weights():
    matrix = blur_matrix(7, 3.0)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    assert (matrix >= 0).all()
    assert blur_matrix(1, 4.0).tolist() == [[1.0]]


def test_blur_fill_keeps_a_flat_image_and_smooths_a_spike():
    flat = np.full((1, 16, 16, 1), 0.3, np.float32)
    np.testing.assert_allclose(BlurFill(sigma=20).fill(flat), flat, atol=1e-6)
    spike = np.zeros((1, 33, 33, 1), np.float32)
    spike[0, 16, 16] = 1.0
    filled = np.asarray(BlurFill(sigma=3).fill(spike))[0, ..., 0]
    assert filled.argmax() == 16 * 33 + 16
    assert 0 < filled.max() < 0.05
    with pytest.raises(ValueError, match="sigma"):
        BlurFill(sigma=0)


def test_infiller_under_xla_fills_as_the_default_does(tiny_inpainter):
    import tensorflow as tf

    from tfsal.explain.infill import Infiller

    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((3, 32, 32, 1)), tf.float32)
    keep = np.ones((3, 32, 32, 1), np.float32)
    keep[:, 8:20, 10:24] = 0
    keep = tf.constant(keep)
    plain, compiled = Infiller(tiny_inpainter), Infiller(tiny_inpainter, jit_compile=True)
    expected = plain.fill(images, keep).numpy()
    np.testing.assert_allclose(compiled.fill(images, keep).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(compiled.fill(images[:1], keep[:1]).numpy(), expected[:1], atol=1e-5)  # new shape
    assert np.abs(expected[:, 8:20, 10:24]).max() > 0  # the holes were filled with something
