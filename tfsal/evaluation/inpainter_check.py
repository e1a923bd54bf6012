"""The paper's Fig. 2 check of the inpainter, and how the classifier reads in-fill.

Paper, "Inpainting": the inpainter "has the task to change the classification score of an
image towards healthy when replacing mass tissue, no considerable change should happen
otherwise". Three ROC families on a test split, with the classifier:

1. ``original``: the images as they are.
2. ``healthy_inpainted``: every image with random holes (the inpainter's training holes)
   inpainted in healthy tissue; in mass images the holes keep clear of the mass (its mask
   dilated by ``MASS_MARGIN`` of the height). ``runs`` draws of the holes.
3. ``mass_inpainted``: the mass images with their mass region (mask dilated by the margin plus
   0-2 random pixels per run) inpainted; healthy images as they are. ``runs`` draws.

Beyond the paper, :func:`infill_score_shift` measures the mean score change of healthy images
when a given share of their breast (blobs of a smoothed random field) is inpainted: an
explainer deletes large regions, so a classifier that finds in-fill suspicious would make
every explanation wrong.
"""

from __future__ import annotations

import numpy as np

from tfsal.data.holes import MASS_MARGIN, blob_hole_mask, dilated
from tfsal.errors import TfsalError
from tfsal.evaluation.metrics import roc_auc, roc_curve

FILL_FRACTIONS = (0.05, 0.20, 0.40)
"""Shares of the breast inpainted on healthy images for the in-fill score shift."""


def scores_of(classifier, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    return np.asarray(classifier.predict(images, batch_size=batch_size, verbose=0)).reshape(-1)


def inpaint(inpainter, images: np.ndarray, masks: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Composites ``M * I + (1 - M) * inpainter(I * M, M)`` (mask 1 keeps a pixel).

    ``inpainter`` is a Keras inpainter or an :class:`~tfsal.explain.infill.Infiller` (pass one
    when calling this repeatedly, so that its compiled forward pass is reused).
    """
    import tensorflow as tf

    from tfsal.explain.infill import as_infiller
    from tfsal.models.inpainter import composite

    filler = as_infiller(inpainter)
    out = np.empty_like(images)
    for start in range(0, len(images), batch_size):
        image = tf.constant(images[start:start + batch_size], tf.float32)
        mask = tf.constant(masks[start:start + batch_size], tf.float32)
        out[start:start + batch_size] = composite(image, mask, filler.fill(image, mask))
    return out


def healthy_hole_masks(organs: np.ndarray, masses: np.ndarray, seed: int) -> np.ndarray:
    """Random training-style holes inside the breast and clear of any (dilated) mass."""
    from tfsal.data.holes import random_hole_mask_numpy

    height, width = organs.shape[1:3]
    margin = max(1, round(MASS_MARGIN * height))
    allowed = (organs > 0.5) & ~dilated(masses[..., 0] > 0.5, margin)[..., None]
    return np.stack([
        np.maximum(random_hole_mask_numpy(seed * 100_003 + i, height, width, organ=allowed[i, ..., 0]),
                   1.0 - allowed[i].astype(np.float32))
        for i in range(len(organs))]).astype(np.float32)


def mass_hole_masks(masses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each mass region, dilated by the margin and 0-2 random pixels, as a hole (0)."""
    height = masses.shape[1]
    margin = max(1, round(MASS_MARGIN * height))
    return np.stack([1.0 - dilated(m[..., 0] > 0.5, margin + int(rng.integers(0, 3)))[..., None].astype(np.float32)
                     for m in masses])


def fraction_hole_masks(organs: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Holes covering ``fraction`` of each breast: the top share of a smoothed random field."""
    return np.stack([blob_hole_mask(rng, organ, fraction)[..., None] for organ in organs[..., 0] > 0.5])


def check_inpainter(classifier, inpainter, records, runs: int = 10, seed: int = 0, batch_size: int = 16,
                    progress: bool = False) -> dict:
    """The Fig. 2 check: AUCs (and ROC curves) of the three families, per run.

    Returns:
        ``{"original": {...}, "healthy_inpainted": {...}, "mass_inpainted": {...},
        "mass_score_fell": share of mass images whose score fell in every run, "n_mass", "n_healthy"}``
        with each family holding ``auc`` (list over runs), ``auc_mean``, ``auc_std`` and
        ``curves`` (fpr, tpr per run).
    """
    from tqdm import tqdm

    from tfsal.data.pipelines import load_split
    from tfsal.explain.infill import Infiller

    inpainter = Infiller(inpainter, jit_compile=True)  # many fixed batches: XLA pays
    size = tuple(classifier.input_shape[1:3])
    data = load_split(records, size)
    labels, images = data["label"], data["image"]
    is_mass = labels > 0.5
    original = scores_of(classifier, images)
    rng = np.random.default_rng(seed)
    families = {"original": [original], "healthy_inpainted": [], "mass_inpainted": []}
    fell = np.ones(int(is_mass.sum()), bool)
    errors = []
    for run in tqdm(range(runs), desc="check-inpainter", unit="run", disable=not progress):
        holes = healthy_hole_masks(data["organ"], data["mass"], seed * 1000 + run)
        filled = inpaint(inpainter, images, holes, batch_size)
        families["healthy_inpainted"].append(scores_of(classifier, filled))
        errors.append(inpainting_error(images[~is_mass], holes[~is_mass], filled[~is_mass]))
        mass_scores = original.copy()
        filled = inpaint(inpainter, images[is_mass], mass_hole_masks(data["mass"][is_mass], rng), batch_size)
        mass_scores[is_mass] = scores_of(classifier, filled)
        fell &= mass_scores[is_mass] < original[is_mass]
        families["mass_inpainted"].append(mass_scores)
    result = {name: _family(labels, scores) for name, scores in families.items()}
    result["inpainting_error"] = {key: float(np.mean([e[key] for e in errors])) for key in ("hole_l1", "psnr")}
    result.update(n_mass=int(is_mass.sum()), n_healthy=int((~is_mass).sum()), runs=runs,
                  mass_score_fell=float(fell.mean()) if fell.size else float("nan"))
    return result


def inpainting_error(images: np.ndarray, masks: np.ndarray, composites: np.ndarray) -> dict:
    """Hole L1 (mean absolute error over hole pixels) and PSNR (dB) of the composites."""
    holes = masks < 0.5
    hole_l1 = float(np.abs(composites - images)[holes].mean()) if holes.any() else 0.0
    mse = float(np.mean((composites - images) ** 2))
    return {"hole_l1": hole_l1, "psnr": 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")}


def _family(labels, score_runs) -> dict:
    aucs = [roc_auc(labels, s) for s in score_runs]
    curves = []
    for scores in score_runs:
        fpr, tpr, _ = roc_curve(labels, scores)
        curves.append({"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()})
    return {"auc": [round(a, 5) for a in aucs], "auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
            "curves": curves}


def infill_score_shift(classifier, inpainter, records, fractions=FILL_FRACTIONS, seed: int = 0,
                       batch_size: int = 16) -> dict:
    """Mean classifier score of healthy images before and after inpainting a share of the breast."""
    from tfsal.data.pipelines import load_split
    from tfsal.explain.infill import Infiller

    inpainter = Infiller(inpainter, jit_compile=True)  # many fixed batches: XLA pays
    size = tuple(classifier.input_shape[1:3])
    data = load_split([r for r in records if r.label == 0], size)
    before = scores_of(classifier, data["image"])
    rng = np.random.default_rng(seed)
    result = {"n_healthy": len(before), "score_before": float(before.mean()), "fractions": {}}
    for fraction in fractions:
        masks = fraction_hole_masks(data["organ"], fraction, rng)
        after = scores_of(classifier, inpaint(inpainter, data["image"], masks, batch_size))
        result["fractions"][f"{fraction:.2f}"] = {
            "score_after": float(after.mean()), "mean_change": float((after - before).mean()),
            "share_rising": float((after > before).mean())}
    return result


def example_rows(inpainter, records, size, n_healthy: int = 3, n_mass: int = 2, seed: int = 0) -> list:
    """Rows for a picture: original, holes (red), inpainted; healthy images with random holes,
    then mass images with the mass region as the hole."""
    from tfsal.data.pipelines import load_split
    from tfsal.outputs.drawing import to_bgr, with_holes

    healthy = load_split([r for r in records if r.label == 0][:n_healthy], size)
    mass = load_split([r for r in records if r.label == 1][:n_mass], size)
    rows = []
    holes = healthy_hole_masks(healthy["organ"], healthy["mass"], seed)
    filled = inpaint(inpainter, healthy["image"], holes)
    rows += [[to_bgr(i), with_holes(i, m), to_bgr(f)] for i, m, f in zip(healthy["image"], holes, filled, strict=True)]
    holes = mass_hole_masks(mass["mass"], np.random.default_rng(seed))
    filled = inpaint(inpainter, mass["image"], holes)
    rows += [[to_bgr(i), with_holes(i, m), to_bgr(f)] for i, m, f in zip(mass["image"], holes, filled, strict=True)]
    return rows


FAMILY_NAMES = {"original": "original", "healthy_inpainted": "healthy tissue inpainted",
                "mass_inpainted": "mass inpainted"}
"""The three image families of Fig. 2 and their labels in the plot."""


def plot_fig2(result: dict, path, runs: int) -> None:
    """The paper's Fig. 2 from :func:`check_inpainter`'s result: each family's mean ROC and band."""
    from tfsal.outputs.plots import plot_roc_families

    plot_roc_families({f"{label} (AUC {result[key]['auc_mean']:.3f})": [(c["fpr"], c["tpr"]) for c in
                                                                        result[key]["curves"]]
                       for key, label in FAMILY_NAMES.items()}, path, title=f"Fig. 2 check, {runs} runs")


def write_check(classifier, inpainter, records, out_dir, runs: int = 10, seed: int = 0,
                progress: bool = False) -> dict:
    """Run the Fig. 2 check and the in-fill score shift on ``records`` and write them to ``out_dir``:
    ``results.json`` (both results), ``fig2.png`` (the ROC families) and ``examples.png`` (in-fill
    examples). ``tfsal check-inpainter`` and ``tfsal train all`` both use it.

    Raises:
        TfsalError: ``records`` lack mass or healthy images.
    """
    import json
    from pathlib import Path

    from tfsal.outputs.drawing import write_grid
    from tfsal.util import atomic

    if not any(r.label == 1 for r in records) or not any(r.label == 0 for r in records):
        raise TfsalError("the Fig. 2 check needs mass and healthy images")
    result = check_inpainter(classifier, inpainter, records, runs=runs, seed=seed, progress=progress)
    result["infill"] = infill_score_shift(classifier, inpainter, records, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_dir / "results.json", json.dumps(result, indent=1) + "\n")
    plot_fig2(result, out_dir / "fig2.png", runs)
    write_grid(example_rows(inpainter, records, tuple(classifier.input_shape[1:3]), seed=seed),
               out_dir / "examples.png")
    return result


def check_lines(result: dict) -> list[str]:
    """The check's findings as lines for a console or a model card."""
    lines = [f"{label}: AUC {result[key]['auc_mean']:.4f} +- {result[key]['auc_std']:.4f}"
             for key, label in FAMILY_NAMES.items()]
    lines.append(f"mass images whose score fell in every run: {result['mass_score_fell']:.3f}")
    error = result["inpainting_error"]
    lines.append(f"healthy images, random holes: hole L1 {error['hole_l1']:.4f}, PSNR {error['psnr']:.2f} dB")
    for fraction, shift in result["infill"]["fractions"].items():
        lines.append(f"healthy images with {float(fraction):.0%} of the breast inpainted: mean score change "
                     f"{shift['mean_change']:+.4f}")
    return lines
