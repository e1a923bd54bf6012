"""docs/lesion_visibility.py's scan: the peak of a lesion-shaped contrast over the breast, not at the lesion's place."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "lesion_visibility", Path(__file__).resolve().parents[1] / "docs" / "lesion_visibility.py")
lesion_visibility = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lesion_visibility)


def _disc(shape, centre, radius):
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


def test_scan_finds_a_bright_place_of_the_mask_shape_away_from_the_mask():
    image = np.full((80, 64), 0.2, np.float32)
    image[_disc(image.shape, (22, 20), 5)] = 0.9  # a bright blob the mask is not on
    mask = _disc(image.shape, (55, 40), 5)
    organ = np.ones(image.shape, bool)
    at_place, _ = lesion_visibility.statistics(image, mask)
    peak, _ = lesion_visibility.scan(image, mask, organ)
    assert at_place == pytest.approx(0.0, abs=1e-6)
    assert peak == pytest.approx(0.7, abs=1e-4)  # the mask on the blob: 0.9 inside, 0.2 in its ring


def test_scan_equals_the_statistics_where_the_lesion_is_the_peak():
    rng = np.random.default_rng(0)
    image = (0.4 + 0.02 * rng.standard_normal((80, 64))).astype(np.float32)
    mask = _disc(image.shape, (40, 30), 6)
    mask[40:47, 30:37] = True  # not a disc: the shape is the mask's own
    image[mask] += 0.3
    peak = lesion_visibility.scan(image, mask, np.ones(image.shape, bool))
    np.testing.assert_allclose(peak, lesion_visibility.statistics(image, mask), atol=1e-5)


def test_scan_only_counts_places_inside_the_breast():
    image = np.full((80, 64), 0.2, np.float32)
    image[_disc(image.shape, (22, 20), 5)] = 0.9
    mask = _disc(image.shape, (55, 40), 5)
    organ = np.zeros(image.shape, bool)
    organ[40:, :] = True  # the blob lies outside the breast
    peak, _ = lesion_visibility.scan(image, mask, organ)
    assert peak == pytest.approx(0.0, abs=1e-5)
    assert np.isnan(lesion_visibility.scan(image, mask, np.zeros(image.shape, bool))[0])
