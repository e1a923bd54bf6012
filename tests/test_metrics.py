import numpy as np
import pytest
from scipy import ndimage

from tfsal.evaluation.metrics import (
    centre_distance,
    count_components,
    diagonal,
    hausdorff_distance,
    largest_component,
    localisation,
    overlap_coefficient,
    roc_auc,
    roc_curve,
    sensitivity_specificity,
)


def test_auc_hand_worked():
    # positives 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1) -> 3/4
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.5, 0.1]) == 0.75


def test_auc_ties_count_half_and_one_class_is_nan():
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_curve_matches_auc_by_trapezoid():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = labels * 0.5 + rng.random(200)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thresholds) < 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(labels, scores))


def test_sensitivity_specificity_at_threshold():
    assert sensitivity_specificity([1, 1, 0, 0, 0], [0.9, 0.3, 0.6, 0.2, 0.1]) == (0.5, pytest.approx(2 / 3))


@pytest.mark.parametrize("labels, scores, message", [([1, 0], [0.1], "differ in length"),
                                                      ([2, 0], [0.1, 0.2], "0 or 1"),
                                                      ([1, 0], [np.nan, 0.2], "finite")])
def test_bad_input(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(labels, scores)


def _square(top, left, side, shape=(40, 40)):
    mask = np.zeros(shape, bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_centre_and_hausdorff_distance_of_two_squares():
    truth, result = _square(0, 0, 4), _square(0, 6, 4)  # same rows, 6 px to the right
    assert centre_distance(truth, result) == pytest.approx(6.0)
    assert hausdorff_distance(truth, result) == pytest.approx(6.0)
    assert centre_distance(truth, truth) == 0 and hausdorff_distance(truth, truth) == 0


def test_distance_is_the_median_over_components_and_nan_for_an_empty_result():
    truth = _square(10, 10, 2)
    result = _square(10, 13, 2) | _square(10, 20, 2) | _square(10, 30, 2)  # centres 3, 10, 20 px away
    assert centre_distance(truth, result) == pytest.approx(10.0)
    empty = np.zeros_like(truth)
    assert np.isnan(centre_distance(truth, empty)) and np.isnan(hausdorff_distance(truth, empty))


def test_overlap_coefficient():
    assert overlap_coefficient(_square(0, 0, 4), _square(0, 0, 2)) == 1.0
    assert overlap_coefficient(_square(0, 0, 4), _square(0, 2, 4)) == pytest.approx(0.5)
    assert np.isnan(overlap_coefficient(_square(0, 0, 4), np.zeros((40, 40), bool)))


def test_spacing_scales_distances_per_axis():
    truth, result = _square(0, 0, 4), _square(0, 6, 4)  # 6 columns apart
    assert centre_distance(truth, result, spacing=(2.0, 3.0)) == pytest.approx(18.0)
    assert hausdorff_distance(truth, result, spacing=(2.0, 3.0)) == pytest.approx(18.0)


def test_largest_component_keeps_the_biggest_piece():
    mask = _square(0, 0, 2) | _square(10, 10, 5)
    assert (largest_component(mask) == _square(10, 10, 5)).all()
    assert not largest_component(np.zeros((5, 5), bool)).any()


def test_hausdorff_is_symmetric_both_directions_count():
    truth = _square(10, 10, 2)
    result = _square(10, 10, 2) | _square(30, 10, 2)  # covers the mass, plus a far piece 20 rows below
    # truth -> result: 0 (every mass pixel is in the result); result -> truth: the far piece, 20 px
    assert hausdorff_distance(truth, result) == pytest.approx(20.0)
    # swapped: two masses (the pieces), each at H 0 -> mass 0 and 20 from the other side: median 10
    assert hausdorff_distance(result, truth) == pytest.approx(10.0)


def test_hausdorff_is_the_median_over_masses_not_the_maximum():
    result = _square(0, 0, 2)
    truth = _square(0, 4, 2) | _square(0, 10, 2) | _square(0, 30, 2)  # three masses, 4, 10 and 30 px to the right
    distances = [hausdorff_distance(_square(0, c, 2), result) for c in (4, 10, 30)]
    assert hausdorff_distance(truth, result) == pytest.approx(np.median(distances))
    assert hausdorff_distance(truth, result) < max(distances)


def test_an_empty_result_counts_as_the_image_diagonal():
    truth = _square(10, 10, 4)
    empty = localisation(truth, np.zeros_like(truth))
    assert empty == {"D": pytest.approx(np.hypot(40, 40)), "H": pytest.approx(np.hypot(40, 40)), "empty": True}
    assert diagonal((40, 40), (2.0, 1.0)) == pytest.approx(np.hypot(80, 40))
    hit = localisation(truth, truth)
    assert hit["D"] == 0 and hit["H"] == 0 and not hit["empty"]


def test_components_are_8_connected_everywhere():
    diagonal_pair = np.zeros((10, 10), bool)
    diagonal_pair[2, 2] = diagonal_pair[3, 3] = True  # touching at a corner: one 8-connected component
    assert count_components(diagonal_pair) == 1
    assert (largest_component(diagonal_pair | _square(8, 8, 1, (10, 10))) == diagonal_pair).all()
    truth = _square(2, 2, 1, (10, 10))
    # one component whose centre is (2.5, 2.5): D is 0.5 * sqrt(2), not the median of two 4-connected pieces
    assert centre_distance(truth, diagonal_pair) == pytest.approx(np.hypot(0.5, 0.5))


def _brute_force_hausdorff(truth, result, spacing):
    labels, count = ndimage.label(truth, structure=np.ones((3, 3)))
    found = np.argwhere(result) * spacing
    out = []
    for i in range(1, count + 1):
        mass = np.argwhere(labels == i) * spacing
        pairwise = np.linalg.norm(mass[:, None] - found[None], axis=-1)
        out.append(max(pairwise.min(axis=1).max(), pairwise.min(axis=0).max()))
    return float(np.median(out))


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.25, 2.33)])
def test_hausdorff_equals_the_brute_force_definition_on_random_masks(spacing):
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        truth = ndimage.binary_dilation(rng.random((40, 31)) > 0.995, iterations=int(rng.integers(1, 4)))
        result = ndimage.binary_dilation(rng.random((40, 31)) > rng.choice([0.9, 0.99, 0.999]),
                                         iterations=int(rng.integers(0, 5)))
        if truth.any() and result.any():
            assert hausdorff_distance(truth, result, spacing) == pytest.approx(
                _brute_force_hausdorff(truth, result, np.asarray(spacing)), abs=1e-9)
            checked += 1
    assert checked > 30
