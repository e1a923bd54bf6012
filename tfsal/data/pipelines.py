"""tf.data pipelines from a manifest: classification, patch pre-training and inpainting.

All three share one loader, :func:`load_examples`: each record's files are decoded in parallel
(``tf.numpy_function`` around ``read_image`` / ``read_mask``), resized to the working size with
:class:`~tfsal.data.resize.PadResize` (aspect kept, zero padding) and cached (in memory by
default). An example is a dict of float32 ``image`` ``[H, W, 1]`` in [0, 1], ``mass``
``[H, W, 1]`` (1 on the ground-truth mass mask), ``organ`` ``[H, W, 1]`` (1 in the breast: the
record's ``organ`` file, else :func:`~tfsal.data.organ.breast_mask` of the image, computed once
and cached) and ``label``. After the cache come the per-epoch steps (shuffle, augmentation,
random holes), then batching and prefetching.

Determinism: every random step is stateless and seeded. With ``training=True`` each element
gets a seed from ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`` and the
shuffle uses ``seed`` with ``reshuffle_each_iteration=True``: every epoch differs from the
previous one, and a fresh dataset with the same ``seed`` (and global seed) repeats the
sequence of epochs. With ``training=False`` element ``i`` gets the seed ``[seed, i]``, so
every epoch is the same.

Errors: missing files raise :class:`~tfsal.errors.ImageReadError` (naming the file) when the
dataset is built. A file that exists but cannot be decoded is found only when it is read,
inside ``tf.numpy_function``; TensorFlow then raises a ``tf.errors.OpError`` (usually
``UnknownError``) whose message holds the ``ImageReadError`` text with the file name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfsal.data.augment import Augmentation, augment_image, random_flips
from tfsal.data.holes import random_blob_mask, random_hole_mask
from tfsal.data.image_io import read_image, read_mask
from tfsal.data.lesion_grid import grid_targets
from tfsal.data.manifest import Record, read_manifest
from tfsal.data.organ import breast_mask
from tfsal.data.resize import PadResize, check_hw
from tfsal.errors import ImageReadError, TfsalError

__all__ = ["DEFAULT_SIZE", "Augmentation", "classification_dataset", "default_patch_size",
           "inpainting_dataset", "load_examples", "patch_dataset"]

DEFAULT_SIZE = (256, 192)
PAPER_HEIGHT = 576  # the paper's working height (576x448)
PAPER_PATCH = 224  # the paper's pre-training patch side at 576x448
MIN_ORGAN_FRACTION = 0.5  # a background patch is at least this much breast, where possible
AUTOTUNE = tf.data.AUTOTUNE


def default_patch_size(height: int) -> int:
    """The paper's 224 px patch at 576 rows, scaled: ``round(224 * height / 576)``."""
    return max(1, round(PAPER_PATCH * height / PAPER_HEIGHT))


# -- loading ----------------------------------------------------------------------------------
def _as_records(records) -> list[Record]:
    return read_manifest(records) if isinstance(records, (str, os.PathLike)) else list(records)


def _check_size(size) -> tuple[int, int]:
    return check_hw("size", size)


def _check_files(records: list[Record]) -> None:
    for record in records:
        for file in (record.image, record.mask, record.organ):
            if file is not None and not Path(file).is_file():
                raise ImageReadError(file, "file does not exist")


def _load_numpy(image_path: bytes, mask_path: bytes, organ_path: bytes, size):
    """Reads one record's files and resizes them to ``size`` (runs in tf.numpy_function)."""
    image_path, mask_path, organ_path = (p.decode() for p in (image_path, mask_path, organ_path))
    image, _ = read_image(image_path)
    fit = PadResize.fit(image.shape[:2], size)

    def resized_mask(path):
        mask = read_mask(path)
        if mask.shape != image.shape[:2]:
            raise ImageReadError(path, f"mask is {mask.shape[0]}x{mask.shape[1]} but its image "
                                 f"{image_path} is {image.shape[0]}x{image.shape[1]}")
        return fit.apply_mask(mask)

    mass = resized_mask(mask_path) if mask_path else np.zeros(size, bool)
    organ = resized_mask(organ_path) if organ_path else fit.apply_mask(breast_mask(image))
    image = np.clip(fit.apply(image), 0.0, 1.0)  # interpolation may overshoot by an ulp
    return image, mass[:, :, None].astype(np.float32), organ[:, :, None].astype(np.float32)


def load_examples(records, size=DEFAULT_SIZE, cache: bool | str = True) -> tf.data.Dataset:
    """The shared loader: one dict per record (see the module docstring), in record order.

    Args:
        records: a list of :class:`~tfsal.data.manifest.Record` or a manifest path.
        size: working size ``(height, width)``.
        cache: ``True`` caches in memory, a path caches to that file (use one file per
            size and record list), ``False`` does not cache.

    Returns:
        An unbatched ``tf.data.Dataset`` of dicts.

    Raises:
        ImageReadError: a file named by a record does not exist.
        ValueError: ``size`` is not two positive ints.
    """
    records, size = _as_records(records), _check_size(size)
    _check_files(records)
    paths = [[str(r.image), str(r.mask or ""), str(r.organ or "")] for r in records]
    labels = [float(r.label) for r in records]
    paths, labels = tf.constant(paths, tf.string, [len(paths), 3]), tf.constant(labels, tf.float32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))

    def load(path, label):
        arrays = tf.numpy_function(lambda *p: _load_numpy(*p, size), tf.unstack(path), [tf.float32] * 3)
        example = {k: tf.ensure_shape(a, [*size, 1]) for k, a in zip(("image", "mass", "organ"), arrays, strict=True)}
        return {**example, "label": label}

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache("" if cache is True else os.fspath(cache))
    return ds


# -- per-epoch randomness -----------------------------------------------------------------------

def load_split(records, size) -> dict[str, np.ndarray]:
    """The records' examples as numpy arrays: ``image``, ``mass``, ``organ`` ``[N, H, W, 1]`` and
    ``label`` ``[N]`` at ``size`` (no cache), for code that works on whole arrays (evaluation)."""
    arrays = {"image": [], "mass": [], "organ": [], "label": []}
    for example in load_examples(records, size, cache=False):
        for key in arrays:
            arrays[key].append(example[key].numpy())
    return {key: np.stack(value) for key, value in arrays.items()}

def _with_seeds(ds: tf.data.Dataset, seed: int, training: bool, shuffle: bool) -> tf.data.Dataset:
    """Shuffles (when asked) and pairs each element with a stateless seed ``[2]`` int64."""
    if shuffle:
        ds = ds.shuffle(max(1, int(ds.cardinality())), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed, rerandomize_each_iteration=True) if training else tf.data.Dataset.counter()
    seeds = seeds.map(lambda r: tf.stack([tf.constant(seed, tf.int64), tf.cast(r, tf.int64)]))
    return tf.data.Dataset.zip(ds, seeds)


def _finish(ds: tf.data.Dataset, element, batch_size: int) -> tf.data.Dataset:
    """Maps ``element`` over ``ds`` in parallel (order kept), then batches and prefetches."""
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batch_size must be a positive int. Received: batch_size={batch_size!r}")
    return ds.map(element, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size).prefetch(AUTOTUNE)


# -- classification -----------------------------------------------------------------------------
def classification_dataset(
    records, size=DEFAULT_SIZE, batch_size: int = 8, training: bool = False, seed: int = 0,
    augment: bool | Augmentation | None = None, cache: bool | str = True, infill=None,
    grid: tuple[int, int] | None = None, class_weight: dict | None = None,
) -> tf.data.Dataset:
    """Whole images and labels for training or evaluating the classifier.

    Args:
        records: a list of :class:`~tfsal.data.manifest.Record` or a manifest path.
        size: working size ``(height, width)``.
        batch_size: images per batch.
        training: shuffle every epoch (seeded) and, by default, augment.
        seed: seed of the shuffle and the augmentation.
        augment: ``None`` augments when ``training``; ``True`` uses :class:`Augmentation`
            defaults; an :class:`Augmentation` sets the ranges; ``False`` turns it off.
        cache: as :func:`load_examples`.
        infill: a :class:`tfsal.train.infill.InfillAugmentation` that inpaints random healthy
            regions (before the geometric augmentation), or None.
        grid: ``(rows, cols)`` of a lesion grid (:func:`tfsal.data.lesion_grid.grid_targets`) to add to
            each label, moved with the image by the augmentation; for location-supervised training.
        class_weight: ``{0: w0, 1: w1}``: each element gets its label's weight as a sample weight.

    Returns:
        Dataset of ``(image [B, H, W, 1] float32, label [B] float32)``; with ``class_weight``,
        ``(image, label, weight [B])``. With ``grid`` the label is ``(label, grid [B, rows, cols,
        1])`` and the weight (all 1 without ``class_weight``) ``(weight, grid weight [B, rows, cols])``:
        the image's weight times the cell weights, 0 for a lesion image without a mask (its place unknown).

    Raises:
        ImageReadError: a file named by a record does not exist.
        ValueError: a bad ``size``, ``batch_size`` or ``grid``.
    """
    augment = Augmentation() if augment is True or (augment is None and training) else augment
    records = _as_records(records)
    examples = load_examples(records, size, cache)
    if grid is not None:  # after the cache, which keeps what every pipeline shares
        grid = check_hw("grid", grid)
        known = tf.constant([r.mask is not None or r.label == 0 for r in records], tf.float32)
        examples = tf.data.Dataset.zip(examples, tf.data.Dataset.from_tensor_slices(known)).map(
            lambda example, k: {**example, "mask_known": k})
    ds = _with_seeds(examples, seed, training, shuffle=training)
    if infill is not None:
        ds = infill.apply(ds)
    weights = None if class_weight is None else tf.constant([class_weight[0], class_weight[1]], tf.float32)

    def element(example, element_seed):
        image, mass = example["image"], example["mass"]
        if augment and grid is not None:
            image, mass = augment_image(image, element_seed, augment, mask=mass)
        elif augment:
            image = augment_image(image, element_seed, augment)
        label = example["label"]
        weight = 1.0 if weights is None else tf.gather(weights, tf.cast(label, tf.int32))
        if grid is None:
            return (image, label) if weights is None else (image, label, weight)
        target, cells = grid_targets(mass, grid)
        return image, (label, target), (weight, weight * example["mask_known"] * cells)

    return _finish(ds, element, batch_size)


# -- patches ------------------------------------------------------------------------------------
def _box_sums(x, p: int):
    """Sums of ``x`` ``[H, W]`` over every ``p x p`` window: ``[H - p + 1, W - p + 1]``."""
    c = tf.pad(tf.cumsum(tf.cumsum(x, 0), 1), [[1, 0], [1, 0]])
    return c[p:, p:] - c[:-p, p:] - c[p:, :-p] + c[:-p, :-p]


def _random_true(seed, valid):
    """A uniformly chosen ``(row, col)`` int32 where ``valid`` (non-empty) is True."""
    where = tf.cast(tf.where(valid), tf.int32)
    return where[tf.random.stateless_uniform([], seed, 0, tf.shape(where)[0], tf.int32)]


def _has_mass(example):
    return tf.reduce_max(example["mass"]) > 0.5


def _mass_corner(seed, mass, p: int):
    """Top-left corner of a mass patch.

    A random mass pixel ``q`` is chosen; the patch holds ``q`` and every mass pixel of the
    ``p x p`` window around ``q``, at a random position among those that do (the jitter).
    A mass larger than the patch is cut.
    """
    s_pixel, s_jitter = tf.unstack(tf.random.split(seed, 2))
    limit = tf.shape(mass) - p
    q = _random_true(s_pixel, mass > 0.5)
    window_lo = tf.clip_by_value(q - p // 2, 0, limit)
    window = tf.slice(mass, window_lo, [p, p]) > 0.5
    rows = tf.cast(tf.where(tf.reduce_any(window, 1))[:, 0], tf.int32) + window_lo[0]
    cols = tf.cast(tf.where(tf.reduce_any(window, 0))[:, 0], tf.int32) + window_lo[1]
    first, last = tf.stack([rows[0], cols[0]]), tf.stack([rows[-1], cols[-1]])
    low, high = tf.maximum(last - p + 1, 0), tf.minimum(first, limit)
    return tf.stack([tf.random.stateless_uniform([], s, low[i], high[i] + 1, tf.int32)
                     for i, s in enumerate(tf.unstack(tf.random.split(s_jitter, 2)))])


def _background_corner(seed, mass, organ, p: int):
    """Top-left corner of a background patch: no mass pixel, centre in the organ and at least
    ``MIN_ORGAN_FRACTION`` of it in the organ (else the most organ a mass-free patch can hold).
    """
    height, width = mass.shape
    free = _box_sums(mass, p) < 0.5
    coverage = _box_sums(organ, p) / (p * p)
    centre_in = organ[p // 2 : p // 2 + height - p + 1, p // 2 : p // 2 + width - p + 1] > 0.5
    score = tf.where(free & centre_in, coverage, -1.0)
    valid = score >= MIN_ORGAN_FRACTION
    valid = tf.cond(tf.reduce_any(valid), lambda: valid, lambda: score >= tf.reduce_max(score))
    return _random_true(seed, valid)


def patch_dataset(
    records, size=DEFAULT_SIZE, patch_size: int | None = None, patches_per_image: int = 8,
    batch_size: int = 32, training: bool = True, seed: int = 0, cache: bool | str = True,
) -> tf.data.Dataset:
    """Background-vs-mass patches for pre-training the classifier.

    Paper: "pre-trained by 50k 224x224 pixel patches from the training data with the task of
    classifying background vs. masses" (at 576x448). An epoch has ``patches_per_image`` mass
    patches per image with a mass mask (:func:`_mass_corner`) and as many background patches
    (:func:`_background_corner`) from all usable images, healthy or not; the classes alternate,
    so batches are balanced. Records labelled 1 without a mask are skipped.

    Args:
        records: a list of :class:`~tfsal.data.manifest.Record` or a manifest path.
        size: working size ``(height, width)``.
        patch_size: patch side; ``None`` gives :func:`default_patch_size` (100 px at 256 rows).
        patches_per_image: mass patches per mass image per epoch.
        batch_size: patches per batch.
        training: shuffle images and add random flips; positions are random either way, but
            repeat every epoch without ``training``.
        seed: seed of the shuffle, positions and flips.
        cache: as :func:`load_examples`.

    Returns:
        Dataset of ``(patch [B, p, p, 1] float32, label [B] float32)``, 1 = mass.

    Raises:
        TfsalError: no record has a mass mask.
        ImageReadError: a file named by a record does not exist.
        ValueError: a bad size, patch size or count.
    """
    size = _check_size(size)
    p = default_patch_size(size[0]) if patch_size is None else patch_size
    if not (isinstance(p, int) and 1 <= p <= min(size)):
        raise ValueError(f"patch_size must be an int in [1, {min(size)}] for size {size}. Received: patch_size={p!r}")
    if not (isinstance(patches_per_image, int) and patches_per_image > 0):
        raise ValueError(f"patches_per_image must be a positive int. Received: patches_per_image={patches_per_image!r}")
    records = [r for r in _as_records(records) if r.label == 0 or r.mask is not None]
    if not any(r.label == 1 for r in records):
        raise TfsalError("patch_dataset needs at least one record labelled 1 with a mass mask")
    examples = load_examples(records, size, cache)

    def shuffled(ds, offset):
        return ds.shuffle(len(records), seed + offset, reshuffle_each_iteration=True) if training else ds

    mass = shuffled(examples.filter(_has_mass), 1).repeat(patches_per_image).map(lambda x: (x, 1.0))
    usable = examples.filter(lambda x: (x["label"] < 0.5) | _has_mass(x))  # healthy, or mass located
    background = shuffled(usable, 2).repeat().map(lambda x: (x, 0.0))
    ds = tf.data.Dataset.choose_from_datasets([mass, background], tf.data.Dataset.range(2).repeat())
    ds = _with_seeds(ds, seed, training, shuffle=False)

    def element(pair, element_seed):
        (example, label), (s_corner, s_flip) = pair, tf.unstack(tf.random.split(element_seed, 2))
        m, o = example["mass"][:, :, 0], example["organ"][:, :, 0]
        corner = tf.cond(label > 0.5, lambda: _mass_corner(s_corner, m, p),
                         lambda: _background_corner(s_corner, m, o, p))
        patch = tf.ensure_shape(tf.slice(example["image"], tf.concat([corner, [0]], 0), [p, p, 1]), [p, p, 1])
        return (random_flips(patch, s_flip) if training else patch), label

    return _finish(ds, element, batch_size)


# -- inpainting ---------------------------------------------------------------------------------
def inpainting_dataset(
    records, size=DEFAULT_SIZE, batch_size: int = 4, training: bool = True, seed: int = 0,
    hole_size: int | None = None, max_holes: int = 400, cache: bool | str = True, blob_probability: float = 0.0,
) -> tf.data.Dataset:
    """Healthy images with random hole masks, for training the inpainter.

    Paper: the inpainter "was trained on the healthy training samples"; holes as
    :func:`~tfsal.data.holes.random_hole_mask` (inside the breast).

    Args:
        records: a list of :class:`~tfsal.data.manifest.Record` or a manifest path; only
            records labelled 0 are used.
        size: working size ``(height, width)``.
        batch_size: images per batch.
        training: shuffle, random flips and new holes every epoch; without it the holes of
            element ``i`` are the same every epoch.
        seed: seed of the shuffle, flips and holes.
        hole_size: hole side; ``None`` scales the paper's 8 px at 576 rows.
        max_holes: the most holes per image (paper: 400).
        cache: as :func:`load_examples`.
        blob_probability: share of images whose mask also gets mass-sized smooth blobs
            (:func:`~tfsal.data.holes.random_blob_mask`); 0 is the paper's holes alone.

    Returns:
        Dataset of ``(image [B, H, W, 1], mask [B, H, W, 1])`` float32, mask 1 = keep, 0 = hole.

    Raises:
        TfsalError: no record is labelled 0.
        ImageReadError: a file named by a record does not exist.
        ValueError: a bad size, batch size or hole argument.
    """
    size = _check_size(size)
    records = [r for r in _as_records(records) if r.label == 0]
    if not records:
        raise TfsalError("inpainting_dataset needs at least one healthy record (label 0)")
    random_hole_mask(tf.zeros([2], tf.int64), *size, hole_size=hole_size, max_holes=max_holes)  # checks args
    if not 0 <= blob_probability <= 1:
        raise ValueError(f"blob_probability must be in [0, 1]. Received: blob_probability={blob_probability}")
    ds = _with_seeds(load_examples(records, size, cache), seed, training, shuffle=training)

    def element(example, element_seed):
        s_flip, s_holes, s_coin, s_blob = tf.unstack(tf.random.split(element_seed, 4))
        both = tf.concat([example["image"], example["organ"]], axis=-1)  # flipped together
        both = random_flips(both, s_flip) if training else both
        image, organ = both[:, :, :1], both[:, :, 1]
        mask = random_hole_mask(s_holes, *size, organ=organ, hole_size=hole_size, max_holes=max_holes)
        if blob_probability > 0:
            with_blobs = tf.random.stateless_uniform([], s_coin) < blob_probability
            mask = tf.cond(with_blobs, lambda: mask * random_blob_mask(s_blob, *size, organ=organ), lambda: mask)
        return image, mask

    return _finish(ds, element, batch_size)
