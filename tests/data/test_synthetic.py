import numpy as np
import pytest

from tfsal.data.synthetic import MASS_SHAPES, SynthConfig, make_mammogram


def test_shapes_ranges_and_masks():
    sample = make_mammogram(3, (128, 96), n_masses=1)
    assert sample.image.shape == (128, 96) and sample.image.dtype == np.float32
    assert sample.image.min() >= 0 and sample.image.max() <= 1
    assert sample.mass_mask.dtype == bool and sample.organ_mask.dtype == bool
    assert sample.mass_mask.any()
    assert not (sample.mass_mask & ~sample.organ_mask).any(), "a mass lies outside the breast"
    assert 0.2 < sample.organ_mask.mean() < 0.9


def test_same_seed_same_image_other_seed_other_image():
    a, b, c = (make_mammogram(s, (64, 48), n_masses=1) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_healthy_image_has_no_mass_and_two_masses_are_separate():
    assert not make_mammogram(1, (128, 96), n_masses=0).mass_mask.any()
    two = make_mammogram(2, (256, 192), n_masses=2)
    assert len(two.params["masses"]) == 2
    from scipy import ndimage

    assert ndimage.label(two.mass_mask)[1] == 2


def test_mass_is_brighter_than_its_surroundings():
    # Adding the mass to the same tissue raises the mean inside the mask.
    config = SynthConfig(mass_contrast_range=(0.8, 0.8))
    with_mass = make_mammogram(11, (128, 96), n_masses=1, config=config)
    inside = with_mass.image[with_mass.mass_mask].mean()
    from scipy import ndimage

    ring = ndimage.binary_dilation(with_mass.mass_mask, iterations=6) & ~ndimage.binary_dilation(
        with_mass.mass_mask, iterations=2) & with_mass.organ_mask
    assert inside > with_mass.image[ring].mean()


def test_every_shape_view_and_laterality_occurs():
    params = [make_mammogram(s, (64, 48), n_masses=1).params for s in range(60)]
    assert {p["masses"][0]["shape"] for p in params} == set(MASS_SHAPES)
    assert {p["view"] for p in params} == {"CC", "MLO"}
    assert {p["laterality"] for p in params} == {"L", "R"}
    assert {p["density"] for p in params} == {"a", "b", "c", "d"}


def test_laterality_puts_chest_wall_on_its_side():
    for seed in range(20):
        sample = make_mammogram(seed, (64, 48))
        left, right = sample.organ_mask[:, 0].sum(), sample.organ_mask[:, -1].sum()
        assert (left > right) == (sample.params["laterality"] == "L")


def test_mlo_views_have_a_pectoral_muscle_outside_the_organ():
    for seed in range(20):
        sample = make_mammogram(seed, (128, 96))
        corner = sample.organ_mask[0, 0] if sample.params["laterality"] == "L" else sample.organ_mask[0, -1]
        if sample.params["view"] == "MLO":
            assert not corner and sample.image[:3, :3].mean() + sample.image[:3, -3:].mean() > 0.4


@pytest.mark.parametrize(
    "option, value",
    [("mass_contrast_range", (0.9, 0.9)), ("mass_radius_range", (0.06, 0.06)), ("beta_range", (3.2, 3.2)),
     ("shapes", ("spiculated",)), ("fat_level", 0.2), ("noise_sigma", 0.03), ("mlo_probability", 1.0),
     ("density_probabilities", (1.0, 0.0, 0.0, 0.0))],
)
def test_each_config_option_changes_the_image(option, value):
    base = make_mammogram(4, (64, 48), n_masses=1)
    changed = make_mammogram(4, (64, 48), n_masses=1, config=SynthConfig(**{option: value}))
    assert not np.array_equal(base.image, changed.image)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"shapes": ("square",)}, "shapes must be"), ({"mass_radius_range": (0.1, 0.05)}, "mass_radius_range"),
     ({"density_probabilities": (1, 1, 0, 0)}, "density_probabilities")],
)
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**kwargs)


def test_too_small_size_is_refused():
    with pytest.raises(ValueError, match="at least 32x32"):
        make_mammogram(0, (16, 16))
