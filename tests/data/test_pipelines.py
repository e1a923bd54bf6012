"""Tests of tfsal.data.pipelines on a tiny dataset written by the test (64x48 working size)."""

import dataclasses

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfsal.data import augment, lesion_grid, pipelines
from tfsal.data import synthetic_families as families
from tfsal.data.manifest import Record, read_manifest, write_manifest
from tfsal.data.pipelines import (
    Augmentation,
    classification_dataset,
    inpainting_dataset,
    load_examples,
    patch_dataset,
)
from tfsal.errors import ImageReadError, TfsalError

SIZE = (64, 48)
BREAST, MASS = 0.5, 1.0  # tissue level (plus texture up to 0.58) and mass level


def write_example(folder, name, label, shape, seed, organ_file):
    """A bright half-ellipse breast with texture on black, plus a bright disc mass for label 1."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    organ = ((y - h / 2) / (0.45 * h)) ** 2 + (x / (0.8 * w)) ** 2 < 1
    image = np.where(organ, BREAST + 0.08 * rng.random(shape), 0.0)
    record = {"image": folder / f"{name}.png", "label": label, "split": "train"}
    if label:
        cy, cx = rng.integers(int(0.35 * h), int(0.65 * h)), rng.integers(int(0.15 * w), int(0.4 * w))
        mass = (y - cy) ** 2 + (x - cx) ** 2 <= 36
        image[mass] = MASS
        cv2.imwrite(str(folder / f"{name}_mask.png"), mass.astype(np.uint8) * 255)
        record["mask"] = folder / f"{name}_mask.png"
    if organ_file:
        cv2.imwrite(str(folder / f"{name}_organ.png"), organ.astype(np.uint8) * 255)
        record["organ"] = folder / f"{name}_organ.png"
    cv2.imwrite(str(record["image"]), np.round(image * 65535).astype(np.uint16))
    return Record(**record)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipelines")
    shapes = [(80, 60), (70, 70), (96, 60)]  # same aspect, padded columns, padded columns
    out = [
        write_example(folder, f"img{i}", label, shapes[i % 3], seed=i, organ_file=i % 2 == 0)
        for i, label in enumerate([0, 1, 0, 1, 0, 1])
    ]
    write_manifest(folder / "labels.csv", out)
    return out


def as_arrays(ds):
    return [tuple(t.numpy() for t in element) for element in ds]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def differs(a, b):
    return any(not np.array_equal(u, v) for x, y in zip(a, b, strict=True) for u, v in zip(x, y, strict=True))


# -- loader -------------------------------------------------------------------------------------
def test_load_examples(records):
    examples = list(load_examples(records, SIZE))
    assert len(examples) == len(records)
    for example, record in zip(examples, records, strict=True):
        for key in ("image", "mass", "organ"):
            assert example[key].shape == (*SIZE, 1) and example[key].dtype == tf.float32
        image, mass, organ = (example[k].numpy()[:, :, 0] for k in ("image", "mass", "organ"))
        assert image.min() >= 0 and image.max() <= 1
        assert float(example["label"]) == record.label
        assert set(np.unique(mass)) <= {0, 1} and set(np.unique(organ)) <= {0, 1}
        assert mass.any() == bool(record.label)
        assert np.median(image[mass > 0]) > 0.9 if record.label else True
        inside = (image > 0.2).astype(float)
        assert np.mean(inside == organ) > 0.9  # from the file or from breast_mask


def test_manifest_path_and_cache_file(records, tmp_path):
    from_path = as_arrays(classification_dataset(records[0].image.parent / "labels.csv", SIZE, batch_size=6))
    cached = classification_dataset(records, SIZE, batch_size=6, cache=str(tmp_path / "cache"))
    assert_same(from_path, as_arrays(cached))
    assert_same(from_path, as_arrays(cached))  # second pass reads the cache file
    assert list(tmp_path.iterdir())
    uncached = as_arrays(classification_dataset(records, SIZE, batch_size=6, cache=False))
    assert_same(from_path, uncached)
    assert len(read_manifest(records[0].image.parent)) == 6


# -- classification -------------------------------------------------------------------------------
def test_static_shapes(records):
    spec = classification_dataset(records, SIZE).element_spec
    assert spec[0].shape.as_list() == [None, *SIZE, 1] and spec[1].shape.as_list() == [None]
    spec = patch_dataset(records, SIZE, patch_size=16).element_spec
    assert spec[0].shape.as_list() == [None, 16, 16, 1] and spec[1].shape.as_list() == [None]
    spec = inpainting_dataset(records, SIZE).element_spec
    assert spec[0].shape.as_list() == spec[1].shape.as_list() == [None, *SIZE, 1]


def test_classification_shapes_and_labels(records):
    batches = as_arrays(classification_dataset(records, SIZE, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, *SIZE, 1), (2, *SIZE, 1)]
    assert all(b[0].dtype == np.float32 and b[1].dtype == np.float32 for b in batches)
    labels = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(labels, [r.label for r in records])
    images = np.concatenate([b[0] for b in batches])
    assert images.min() >= 0 and images.max() <= 1
    loaded = np.stack([e["image"].numpy() for e in load_examples(records, SIZE)])
    np.testing.assert_array_equal(images, loaded)  # no augmentation without training


def test_classification_size_option(records):
    image, _ = next(iter(classification_dataset(records, (32, 40), batch_size=2)))
    assert image.shape == (2, 32, 40, 1)


def test_classification_determinism_and_epochs(records):
    ds = classification_dataset(records, SIZE, batch_size=3, training=True, seed=1)
    epoch1, epoch2 = as_arrays(ds), as_arrays(ds)
    again = classification_dataset(records, SIZE, batch_size=3, training=True, seed=1)
    assert_same(epoch1, as_arrays(again))
    assert_same(epoch2, as_arrays(again))
    assert differs(epoch1, epoch2)
    other = as_arrays(classification_dataset(records, SIZE, batch_size=3, training=True, seed=2))
    assert differs(epoch1, other)
    eval_ds = classification_dataset(records, SIZE, batch_size=3)
    assert_same(as_arrays(eval_ds), as_arrays(eval_ds))


def test_augmentation_changes_images_and_keeps_labels(records):
    plain = as_arrays(classification_dataset(records, SIZE, batch_size=6, training=False))
    augmented = as_arrays(classification_dataset(records, SIZE, batch_size=6, training=False, augment=True))
    np.testing.assert_array_equal(plain[0][1], augmented[0][1])
    changed = [not np.array_equal(a, b) for a, b in zip(plain[0][0], augmented[0][0], strict=True)]
    assert all(changed)
    assert augmented[0][0].min() >= 0 and augmented[0][0].max() <= 1 + 1e-6
    no_aug = as_arrays(classification_dataset(records, SIZE, batch_size=6, training=True, augment=False))
    loaded = sorted(e["image"].numpy().tobytes() for e in load_examples(records, SIZE))
    assert sorted(x.tobytes() for x in no_aug[0][0]) == loaded  # shuffled, not altered


@pytest.mark.parametrize(
    "option",
    [{"rotation": 0.0}, {"zoom": (1.0, 1.0)}, {"horizontal_flip": False}, {"vertical_flip": False},
     {"gamma": (0.5, 2.0)}, {"film_tone": 1.0}],
)
def test_each_augmentation_option_changes_output(records, option):
    base = Augmentation(rotation=15.0, zoom=(0.9, 1.1), horizontal_flip=True, vertical_flip=True)
    changed = Augmentation(**{**base.__dict__, **option})
    a = as_arrays(classification_dataset(records, SIZE, batch_size=6, augment=base))
    b = as_arrays(classification_dataset(records, SIZE, batch_size=6, augment=changed))
    assert differs(a, b)


def test_gamma_is_a_power_of_the_image_and_leaves_the_other_draws_alone():
    rng = np.random.default_rng(3)
    image = tf.constant(rng.random((*SIZE, 1)), tf.float32)
    seeds = [tf.constant([7, i], tf.int64) for i in range(40)]
    plain = Augmentation(rotation=10.0)
    exponents = []
    for seed in seeds:
        base = augment.augment_image(image, seed, plain).numpy()
        toned = augment.augment_image(image, seed, Augmentation(rotation=10.0, gamma=(0.5, 2.0))).numpy()
        inside = base > 0.05  # the same geometry: toned == base ** g with one g per image
        g = np.median(np.log(toned[inside]) / np.log(base[inside]))
        np.testing.assert_allclose(toned, base ** g, atol=1e-4)
        exponents.append(g)
    assert 0.5 <= min(exponents) < 0.8 and 1.25 < max(exponents) <= 2.0  # log-uniform over the range
    assert np.mean(np.array(exponents) > 1) == pytest.approx(0.5, abs=0.25)


def test_the_film_tone_is_the_generators_and_leaves_the_other_draws_alone():
    """The augmentation draws the synthetic mixture's film tone (the generator's function with the breast
    taken as the pixels above TISSUE), on a share of the images, and changes nothing else."""
    rng = np.random.default_rng(4)
    image = np.clip(rng.normal(0.35, 0.2, (*SIZE, 1)), 0, 1).astype(np.float32)
    image[:, :10] = 0.03  # background
    fixed = Augmentation(rotation=0.0, zoom=(1.0, 1.0), horizontal_flip=False, vertical_flip=False,
                         film_tone=1.0, film_gain=(1.6, 1.6), film_lift=(0.15, 0.15))
    toned = augment.augment_image(tf.constant(image), tf.constant([1, 2], tf.int64), fixed).numpy()
    world = families.World(acquisition="film", film_gain=1.6, film_lift=0.15)
    expected = families.film_tone(image[..., 0], image[..., 0] > augment.TISSUE, world)
    np.testing.assert_allclose(toned[..., 0], expected, atol=1e-5)
    assert toned[:, :10].max() == 0.0 and toned.max() < 1.0  # the background to black, no pixel white
    for other in ({"film_gain": (1.2, 1.2)}, {"film_lift": (0.0, 0.0)}):
        again = augment.augment_image(tf.constant(image), tf.constant([1, 2], tf.int64),
                                      dataclasses.replace(fixed, **other)).numpy()
        assert not np.allclose(again, toned, atol=1e-3)
    half = dataclasses.replace(fixed, film_tone=0.5, rotation=10.0)
    plain = dataclasses.replace(half, film_tone=0.0)
    seeds = [tf.constant([9, i], tf.int64) for i in range(40)]
    changed = sum(not np.array_equal(augment.augment_image(tf.constant(image), seed, half),
                                     augment.augment_image(tf.constant(image), seed, plain)) for seed in seeds)
    assert 10 <= changed <= 30  # about half; the others exactly as without the tone
    with pytest.raises(ValueError, match="film_tone must be a share"):
        Augmentation(film_tone=2.0)


def test_augmentation_rotation_only_geometry():
    image = np.zeros((*SIZE, 1), np.float32)
    image[30:34, 20:28] = 1.0
    out = augment.rotate_zoom(tf.constant(image), tf.constant([0, 0], tf.int64), 0.0, (2.0, 2.0)).numpy()
    ys, xs = np.nonzero(out[:, :, 0] > 0.5)  # zoom 2 about the centre (31.5, 23.5)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (28, 35, 16, 31)


# -- patches ------------------------------------------------------------------------------------
def test_patch_labels_and_contents(records):
    p = pipelines.default_patch_size(SIZE[0])
    assert p == 25
    batches = as_arrays(patch_dataset(records, SIZE, patches_per_image=4, batch_size=8, seed=3))
    patches = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert patches.shape == (2 * 3 * 4, p, p, 1) and patches.dtype == np.float32
    assert labels.sum() == 12 and set(labels) == {0.0, 1.0}
    for batch in batches:
        assert batch[1].mean() == 0.5  # alternating classes: every even batch is balanced
    for patch, label in zip(patches[..., 0], labels, strict=True):
        if label:
            assert patch.max() > 0.9  # holds mass pixels
        else:
            assert patch.max() < 0.8  # no mass pixel
            # in the breast; tissue brighter than 0.2 stands in for the organ, hence the margin
            assert (patch > 0.2).mean() >= pipelines.MIN_ORGAN_FRACTION - 0.05


def test_patch_mass_fully_inside_when_it_fits(records):
    mass = next(e for e in load_examples(records, SIZE) if e["label"] > 0)["mass"][:, :, 0]
    for i in range(10):
        corner = pipelines._mass_corner(tf.constant([i, 0], tf.int64), mass, 25).numpy()
        window = mass.numpy()[corner[0] : corner[0] + 25, corner[1] : corner[1] + 25]
        assert window.sum() == mass.numpy().sum()


@pytest.mark.slow
def test_patch_determinism_and_options(records):
    def run(**kwargs):
        args = {"size": SIZE, "patches_per_image": 2, "batch_size": 4, "seed": 0, "training": True} | kwargs
        return as_arrays(patch_dataset(records, **args))

    ds = patch_dataset(records, SIZE, patches_per_image=2, batch_size=4, seed=0)
    first, second = as_arrays(ds), as_arrays(ds)
    assert_same(first, run())
    assert differs(first, second)
    assert differs(first, run(seed=1))
    assert run(patch_size=16)[0][0].shape == (4, 16, 16, 1)
    assert sum(len(b[1]) for b in run(patches_per_image=3)) == 2 * 3 * 3
    assert differs(first, run(training=False))
    evaluation = patch_dataset(records, SIZE, patches_per_image=2, batch_size=4, training=False)
    assert_same(as_arrays(evaluation), as_arrays(evaluation))


def test_patch_needs_masses(records):
    with pytest.raises(TfsalError, match="needs at least one record labelled 1 with a mass mask"):
        patch_dataset([r for r in records if r.label == 0], SIZE)
    with pytest.raises(ValueError, match="patch_size must be an int in \\[1, 48\\]"):
        patch_dataset(records, SIZE, patch_size=49)


# -- inpainting ---------------------------------------------------------------------------------
def test_inpainting_healthy_only_masks_inside_breast(records):
    batches = as_arrays(inpainting_dataset(records, SIZE, batch_size=2, training=False))
    images = np.concatenate([b[0] for b in batches])
    masks = np.concatenate([b[1] for b in batches])
    healthy = [e for e in load_examples(records, SIZE) if e["label"] == 0]
    assert images.shape == masks.shape == (3, *SIZE, 1)
    np.testing.assert_array_equal(images, np.stack([e["image"].numpy() for e in healthy]))
    assert set(np.unique(masks)) == {0.0, 1.0}
    organs = np.stack([e["organ"].numpy() for e in healthy])
    assert not np.any((masks == 0) & (organs == 0))


@pytest.mark.slow
def test_inpainting_determinism_epochs_and_options(records):
    def run(**kwargs):
        return as_arrays(inpainting_dataset(records, **({"size": SIZE, "batch_size": 3, "seed": 0} | kwargs)))

    ds = inpainting_dataset(records, SIZE, batch_size=3, seed=0)
    first, second = as_arrays(ds), as_arrays(ds)
    assert_same(first, run())
    assert differs(first[0][1:], second[0][1:])  # new holes every epoch
    assert differs(first, run(seed=1))
    assert differs(first, run(hole_size=3))
    assert differs(first, run(max_holes=5))
    assert differs(first, run(training=False))
    with_blobs = run(blob_probability=1.0)
    assert differs(first, with_blobs)
    assert np.mean(with_blobs[0][1] == 0) > np.mean(first[0][1] == 0)  # blobs add holes to the paper's
    assert run(size=(32, 24))[0][1].shape == (3, 32, 24, 1)
    evaluation = inpainting_dataset(records, SIZE, batch_size=3, training=False)
    assert_same(as_arrays(evaluation), as_arrays(evaluation))


def test_inpainting_flips_image_and_holes_together(records):
    for image, mask in as_arrays(inpainting_dataset(records, SIZE, batch_size=1, seed=5)):
        assert not np.any((mask == 0) & (image < 0.2))  # holes stay on the (flipped) breast


def test_inpainting_needs_healthy(records):
    with pytest.raises(TfsalError, match="needs at least one healthy record"):
        inpainting_dataset([r for r in records if r.label == 1], SIZE)
    with pytest.raises(ValueError, match="hole_size"):
        inpainting_dataset(records, SIZE, hole_size=0)
    with pytest.raises(ValueError, match="blob_probability"):
        inpainting_dataset(records, SIZE, blob_probability=1.5)


# -- errors -------------------------------------------------------------------------------------
def test_missing_file_named_when_building(records, tmp_path):
    missing = Record(image=tmp_path / "gone.png", label=0)
    with pytest.raises(ImageReadError, match=r"gone\.png: file does not exist"):
        classification_dataset([*records, missing], SIZE)


def test_corrupt_file_named_when_reading(records, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    ds = classification_dataset([Record(image=bad, label=0)], SIZE)
    with pytest.raises(tf.errors.OpError, match=r"corrupt\.png"):
        list(ds)


def test_mask_of_wrong_size_named(records, tmp_path):
    mask = tmp_path / "small_mask.png"
    cv2.imwrite(str(mask), np.zeros((10, 10), np.uint8))
    ds = classification_dataset([Record(image=records[0].image, label=1, mask=mask)], SIZE)
    with pytest.raises(tf.errors.OpError, match=r"small_mask\.png: mask is 10x10 but its image"):
        list(ds)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"size": (0, 48)}, "size must be"), ({"size": (64,)}, "size must be"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments(records, kwargs, match):
    with pytest.raises(ValueError, match=match):
        classification_dataset(records, **({"size": SIZE} | kwargs))


def test_bad_augmentation():
    with pytest.raises(ValueError, match="rotation must be in"):
        Augmentation(rotation=-1)
    with pytest.raises(ValueError, match="zoom must be"):
        Augmentation(zoom=(1.2, 1.0))
    with pytest.raises(ValueError, match="gamma must be"):
        Augmentation(gamma=(0.0, 2.0))


# -- lesion grids (location-supervised training) ---------------------------------------------------
def test_a_mask_moves_with_its_image_and_keeps_out_of_the_gamma():
    rng = np.random.default_rng(5)
    image = tf.constant(rng.random((*SIZE, 1)), tf.float32)
    toned = Augmentation(rotation=15.0, zoom=(0.9, 1.1), gamma=(0.5, 2.0), film_tone=1.0)
    geometric = Augmentation(rotation=15.0, zoom=(0.9, 1.1))
    for i in range(8):
        seed = tf.constant([3, i], tf.int64)
        out, moved = augment.augment_image(image, seed, toned, mask=image)
        np.testing.assert_array_equal(out, augment.augment_image(image, seed, toned))  # as without a mask
        np.testing.assert_allclose(moved, augment.augment_image(image, seed, geometric), atol=1e-6)


def test_lesion_grid_is_the_lesion_share_of_each_cell_over_a_quarter():
    mass = np.zeros((*SIZE, 1), np.float32)  # 8x6 cells of 8x8 pixels
    mass[0:8, 0:8] = 1.0        # cell (0, 0) full
    mass[8:10, 8:16] = 1.0      # cell (1, 1): 16 of 64 pixels, a quarter
    mass[16:17, 16:24] = 0.9    # cell (2, 2): 8 pixels, an eighth
    mass[24:32, 24:32] = 0.4    # cell (3, 3): below the mask threshold
    grid = lesion_grid.lesion_grid(tf.constant(mass), (8, 6)).numpy()[:, :, 0]
    expected = np.zeros((8, 6))
    expected[0, 0], expected[1, 1], expected[2, 2] = 1.0, 1.0, 0.5
    np.testing.assert_allclose(grid, expected, atol=1e-6)


def test_balanced_cell_weights():
    target = np.zeros((4, 3, 1), np.float32)
    target[0, 0], target[1, 2] = 1.0, 0.3
    weights = lesion_grid.balanced_cell_weights(tf.constant(target)).numpy()
    np.testing.assert_allclose(weights[0, 0], 12 / 4)  # 2 lesion cells share half of 12
    np.testing.assert_allclose(weights[1, 2], 12 / 4)
    np.testing.assert_allclose(weights[2, 1], 12 / 20)  # 10 healthy cells share the other half
    np.testing.assert_allclose(weights.mean(), 1.0, rtol=1e-6)
    for uniform in (np.zeros_like(target), np.ones_like(target)):  # a healthy image; a lesion over every cell
        np.testing.assert_array_equal(lesion_grid.balanced_cell_weights(tf.constant(uniform)), np.ones((4, 3)))


def test_classification_with_a_grid_gives_lesion_targets_and_weights(records):
    no_mask = dataclasses.replace(records[5], mask=None)  # a lesion whose mask is unknown
    chosen = [*records[:5], no_mask]
    weights = {0: 0.75, 1: 1.5}
    images, (labels, grids), (w, w_grid) = (
        tuple(t.numpy() for t in part) if isinstance(part, tuple) else part.numpy()
        for part in next(iter(classification_dataset(chosen, SIZE, batch_size=6, augment=False, grid=(8, 6),
                                                      class_weight=weights))))
    examples = list(load_examples(chosen, SIZE))
    np.testing.assert_array_equal(images, np.stack([e["image"].numpy() for e in examples]))
    np.testing.assert_array_equal(labels, [r.label for r in chosen])
    for grid, example in zip(grids, examples, strict=True):
        np.testing.assert_allclose(grid, lesion_grid.lesion_grid(example["mass"], (8, 6)).numpy())
    assert grids[1].max() == 1.0 and grids[0].max() == 0.0  # a lesion's cells, and a healthy image's none
    np.testing.assert_array_equal(w, [weights[r.label] for r in chosen])
    assert w_grid.shape == (6, 8, 6)
    np.testing.assert_allclose(w_grid.mean(axis=(1, 2)), [0.75, 1.5, 0.75, 1.5, 0.75, 0.0])  # unknown lesion: 0
    for cells, grid in zip(w_grid[:5], grids[:5], strict=True):
        lesion = grid[:, :, 0] > 0
        if lesion.any():  # a lesion's cells weigh as much as the rest of its image's
            assert cells[lesion].sum() == pytest.approx(cells[~lesion].sum())
        else:
            assert np.ptp(cells) == 0
    plain = next(iter(classification_dataset(records, SIZE, batch_size=6, augment=False, class_weight=weights)))
    assert len(plain) == 3 and np.array_equal(plain[2].numpy(), [weights[r.label] for r in records])


def test_a_training_grid_moves_with_the_augmented_image(records):
    def centre(grid):
        rows, cols = np.mgrid[0:grid.shape[0], 0:grid.shape[1]]
        return np.array([np.sum(rows * grid), np.sum(cols * grid)]) / np.sum(grid)

    still = lesion_grid.lesion_grid(next(iter(load_examples(records[1:2], SIZE)))["mass"], (16, 12)).numpy()[:, :, 0]
    shifts = []
    for seed in range(6):
        images, (_, grids), _ = next(iter(classification_dataset(
            records[1:2], SIZE, batch_size=1, training=True, seed=seed, grid=(16, 12))))
        bright = lesion_grid.lesion_grid(tf.cast(images[0] > 0.9, tf.float32), (16, 12)).numpy()[:, :, 0]
        moved = grids.numpy()[0, :, :, 0]
        assert np.abs(centre(moved) - centre(bright)).max() < 0.5  # where the augmented lesion is
        shifts.append(np.abs(centre(moved) - centre(still)).max())
    assert max(shifts) > 2  # flips and rotations move it away from where it was
