import numpy as np
import pytest

from tfsal.evaluation.metrics import (
    centre_distance,
    hausdorff_distance,
    largest_component,
    overlap_coefficient,
    paired_wilcoxon,
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


def test_paired_wilcoxon_on_known_differences():
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    p_shifted, pairs = paired_wilcoxon(a, a + 1.0)
    assert p_shifted < 1e-6 and pairs == 40
    b = a + rng.normal(scale=0.01, size=40)
    assert paired_wilcoxon(a, b)[0] > 0.01
    p, pairs = paired_wilcoxon([1.0, np.nan, 3.0], [2.0, 5.0, np.nan])
    assert np.isnan(p) and pairs == 1  # NaN pairs (empty masks) are left out and counted
