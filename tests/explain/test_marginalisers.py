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
