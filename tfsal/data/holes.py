"""Random hole masks for training the inpainter.

The paper (Major et al. 2020, "Inpainting"): "For each image up to 400 8x8 pixel holes were
generated at random positions, where both single small holes and larger clusters were
simulated to mimic configurations during optimization" (images of 576x448 pixels).

tfsal scales the hole *side* with the image height, ``hole_size = max(1, round(8 * H / 576))``
(4 px at 256x192), and keeps the count (up to 400), so the largest hole fraction stays about
the paper's at any size. The mask convention is tfsal's: ``M = 1`` keeps a pixel, ``M = 0``
is a hole.

How a mask is drawn (all with stateless random ops, so it runs in tf.data graphs and the
same seed always gives the same mask):

1. The number of holes ``n`` is uniform in ``[min_holes, max_holes]``.
2. Holes are laid out in groups. A group is a cluster with probability
   ``cluster_probability`` (uniformly 2 to ``max_cluster_holes`` holes), else one single hole.
3. A group starts at a random centre (inside the organ when one is given). Each further hole
   of a cluster is a random-walk step of up to ``hole_size`` pixels per axis from the
   previous one, so cluster holes touch or overlap and form one irregular blob.
4. Holes whose centre leaves the organ are dropped, and hole pixels are kept inside the
   organ: holes in the black background teach the inpainter nothing, and during the
   explanation the mask is fixed to 1 outside the organ anyway.

Beyond the paper, :func:`random_blob_mask` draws mass-sized smooth blobs (the top share of a
smooth random field inside the organ). The paper's holes are at most a cluster of 8 px
squares; an explanation deletes whole masses (20 to 45 px at 256x192), and an inpainter that
never saw holes that large fills them with dark, flat blobs that the classifier learns to read
as "healthy" (found while fitting the in-fill fine-tuning, issue 4). The training pipeline
mixes both kinds (``blob_probability`` in :func:`tfsal.data.pipelines.inpainting_dataset`).

Two numpy helpers serve the in-fill augmentation (:class:`tfsal.train.infill.InfillAugmentation`)
and the inpainter check (:mod:`tfsal.evaluation.inpainter_check`): :func:`blob_hole_mask`, holes
that are the top share of a smoothed Gaussian random field inside the breast (shapes from a few
spots to large connected regions, as explanation masks), and :func:`dilated`, the 4-connected
dilation that keeps holes ``MASS_MARGIN`` of the height clear of a mass.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import ndimage

__all__ = ["MASS_MARGIN", "blob_hole_mask", "default_hole_size", "dilated", "random_blob_mask", "random_hole_mask",
           "random_hole_mask_numpy"]

PAPER_HOLE_SIZE = 8
PAPER_HEIGHT = 576
MASS_MARGIN = 0.02  # of the image height: spicules and blurred margins lie outside the core mask


def default_hole_size(height: int) -> int:
    """The paper's 8 px hole side at 576 rows, scaled to ``height``: ``max(1, round(8 * height / 576))``."""
    return max(1, round(PAPER_HOLE_SIZE * height / PAPER_HEIGHT))


def _check_args(height, width, hole_size, min_holes, max_holes, cluster_probability, max_cluster_holes):
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise ValueError(f"height and width must be positive ints. Received: height={height!r}, width={width!r}")
    if not (isinstance(hole_size, int) and 1 <= hole_size <= min(height, width)):
        raise ValueError(f"hole_size must be an int in [1, min(height, width)]. Received: hole_size={hole_size!r}")
    if not (isinstance(max_holes, int) and isinstance(min_holes, int) and 1 <= min_holes <= max_holes):
        raise ValueError(
            f"min_holes and max_holes must be ints with 1 <= min_holes <= max_holes. "
            f"Received: min_holes={min_holes!r}, max_holes={max_holes!r}"
        )
    if not 0.0 <= cluster_probability <= 1.0:
        raise ValueError(f"cluster_probability must be in [0, 1]. Received: {cluster_probability=!r}")
    if not (isinstance(max_cluster_holes, int) and max_cluster_holes >= 2):
        raise ValueError(f"max_cluster_holes must be an int >= 2. Received: max_cluster_holes={max_cluster_holes!r}")


def _organ_tensor(organ, height, width):
    """The organ as a bool ``[H, W]`` tensor (all True when ``organ`` is None)."""
    if organ is None:
        return tf.ones([height, width], tf.bool)
    organ = tf.convert_to_tensor(organ)
    if organ.shape.rank == 3:
        organ = organ[:, :, 0]
    if organ.shape.rank != 2 or (organ.shape.is_fully_defined() and organ.shape.as_list() != [height, width]):
        expected = f"[{height}, {width}] or [{height}, {width}, 1]"
        raise ValueError(f"organ must have shape {expected}. Received: shape={organ.shape}")
    return tf.ensure_shape(organ if organ.dtype == tf.bool else organ > 0.5, [height, width])


def _group_starts(seed, max_holes, cluster_probability, max_cluster_holes):
    """For each of ``max_holes`` slots, the index of the slot that starts its group."""
    s_kind, s_len = tf.unstack(tf.random.split(seed, 2))
    is_cluster = tf.random.stateless_uniform([max_holes], s_kind) < cluster_probability
    cluster_len = tf.random.stateless_uniform([max_holes], s_len, 2, max_cluster_holes + 1, tf.int32)
    lengths = tf.where(is_cluster, cluster_len, 1)
    ends = tf.cumsum(lengths)  # exclusive end slot of each group
    slots = tf.range(max_holes)
    group = tf.searchsorted(ends, slots, side="right")
    return tf.gather(tf.concat([[0], ends], 0), group)


def _sample_centres(seed, organ, count):
    """``count`` (row, col) int32 positions drawn uniformly from the organ's pixels."""
    width = tf.shape(organ)[1]
    flat = tf.reshape(organ, [-1])
    inside = tf.cast(tf.where(flat)[:, 0], tf.int32)
    # An empty organ falls back to the whole image (no hole will survive step 4 anyway).
    inside = tf.cond(tf.size(inside) > 0, lambda: inside, lambda: tf.range(tf.size(flat)))
    pick = tf.random.stateless_uniform([count], seed, 0, tf.size(inside), tf.int32)
    index = tf.gather(inside, pick)
    return tf.stack([index // width, index % width], axis=1)


def _hole_centres(seed, organ, hole_size, max_holes, cluster_probability, max_cluster_holes):
    """Centres of ``max_holes`` holes: group starts plus random-walk steps within clusters."""
    s_group, s_start, s_step = tf.unstack(tf.random.split(seed, 3))
    starts = _group_starts(s_group, max_holes, cluster_probability, max_cluster_holes)
    origin = _sample_centres(s_start, organ, max_holes)
    steps = tf.random.stateless_uniform([max_holes, 2], s_step, -hole_size, hole_size + 1, tf.int32)
    steps = tf.where((tf.range(max_holes) == starts)[:, None], 0, steps)
    walk = tf.cumsum(steps, axis=0)
    # position of slot i = origin of its group + the walk since the group started
    centres = tf.gather(origin, starts) + walk - tf.gather(walk, starts)
    shape = tf.shape(organ)
    return tf.clip_by_value(centres, 0, tf.stack([shape[0] - 1, shape[1] - 1]))


def random_hole_mask(
    seed,
    height: int,
    width: int,
    organ=None,
    hole_size: int | None = None,
    max_holes: int = 400,
    min_holes: int = 1,
    cluster_probability: float = 0.5,
    max_cluster_holes: int = 24,
):
    """Draws one random hole mask (1 = keep, 0 = hole), as the paper's inpainter training.

    Runs eagerly or in a graph (tf.data ``map``); stateless, so the mask is a function of
    ``seed`` and the arguments alone.

    Args:
        seed: shape ``[2]`` int32/int64 tensor, the stateless seed.
        height: mask height (Python int).
        width: mask width (Python int).
        organ: optional ``[H, W]`` or ``[H, W, 1]`` organ (breast) mask, bool or float (> 0.5
            is inside). Hole centres are drawn inside it and hole pixels are kept inside it.
        hole_size: hole side in pixels; ``None`` gives ``default_hole_size(height)``.
        max_holes: the most holes per mask (paper: 400).
        min_holes: the fewest holes per mask; the count is uniform in ``[min_holes, max_holes]``.
        cluster_probability: probability that a group of holes is a cluster rather than a
            single hole.
        max_cluster_holes: the most holes in one cluster (a random walk of 2 to this many
            touching or overlapping holes).

    Returns:
        float32 tensor ``[height, width, 1]`` with values 0 and 1.

    Raises:
        ValueError: an argument is out of range, or ``organ`` has the wrong shape.
    """
    hole_size = default_hole_size(height) if hole_size is None else hole_size
    _check_args(height, width, hole_size, min_holes, max_holes, cluster_probability, max_cluster_holes)
    organ = _organ_tensor(organ, height, width)
    seed = tf.convert_to_tensor(seed)
    s_count, s_centres = tf.unstack(tf.random.split(seed, 2))
    count = tf.random.stateless_uniform([], s_count, min_holes, max_holes + 1, tf.int32)
    centres = _hole_centres(s_centres, organ, hole_size, max_holes, cluster_probability, max_cluster_holes)
    active = (tf.range(max_holes) < count) & tf.gather_nd(organ, centres)
    seeds = tf.scatter_nd(centres, tf.cast(active, tf.float32), [height, width])
    # Grow each centre into a hole_size x hole_size square (max filter; 'SAME' centres it).
    holes = tf.nn.max_pool2d(seeds[None, :, :, None], hole_size, 1, "SAME")[0]
    holes = tf.logical_and(holes > 0, organ[:, :, None])
    return 1.0 - tf.cast(holes, tf.float32)


def random_hole_mask_numpy(seed: int, height: int, width: int, organ=None, **kwargs) -> np.ndarray:
    """Numpy convenience wrapper of :func:`random_hole_mask` with an int seed.

    Args:
        seed: a non-negative int; it becomes the stateless seed ``[seed, 0]``.
        height, width, organ, **kwargs: as :func:`random_hole_mask`.

    Returns:
        float32 numpy array ``[height, width, 1]``, 1 = keep, 0 = hole.
    """
    mask = random_hole_mask(tf.constant([int(seed), 0], tf.int64), height, width, organ=organ, **kwargs)
    return mask.numpy()


def random_blob_mask(seed, height: int, width: int, organ=None, fraction=(0.005, 0.25), cell=(0.04, 0.15)):
    """Smooth blobs (1 = keep, 0 = hole) covering a random share of the organ.

    A Gaussian random field on a coarse grid is upsampled bicubically to the image, and its
    highest values inside the organ become holes, so the blobs are smooth, irregular and
    about one grid cell across; stateless like :func:`random_hole_mask`.

    Args:
        seed: shape ``[2]`` int32/int64 tensor, the stateless seed.
        height: mask height (Python int).
        width: mask width (Python int).
        organ: optional organ mask as in :func:`random_hole_mask`; holes stay inside it.
        fraction: ``(low, high)``: the holes cover a share of the organ drawn uniformly from it.
        cell: ``(low, high)``: the grid cell, as a share of the height, drawn uniformly from it
            (blob size: 0.04 to 0.15 of 256 rows is 10 to 38 px, the synthetic masses' range).

    Returns:
        float32 tensor ``[height, width, 1]`` with values 0 and 1.

    Raises:
        ValueError: a range is out of order or outside (0, 1].
    """
    for name, (low, high) in (("fraction", fraction), ("cell", cell)):
        if not 0 <= low <= high <= 1:
            raise ValueError(f"{name} must satisfy 0 <= low <= high <= 1. Received: {name}={(low, high)}")
    organ = _organ_tensor(organ, height, width)
    s_fraction, s_cell, s_field = tf.unstack(tf.random.split(tf.convert_to_tensor(seed), 3))
    share = tf.random.stateless_uniform([], s_fraction, fraction[0], fraction[1] + 1e-9)
    cell_px = tf.maximum(1.0, tf.random.stateless_uniform([], s_cell, cell[0], cell[1] + 1e-9) * height)
    grid = tf.cast(tf.math.ceil(tf.constant([height, width], tf.float32) / cell_px), tf.int32) + 1
    coarse = tf.random.stateless_normal(tf.concat([[1], grid, [1]], 0), s_field)
    field = tf.image.resize(coarse, [height, width], "bicubic")[0, :, :, 0]
    inside = tf.sort(tf.boolean_mask(field, organ), direction="DESCENDING")
    count = tf.cast(tf.round(share * tf.cast(tf.size(inside), tf.float32)), tf.int32)
    level = tf.cond(count > 0, lambda: inside[tf.maximum(count, 1) - 1], lambda: tf.constant(float("inf")))
    holes = (field >= level) & organ
    return 1.0 - tf.cast(holes, tf.float32)[:, :, None]


def blob_hole_mask(rng: np.random.Generator, organ: np.ndarray, fraction: float, avoid: np.ndarray | None = None,
                   smoothness: float = 0.02) -> np.ndarray:
    """A float32 mask [H, W] (1 keep, 0 hole) whose holes cover ``fraction`` of the allowed breast.

    Args:
        rng: random generator.
        organ: bool [H, W], where holes may lie.
        fraction: share of the allowed area to cover, in [0, 1].
        avoid: bool [H, W] kept free of holes (e.g. a dilated mass), or None.
        smoothness: the field's smoothing sigma as a share of the height (larger: fewer, bigger blobs).
    """
    allowed = organ if avoid is None else organ & ~avoid
    mask = np.ones(organ.shape, np.float32)
    if fraction <= 0 or not allowed.any():
        return mask
    field = ndimage.gaussian_filter(rng.normal(size=organ.shape), sigma=max(1.0, smoothness * organ.shape[0]))
    level = np.quantile(field[allowed], 1 - min(fraction, 1.0))
    mask[allowed & (field >= level)] = 0.0
    return mask


def dilated(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Binary dilation of a bool ``[..., H, W]`` mask by ``pixels`` 4-connected steps.

    Each 2-D slice ``[H, W]`` is dilated on its own with the 3x3 cross (leading axes, e.g. a
    batch, are never dilated across), as ``scipy.ndimage.binary_dilation`` with
    ``iterations=pixels`` does for one ``[H, W]`` mask. ``pixels <= 0`` returns the mask as bool.
    """
    mask = np.asarray(mask)
    if pixels <= 0:
        return mask.astype(bool)
    cross = ndimage.generate_binary_structure(2, 1).reshape((1,) * (mask.ndim - 2) + (3, 3))
    return ndimage.binary_dilation(mask, cross, iterations=pixels)
