from pathlib import Path

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


def test_a_film_padded_on_both_sides_gets_the_same_muscle():
    # scanned films (mini-MIAS) put the breast in the middle of the film: the chest wall is the
    # edge of the breast's columns, not of the image
    against_truth, against_plain, found = [], [], 0
    for seed in range(30):
        sample = make_mammogram(700 + seed, (256, 192))
        if sample.params["view"] != "MLO":
            continue
        plain = breast_mask(sample.image)
        air = sample.image[~breast_mask(sample.image, remove_pectoral=False)]  # pad with the film's own air
        rng = np.random.default_rng(seed)
        padded = np.concatenate([rng.choice(air, (256, 40)), sample.image, rng.choice(air, (256, 40))], axis=1)
        mask = breast_mask(padded)
        assert not mask[:, :35].any() and not mask[:, -35:].any()  # the smoothing bleeds a few px at most
        against_truth.append(_dice(mask[:, 40:-40], sample.organ_mask))
        against_plain.append(_dice(mask[:, 40:-40], plain))
        found += bool((breast_mask(sample.image, remove_pectoral=False) & ~plain).any())
    assert found >= 5  # the muscle was there to be found
    assert min(against_truth) > 0.9 and np.mean(np.array(against_plain) > 0.99) >= 0.9, np.round(against_plain, 3)


MIAS_DEV = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "mias-dev"
CLEAR_MUSCLES = (25, 26, 28, 47, 48, 95, 96)
"""mias-dev films whose pectoral muscle is a clear bright triangle, looked at in the montage of
``docs/data.md`` (the chest wall on the right for odd, on the left for even numbers here)."""


@pytest.mark.slow  # full-size films, as the pipelines see them: about 25 s
@pytest.mark.skipif(not MIAS_DEV.is_dir(), reason="../shared/realdata/mias-dev is not here")
def test_mias_dev_films_keep_every_lesion_and_lose_clear_muscles():
    from tfsal.data.image_io import read_image
    from tfsal.data.mias import read_info

    for reference, film in read_info(MIAS_DEV / "Info.txt").items():
        number = int(reference[3:])
        if not film.lesions and number not in CLEAR_MUSCLES:
            continue
        image = read_image(MIAS_DEV / f"{reference}.pgm")[0][..., 0]
        mask, whole = breast_mask(image), breast_mask(image, remove_pectoral=False)
        for lesion in film.lesions:
            if lesion.centre is not None:  # the origin is the film's bottom-left corner
                x, y = lesion.centre
                assert mask[1023 - y, x], (reference, lesion.kind)
        if number in CLEAR_MUSCLES:
            muscle = whole & ~mask
            rows, cols = np.nonzero(muscle)
            columns = np.flatnonzero(whole.any(axis=0))
            wall = columns[-1] if whole[:, columns[-1]].sum() > whole[:, columns[0]].sum() else columns[0]
            assert muscle.sum() > 0.03 * whole.sum(), reference
            assert rows.mean() < 0.35 * image.shape[0] and abs(cols.mean() - wall) < 0.5 * len(columns), reference
