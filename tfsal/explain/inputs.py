"""Turning what users pass to ``explain`` (numpy, tensors, tf.data) into float32 images."""

from __future__ import annotations

import numpy as np

__all__ = ["as_images", "as_organs", "as_targets", "same_shape_batches"]


def _to_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _as_image(array, index: int) -> np.ndarray:
    """One image as float32 ``[H, W, 1]`` in the given range (integer types scaled to [0, 1])."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3) or min(array.shape[:2]) < 1:
        raise ValueError(f"image {index}: expected [H, W], [H, W, 1] or [H, W, 3]. Received: shape={array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / np.iinfo(array.dtype).max
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"image {index}: contains NaN or infinite values")
    if array.shape[-1] == 3:  # the inpainter is grayscale; a 3-channel model gets the channel repeated
        array = array.mean(axis=-1, keepdims=True)
    return array


def _from_dataset(dataset) -> tuple[list, list | None]:
    """Images (and targets, when the elements are ``(image, target)`` pairs) of a tf.data dataset."""
    images, targets = [], []
    for element in dataset.as_numpy_iterator():
        if isinstance(element, dict):
            image, target = element["image"], element.get("target")
        elif isinstance(element, tuple):
            image, target = element[0], element[1] if len(element) > 1 else None
        else:
            image, target = element, None
        image = np.asarray(image)
        batched = image.ndim == 4 or (image.ndim == 3 and image.shape[-1] not in (1, 3))
        images.extend(list(image) if batched else [image])
        if target is not None:
            target = np.asarray(target)
            targets.extend(target.reshape(-1).tolist() if batched else [int(target.reshape(-1)[0])])
    return images, (targets or None)


def as_images(images) -> tuple[list[np.ndarray], list[int] | None]:
    """Images as a list of float32 ``[H, W, 1]`` arrays, and targets when a dataset carried them.

    Accepts a numpy array or tensor ``[N, H, W]``, ``[N, H, W, C]`` (C = 1 or 3), a single
    ``[H, W]`` or ``[H, W, C]`` image (a 3-D array whose last axis is 1 or 3 is one image, as
    :func:`tfsal.data.image_io.read_image` returns it), a list of images of any sizes, or a
    ``tf.data.Dataset`` of images, ``(image, target)`` pairs or ``{"image", "target"}`` dicts, batched or not.

    Raises:
        ValueError: no image, a wrong shape, or NaN/infinite values.
    """
    targets = None
    if hasattr(images, "as_numpy_iterator"):
        items, targets = _from_dataset(images)
    elif isinstance(images, (list, tuple)):
        items = [_to_numpy(item) for item in images]
    else:
        array = _to_numpy(images)
        single = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3))  # [H, W] or [H, W, C]
        if array.ndim not in (2, 3, 4):
            raise ValueError(f"images of shape {array.shape}: expected one image [H, W] or [H, W, C], or a batch "
                             "[N, H, W] or [N, H, W, C] (C = 1 or 3)")
        items = [array] if single else list(array)
    if not items:
        raise ValueError("no images to explain")
    return [_as_image(item, i) for i, item in enumerate(items)], targets


def as_targets(targets, count: int) -> np.ndarray | None:
    """Per-image target classes as int32 ``[count]`` (one int applies to all), or None."""
    if targets is None:
        return None
    array = np.asarray(_to_numpy(targets)).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, count)
    if array.size != count:
        raise ValueError(f"targets: expected 1 or {count} values. Received: {array.size}")
    if not np.all(np.equal(np.mod(array, 1), 0)) or (array < 0).any():
        raise ValueError(f"targets must be non-negative class indices. Received: {array.tolist()}")
    return array.astype(np.int32)


def as_organs(organ_masks, images: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per-image bool organ masks ``[H, W]`` matching the images, or Nones (computed later)."""
    if organ_masks is None:
        return [None] * len(images)
    if isinstance(organ_masks, (list, tuple)):
        masks = [_to_numpy(m) for m in organ_masks]
    else:
        array = _to_numpy(organ_masks)
        masks = [array] if array.ndim == 2 else list(array)
    if len(masks) != len(images):
        raise ValueError(f"organ_masks: expected {len(images)} masks. Received: {len(masks)}")
    result = []
    for i, (mask, image) in enumerate(zip(masks, images, strict=True)):
        mask = np.asarray(mask)
        mask = mask[..., 0] if mask.ndim == 3 else mask
        if mask.shape != image.shape[:2]:
            raise ValueError(f"organ mask {i}: shape {mask.shape} differs from its image's {image.shape[:2]}")
        result.append(mask > 0.5 if mask.dtype != bool else mask)
    return result


def same_shape_batches(images: list[np.ndarray], batch_size: int):
    """Index lists of consecutive images with one shape, at most ``batch_size`` long."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    batch: list[int] = []
    for index, image in enumerate(images):
        if batch and (len(batch) == batch_size or images[batch[0]].shape != image.shape):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
