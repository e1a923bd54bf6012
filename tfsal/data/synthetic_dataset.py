"""Write a synthetic data set: images, mass masks, breast masks and ``labels.csv``.

Layout under the output folder::

    images/img_00000.png|.dcm   the mammogram (16-bit PNG, or DICOM MG with 12 bits stored)
    masks/img_00000.png         ground-truth mass mask, 8-bit 0/255 (images with a mass only)
    organ/img_00000.png         breast mask without the pectoral muscle, 8-bit 0/255
    labels.csv                  image,label,mask,split,organ (paths relative to the folder), then
                                density, lesion (the first mass's kind) and, in the mixture
                                world, texture and acquisition: columns to evaluate by
                                (``tfsal evaluate-classifier --by texture``)
    synth.json                  the generator settings and what was drawn for every image

The split mirrors the paper's (train 1231 mass + 2000 healthy, test 334 mass + 778 healthy);
the validation split takes ``val_fraction`` of each class's training images. Each image is
generated from its own seed ``(seed, index)``, so the output does not depend on the number
of worker processes, and the same command writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from tfsal.data.manifest import Record, write_manifest
from tfsal.data.synthetic import SynthConfig, make_mammogram
from tfsal.util import atomic

PAPER_TRAIN = {1: 1231, 0: 2000}
PAPER_TEST = {1: 334, 0: 778}
DEFAULT_N_MASS = PAPER_TRAIN[1] + PAPER_TEST[1]
DEFAULT_N_HEALTHY = PAPER_TRAIN[0] + PAPER_TEST[0]
MAX_VALUE_12BIT = 4095
# Physical height of the synthetic detector, giving the pixel spacing at any image size.
DETECTOR_HEIGHT_MM = 240.0


def split_counts(n: int, label: int, val_fraction: float = 0.1) -> dict[str, int]:
    """Images of one class per split, in the paper's proportions.

    Every split gets at least one image when there are three or more.
    """
    paper_total = PAPER_TRAIN[label] + PAPER_TEST[label]
    test = round(n * PAPER_TEST[label] / paper_total)
    val = round((n - test) * val_fraction)
    if n >= 3:
        test, val = max(test, 1), max(val, 1)
    return {"train": n - test - val, "val": val, "test": test}


def _assign(n_mass: int, n_healthy: int, seed: int, val_fraction: float):
    """Labels and splits of images 0..N-1, shuffled with the seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    labels = np.array([1] * n_mass + [0] * n_healthy)
    order = rng.permutation(labels.size)
    labels = labels[order]
    splits = np.empty(labels.size, dtype=object)
    for label, n in ((1, n_mass), (0, n_healthy)):
        counts = split_counts(n, label, val_fraction)
        names = ["train"] * counts["train"] + ["val"] * counts["val"] + ["test"] * counts["test"]
        splits[labels == label] = rng.permutation(np.array(names, dtype=object))
    return labels, splits


def to_12bit(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] image to 12-bit unsigned integers (as a detector stores them)."""
    return np.round(np.clip(image, 0, 1) * MAX_VALUE_12BIT).astype(np.uint16)


def _png_bytes(array: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV fails only on unsupported dtypes
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def _write_one(job):
    """Generate and write image ``index``; return its record fields and parameters."""
    out_dir, index, label, seed, size, fmt, photometric, config = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    n_masses = (2 if rng.random() < config.two_mass_probability else 1) if label else 0
    sample = make_mammogram(rng, size, n_masses=n_masses, config=config)
    stem = f"img_{index:05d}"
    pixels = to_12bit(sample.image)
    if fmt == "dicom":
        from tfsal.data.dicom import write_mammogram_dicom

        image_path = out_dir / "images" / f"{stem}.dcm"
        spacing = DETECTOR_HEIGHT_MM / size[0]
        write_mammogram_dicom(
            image_path, pixels, photometric=photometric, pixel_spacing=(spacing, spacing),
            laterality=sample.params["laterality"], view=sample.params["view"],
            uid_seed=f"tfsal-synth-{seed}-{index}")
    else:
        image_path = out_dir / "images" / f"{stem}.png"
        # 12-bit values spread over the 16-bit range, so readers dividing by 65535 get v/4095
        scaled = (pixels.astype(np.uint32) * 65535 // MAX_VALUE_12BIT).astype(np.uint16)
        atomic.write_bytes(image_path, _png_bytes(scaled))
    mask_path = None
    if label:
        mask_path = out_dir / "masks" / f"{stem}.png"
        atomic.write_bytes(mask_path, _png_bytes(sample.mass_mask.astype(np.uint8) * 255))
    organ_path = out_dir / "organ" / f"{stem}.png"
    atomic.write_bytes(organ_path, _png_bytes(sample.organ_mask.astype(np.uint8) * 255))
    return str(image_path), str(mask_path) if mask_path else None, str(organ_path), sample.params


def _columns(params: dict) -> dict:
    """The manifest's columns that describe an image, for subgroup evaluation (``--by``): its
    density, its first lesion's kind (empty when healthy) and, in the mixture world, its texture
    and acquisition."""
    columns = {"density": params["density"], "lesion": params["masses"][0]["shape"] if params["masses"] else ""}
    world = params.get("world")
    return columns | ({"texture": world["texture"], "acquisition": world["acquisition"]} if world else {})


def write_dataset(
    out_dir: str | os.PathLike,
    n_mass: int = DEFAULT_N_MASS,
    n_healthy: int = DEFAULT_N_HEALTHY,
    size: tuple[int, int] = (256, 192),
    seed: int = 0,
    fmt: str = "png",
    photometric: str = "MONOCHROME2",
    val_fraction: float = 0.1,
    config: SynthConfig | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Generate a synthetic data set and return the path of its ``labels.csv``.

    Args:
        out_dir: output folder (created).
        n_mass: images with one or two masses.
        n_healthy: healthy images.
        size: (height, width).
        seed: the same seed writes the same bytes.
        fmt: ``"png"`` (16-bit) or ``"dicom"`` (MG, 12 bits stored).
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"`` (DICOM only).
        val_fraction: share of each class's training images moved to ``val``.
        config: generator parameters (default ``SynthConfig()``).
        workers: processes; default all cores. The output does not depend on it.
        progress: show a progress bar on stderr.
    """
    _check_args(fmt, photometric, n_mass, n_healthy)
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, splits = _assign(n_mass, n_healthy, seed, val_fraction)
    jobs = [(out_dir, i, int(labels[i]), seed, tuple(size), fmt, photometric, config) for i in range(labels.size)]
    results = _write_images(jobs, workers, progress)

    records = [
        Record(image=Path(image), label=int(labels[i]), mask=Path(mask) if mask else None,
               split=str(splits[i]), organ=Path(organ), extra=_columns(params))
        for i, (image, mask, organ, params) in enumerate(results)
    ]
    description = {
        "generator": "tfsal.data.synthetic",
        "seed": seed, "size": list(size), "format": fmt, "photometric": photometric,
        "val_fraction": val_fraction, "config": dataclasses.asdict(config),
        "images": [{"image": Path(r[0]).name, "label": int(labels[i]), "split": str(splits[i]), **r[3]}
                   for i, r in enumerate(results)],
    }
    atomic.write_text(out_dir / "synth.json", json.dumps(description, indent=1) + "\n")
    return write_manifest(out_dir / "labels.csv", records)


def _check_args(fmt: str, photometric: str, n_mass: int, n_healthy: int) -> None:
    if fmt not in ("png", "dicom"):
        raise ValueError(f"fmt must be 'png' or 'dicom'; received {fmt!r}")
    if photometric not in ("MONOCHROME2", "MONOCHROME1"):
        raise ValueError(f"photometric must be MONOCHROME2 or MONOCHROME1; received {photometric!r}")
    if n_mass < 0 or n_healthy < 0 or n_mass + n_healthy == 0:
        raise ValueError(f"need at least one image; received n_mass={n_mass}, n_healthy={n_healthy}")


def _write_images(jobs: list, workers: int | None, progress: bool) -> list:
    """Run :func:`_write_one` over ``jobs`` (in worker processes when there are several), in order."""
    workers = workers or os.cpu_count() or 1
    from tqdm import tqdm

    bar = {"total": len(jobs), "desc": "synth", "unit": "img", "disable": not progress}
    if workers == 1 or len(jobs) < 8:
        return [_write_one(job) for job in tqdm(jobs, **bar)]
    # spawn, not fork: the caller may have started TensorFlow's threads, and a forked
    # child of a multi-threaded process can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(tqdm(pool.map(_write_one, jobs, chunksize=16), **bar))
