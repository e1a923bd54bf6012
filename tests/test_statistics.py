"""Paired one-sided comparisons, bootstrap intervals and Holm's correction."""

import numpy as np
import pytest
from scipy import stats

from tfsal.evaluation.metrics import roc_auc
from tfsal.evaluation.statistics import auc_difference_interval, auc_interval, compare, holm, median_interval


def test_a_paired_shift_is_found_in_the_stated_direction_only():
    rng = np.random.default_rng(0)
    base = rng.normal(scale=10.0, size=40)  # large spread between images, small consistent gain
    ours = base - 1.0 + rng.normal(scale=0.1, size=40)
    lower = compare(ours, base, "less")
    assert lower["p"] < 1e-6 and lower["wins"] == 40 and lower["losses"] == 0 and lower["n"] == 40
    assert lower["median_difference"] == pytest.approx(-1.0, abs=0.1)
    assert lower["interval"][0] < -0.9 and lower["interval"][1] > -1.1 and lower["interval"][1] < 0
    assert compare(ours, base, "greater")["p"] > 0.99  # the other direction finds nothing
    # the test pairs the images: an unpaired test drowns the same shift in the spread between images
    assert stats.mannwhitneyu(ours, base, alternative="less").pvalue > 0.2


def test_pairs_with_a_nan_are_left_out_and_ties_count():
    result = compare([1.0, np.nan, 3.0, 2.0], [2.0, 5.0, np.nan, 2.0])
    assert result["n"] == 2 and result["wins"] == 1 and result["ties"] == 1
    assert compare([1.0, 2.0], [1.0, 2.0])["p"] == 1.0
    assert np.isnan(compare([np.nan], [1.0])["p"])
    with pytest.raises(ValueError, match="alternative"):
        compare([1.0], [2.0], "two-sided")


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 with m = 3: 0.03, 0.04, max(0.04, 0.04) = 0.04; NaN stays out of m
    assert holm([0.04, 0.01, np.nan, 0.02]) == pytest.approx([0.04, 0.03, np.nan, 0.04], nan_ok=True)
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])


def test_intervals_cover_the_truth_and_narrow_with_more_data():
    rng = np.random.default_rng(1)
    small, large = median_interval(rng.normal(2.0, 1.0, 30)), median_interval(rng.normal(2.0, 1.0, 600))
    assert small[0] < 2.0 < small[1] and large[0] < 2.0 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
    labels = np.r_[np.ones(200), np.zeros(200)]
    scores = labels + rng.normal(0, 1.0, 400)  # AUC about 0.76, standard error about 0.024
    low, high = auc_interval(labels, scores, resamples=500)
    assert low < roc_auc(labels, scores) < high and 0.06 < high - low < 0.13
    assert np.isnan(auc_interval([1, 1], [0.2, 0.3])[0])


def test_paired_auc_difference_is_narrower_than_the_two_intervals_and_widens_with_the_level():
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(200), np.zeros(200)]
    shared = labels + rng.normal(0, 1.0, 400)  # the two classifiers share most of their errors
    a, b = shared + rng.normal(0, 0.3, 400), shared + 0.6 * labels + rng.normal(0, 0.3, 400)
    result = auc_difference_interval(labels, a, b, resamples=500)
    assert result["difference"] == pytest.approx(roc_auc(labels, a) - roc_auc(labels, b))
    low, high = result["interval"]
    assert low < result["difference"] < high < 0  # b is better, and the pairing shows it
    a_low, a_high = auc_interval(labels, a, resamples=500)
    assert high - low < a_high - a_low  # shared errors cancel in the paired difference
    wide = auc_difference_interval(labels, a, b, level=1 - 0.05 / 4, resamples=500)["interval"]
    assert wide[0] < low and wide[1] > high
    same = auc_difference_interval(labels, a, a, resamples=200)
    assert same["difference"] == 0 and same["interval"] == [0.0, 0.0]
    assert np.isnan(auc_difference_interval([1, 1], [0.2, 0.3], [0.1, 0.4])["difference"])
    with pytest.raises(ValueError, match="differ in length"):
        auc_difference_interval(labels, a[:10], b)
    with pytest.raises(ValueError, match="level"):
        auc_difference_interval(labels, a, b, level=1.0)
