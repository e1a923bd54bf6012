"""The generator's families (issue 17): textures, lesion kinds, distractors, film acquisition, hold-out."""

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from tfsal.cli.main import cli
from tfsal.data import synthetic_families as families
from tfsal.data.manifest import read_manifest
from tfsal.data.synthetic import SynthConfig, make_mammogram

SIZE = (128, 96)


def _only(**kwargs):
    """The mixture restricted to the given family settings."""
    return dataclasses.replace(SynthConfig.mixture(), **kwargs)


def test_the_classic_world_draws_no_family_and_records_none():
    assert SynthConfig().classic and not SynthConfig.mixture().classic
    sample = make_mammogram(3, SIZE, n_masses=1)
    assert "world" not in sample.params


def test_every_family_occurs_in_the_mixture_and_is_recorded():
    worlds = [make_mammogram(s, (64, 48), n_masses=1, config=SynthConfig.mixture()).params["world"]
              for s in range(40)]
    assert {w["texture"] for w in worlds} == set(families.TEXTURES)
    assert {w["acquisition"] for w in worlds} == set(families.ACQUISITIONS)
    assert any(w["distractors"] for w in worlds) and not all(w["distractors"] for w in worlds)


def test_a_held_out_texture_is_never_drawn():
    config = SynthConfig.mixture(textures=("gaussian", "fibrous", "cloudy"))
    textures = {make_mammogram(s, (64, 48), config=config).params["world"]["texture"] for s in range(40)}
    assert "nodular" not in textures and textures == {"gaussian", "fibrous", "cloudy"}


@pytest.mark.parametrize("texture", families.TEXTURES)
def test_each_texture_makes_another_image_from_the_same_seed(texture):
    base = make_mammogram(5, SIZE, config=_only(textures=("gaussian",), acquisitions=("digital",)))
    other = make_mammogram(5, SIZE, config=_only(textures=(texture,), acquisitions=("digital",)))
    assert other.params["world"]["texture"] == texture
    assert (texture == "gaussian") == np.array_equal(base.image, other.image)


def test_fibrous_streaks_run_towards_the_nipple():
    # In a breast whose nipple is at the middle of the right edge, the streaks along the middle
    # rows run horizontally: the field varies more from row to row than from column to column.
    breast = np.zeros((128, 128), bool)
    breast[16:112, :] = True
    fields = [families.texture_field(np.random.default_rng(s), "fibrous", breast, 3.0,
                                     lambda shape, b: np.zeros(shape, np.float32))[0] for s in range(4)]
    middle = np.stack(fields)[:, 48:80, 16:96]
    across = np.abs(np.diff(middle, axis=1)).mean()
    along = np.abs(np.diff(middle, axis=2)).mean()
    assert across > 2 * along


@pytest.mark.parametrize("kind", families.EXTRA_LESIONS)
def test_the_extra_lesion_kinds_lie_in_the_breast_and_are_brighter(kind):
    config = _only(shapes=(kind,), mass_contrast_range=(0.9, 0.9), acquisitions=("digital",),
                   distractor_probability=0.0, gamma_range=(1.0, 1.0))
    for seed in range(3):
        sample = make_mammogram(seed, SIZE, n_masses=1, config=config)
        assert sample.params["masses"][0]["shape"] == kind
        mask, organ = sample.mass_mask, sample.organ_mask
        assert mask.any() and not (mask & ~organ).any()
        healthy = make_mammogram(seed, SIZE, n_masses=0, config=config)
        assert sample.image[mask].mean() > healthy.image[mask].mean()


def test_film_puts_a_smaller_breast_in_a_dark_frame_with_its_masks():
    digital = _only(acquisitions=("digital",), breast_scale_range=(0.6, 0.6))
    film = _only(acquisitions=("film",), breast_scale_range=(0.6, 0.6), film_width_range=(1.0, 1.0))
    for seed in range(4):
        a = make_mammogram(seed, SIZE, n_masses=1, config=digital)
        b = make_mammogram(seed, SIZE, n_masses=1, config=film)
        assert b.params["world"]["scale"] == 0.6
        assert 0.25 < b.organ_mask.sum() / a.organ_mask.sum() < 0.45  # 0.6 ** 2 = 0.36
        assert b.mass_mask.any() and not (b.mass_mask & ~b.organ_mask).any()
        cy, cx = (round(v) for v in b.params["masses"][0]["centre"])
        assert b.mass_mask[max(0, cy - 3):cy + 4, max(0, cx - 3):cx + 4].any()


def test_film_marks_stay_clear_of_the_breast():
    config = _only(acquisitions=("film",))
    for seed in range(12):
        sample = make_mammogram(seed, SIZE, config=config)
        near = ndimage.binary_dilation(sample.organ_mask, iterations=2)
        labels = ndimage.binary_opening(sample.image > 0.75, iterations=1) & ~near
        # whatever bright is drawn outside the breast (labels, film edges) never touches it
        assert not (ndimage.binary_dilation(labels, iterations=1) & sample.organ_mask).any()


def test_distractors_are_drawn_in_healthy_images_without_a_mask():
    config = _only(distractor_probability=1.0, acquisitions=("digital",))
    drawn = [make_mammogram(s, SIZE, n_masses=0, config=config) for s in range(8)]
    assert all(not d.mass_mask.any() for d in drawn)
    assert sum(bool(d.params["world"]["distractors"]) for d in drawn) >= 6


@pytest.mark.parametrize("kwargs, message", [
    ({"textures": ("marble",)}, "textures must be"), ({"acquisitions": ()}, "acquisitions must be"),
    ({"distractor_probability": 1.5}, "distractor_probability"), ({"gamma_range": (2.0, 1.0)}, "gamma_range"),
])
def test_bad_family_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**kwargs)


def test_cli_writes_the_chosen_world_and_refuses_an_unknown_texture(tmp_path):
    out = tmp_path / "nodular"
    args = ["data", "synth", "--out", str(out), "--n-mass", "3", "--n-healthy", "3", "--size", "64x48",
            "--world", "mixture", "--workers", "1"]
    result = CliRunner().invoke(cli, [*args, "--textures", "nodular"])
    assert result.exit_code == 0, result.output
    described = json.loads((out / "synth.json").read_text())
    assert described["config"]["textures"] == ["nodular"]
    assert {i["world"]["texture"] for i in described["images"]} == {"nodular"}
    records = {r.image.name: r for r in read_manifest(out)}  # the manifest says what each image is
    for image in described["images"]:
        extra = records[image["image"]].extra
        assert extra["texture"] == "nodular" and extra["acquisition"] == image["world"]["acquisition"]
        assert extra["density"] == image["density"]
        assert extra["lesion"] == (image["masses"][0]["shape"] if image["label"] else "")
    refused = CliRunner().invoke(cli, [*args, "--textures", "nodular,marble"])
    assert refused.exit_code == 2 and "textures must be" in refused.output and "Traceback" not in refused.output


def test_a_distortions_lines_lie_in_its_ground_truth_mask():
    """The spicules radiate from the small core to about the mask's edge (they once started there)."""
    config = _only(shapes=("distortion",), mass_contrast_range=(0.9, 0.9), acquisitions=("digital",),
                   distractor_probability=0.0, gamma_range=(1.0, 1.0), noise_factor_range=(1.0, 1.0))
    inside = []
    for seed in range(6):
        sample = make_mammogram(seed, SIZE, n_masses=1, config=config)
        healthy = make_mammogram(seed, SIZE, n_masses=0, config=config)
        added = (sample.image - healthy.image) > 0.04  # well above the detector noise
        near = ndimage.binary_dilation(sample.mass_mask, iterations=1)
        inside.append((added & near).sum() / max(1, added.sum()))
    assert np.median(inside) > 0.5


def test_film_narrows_the_breast_and_brightens_and_stretches_its_tones():
    plain = _only(acquisitions=("film",), breast_scale_range=(1.0, 1.0), film_width_range=(1.0, 1.0),
                  film_gain_range=(1.0, 1.0), film_lift_range=(0.0, 0.0), gamma_range=(1.0, 1.0))
    narrow = dataclasses.replace(plain, film_width_range=(0.5, 0.5))
    toned = dataclasses.replace(plain, film_gain_range=(1.6, 1.6), film_lift_range=(0.15, 0.15))
    for seed in range(3):
        a, b, c = (make_mammogram(seed, SIZE, n_masses=1, config=k) for k in (plain, narrow, toned))
        assert b.params["world"]["film_width"] == 0.5 and a.params["world"]["film_width"] == 1.0
        width = [np.ptp(np.flatnonzero(s.organ_mask.any(axis=0))) + 1 for s in (a, b)]
        assert 0.4 < width[1] / width[0] < 0.6
        assert b.mass_mask.any() and not (b.mass_mask & ~b.organ_mask).any()
        cy, cx = (round(v) for v in b.params["masses"][0]["centre"])
        assert b.mass_mask[max(0, cy - 3):cy + 4, max(0, cx - 3):cx + 4].any()
        inside = a.organ_mask & c.organ_mask
        assert c.image[inside].mean() > a.image[inside].mean() + 0.1
        assert c.image[inside].std() > 1.3 * a.image[inside].std()


def test_film_tone_leaves_the_digital_detectors_images_and_the_classic_world_alone():
    digital = _only(acquisitions=("digital",))
    before = dataclasses.replace(digital, film_width_range=(1.0, 1.0), film_gain_range=(1.0, 1.0),
                                 film_lift_range=(0.0, 0.0))
    for seed in range(3):
        np.testing.assert_array_equal(make_mammogram(seed, SIZE, n_masses=1, config=digital).image,
                                      make_mammogram(seed, SIZE, n_masses=1, config=before).image)
    assert not SynthConfig(film_width_range=(0.5, 1.0)).classic
    np.testing.assert_array_equal(make_mammogram(1, SIZE, n_masses=1).image,
                                  make_mammogram(1, SIZE, n_masses=1, config=SynthConfig()).image)
    with pytest.raises(ValueError, match="film_lift_range must satisfy 0 <= low"):
        SynthConfig(film_lift_range=(-0.1, 0.2))
    for name in ("film_width_range", "breast_scale_range"):
        with pytest.raises(ValueError, match=f"{name} must satisfy 0 < low <= high <= 1.0"):
            SynthConfig(**{name: (0.8, 1.2)})


def test_a_films_black_bands_never_cover_a_mass():
    # a mass at the top or bottom of the frame, where the bands of a square film fitted to the working
    # size fall: the image keeps every pixel of its mass (it once lost the whole mass, label kept)
    image = np.full((64, 48), 0.4, np.float32)
    breast = np.zeros(image.shape, bool)
    breast[:, :40] = True
    world = dataclasses.replace(families.draw_world(np.random.default_rng(0), _only(acquisitions=("film",))),
                                acquisition="film", scale=1.0, film_width=1.0)
    for seed in range(40):
        for rows in (slice(1, 5), slice(59, 63)):
            mass = np.zeros(image.shape, bool)
            mass[rows, 10:14] = True
            masks = {"breast": breast, "organ": breast, "mass": mass}
            frame, moved, _ = families.filmify(np.random.default_rng(seed), image, masks, [], world)
            assert moved["mass"].sum() == mass.sum()
            assert (frame[moved["mass"]] > 0.05).all()  # not blacked out


def test_the_film_shoulder_is_straight_then_rises_smoothly_below_white():
    x = np.linspace(-0.2, 3.0, 3201)
    y = families.film_shoulder(x)
    low = x <= families.FILM_SHOULDER
    np.testing.assert_array_equal(y[low], x[low])
    assert np.all(np.diff(y) > 0) and y.max() < 1.0
    knee = families.FILM_SHOULDER
    assert families.film_shoulder(np.array([knee + 1e-4]))[0] == pytest.approx(knee + 1e-4, abs=1e-7)


def test_the_strongest_film_tone_keeps_a_lesions_pixels_below_white():
    """Before the shoulder, the tone's clip at 1 whitened a quarter to two fifths of a lesion's pixels in
    half of these images (drawn, labelled, and not there to see)."""
    strongest = _only(acquisitions=("film",), film_gain_range=(1.8, 1.8), film_lift_range=(0.25, 0.25))
    white = []
    for seed in range(8):
        sample = make_mammogram(seed, SIZE, n_masses=1, config=strongest)
        assert sample.mass_mask.any()
        white.append(float((sample.image[sample.mass_mask] >= 0.999).mean()))
    assert max(white) < 0.1 and np.mean(white) < 0.03
