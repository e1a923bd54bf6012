"""Lesion grids: where a lesion lies on a classifier's last feature grid, for location-supervised training.

A MobileNet's last features form a grid of cells (8x6 at 256x192, each cell 32x32 pixels). The
target of cell ``c`` is the lesion's share of its pixels over :data:`LESION_GRID_FULL`, at most 1:

    t_c = min(1, |lesion ∩ c| / (LESION_GRID_FULL |c|))

and its weight in the grid loss balances the few lesion cells (1 to 4 of 48) against the rest of
their image (:func:`balanced_cell_weights`). :func:`tfsal.data.pipelines.classification_dataset`
(``grid=``) computes both after the augmentation; ``tfsal train classifier --location-weight``
uses them.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["LESION_GRID_FULL", "balanced_cell_weights", "grid_targets", "lesion_grid"]

LESION_GRID_FULL = 0.25
"""A grid cell this much covered by lesion (or more) is a full positive; less, a fraction of one."""


def balanced_cell_weights(target):
    """Each cell's weight in the grid loss, ``[rows, cols]`` from ``target`` ``[rows, cols, 1]``: in an image with
    lesion cells (target > 0) those cells together weigh as much as the others together; without any, all
    cells weigh 1. The weights average 1 over the cells, so an image's share of the loss is kept.

    A lesion covers 1 to 4 of 48 cells; unweighted, a head that calls every cell healthy is nearly right
    (on the mixture's validation split its loss is 0.063; a trained unweighted head's 0.042).
    """
    lesion = tf.cast(target[..., 0] > 0, tf.float32)
    cells = tf.cast(tf.size(lesion), tf.float32)
    n_lesion = tf.reduce_sum(lesion)
    if_both = lesion * cells / (2 * tf.maximum(n_lesion, 1.0)) + (1 - lesion) * cells / (
        2 * tf.maximum(cells - n_lesion, 1.0))
    both = (n_lesion > 0) & (n_lesion < cells)
    return tf.where(both, if_both, tf.ones_like(lesion))


def lesion_grid(mass, grid):
    """The lesion target of each cell of a ``grid`` over the image: the lesion's share of the cell's
    pixels over :data:`LESION_GRID_FULL`, at most 1 (``mass`` ``[H, W, 1]`` -> ``[rows, cols, 1]``).

    A mass pixel counts when its mask value is above 0.5; cells are the area-weighted blocks of
    ``tf.image.resize(..., method="area")``.
    """
    share = tf.image.resize(tf.cast(mass > 0.5, tf.float32), grid, method="area")
    return tf.minimum(share / LESION_GRID_FULL, 1.0)


def grid_targets(mass, grid):
    """:func:`lesion_grid` of ``mass`` ``[H, W, 1]`` and its :func:`balanced_cell_weights`."""
    target = lesion_grid(mass, grid)
    return target, balanced_cell_weights(target)
