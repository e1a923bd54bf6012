import numpy as np
import pytest

from tfsal.metrics import roc_auc, roc_curve, sensitivity_specificity


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
