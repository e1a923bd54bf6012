import numpy as np
import pytest

from tfsal.data.organ import breast_mask
from tfsal.data.synthetic import make_mammogram


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_dice_against_synthetic_ground_truth_over_forty_images():
    dice, mlo_dice = [], []
    for seed in range(40):
        sample = make_mammogram(500 + seed, (256, 192), n_masses=seed % 2)
        d = _dice(breast_mask(sample.image), sample.organ_mask)
        dice.append(d)
        if sample.params["view"] == "MLO":
            mlo_dice.append(d)
    assert np.mean(dice) >= 0.95, np.round(dice, 3)
    assert np.median(dice) >= 0.95
    assert min(dice) >= 0.85
    assert len(mlo_dice) >= 10


def test_pectoral_muscle_removal_improves_mlo_views():
    with_removal, without = [], []
    for seed in range(30):
        sample = make_mammogram(700 + seed, (256, 192))
        if sample.params["view"] != "MLO":
            continue
        with_removal.append(_dice(breast_mask(sample.image), sample.organ_mask))
        without.append(_dice(breast_mask(sample.image, remove_pectoral=False), sample.organ_mask))
    assert np.mean(with_removal) > np.mean(without) + 0.01


def test_cc_view_keeps_the_chest_wall_corner():
    for seed in range(30):
        sample = make_mammogram(seed, (256, 192))
        if sample.params["view"] == "CC":
            mask = breast_mask(sample.image)
            assert _dice(mask, sample.organ_mask) > 0.97
            break


def test_accepts_channel_axis_and_any_range():
    sample = make_mammogram(9, (128, 96))
    a = breast_mask(sample.image)
    np.testing.assert_array_equal(breast_mask(sample.image[..., None] * 4095), a)


def test_constant_image_gives_empty_mask():
    assert not breast_mask(np.full((32, 32), 0.5)).any()


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\[H, W\] or \[H, W, 1\]"):
        breast_mask(np.zeros((4, 4, 3)))
