"""``tfsal check-inpainter``: the paper's Fig. 2 check and how the classifier reads in-fill."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("check-inpainter")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path), help="labels.csv or its folder.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.json, fig2.png (ROC families) and examples.png.")
@click.option("--classifier", "classifier_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .keras classifier [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .keras inpainter [default: the shipped one].")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Random draws of the holes (the paper: 10).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images of the split.")
@click.option("--seed", type=int, default=0, show_default=True)
def check_inpainter(data, out_dir, classifier_path, inpainter_path, split, runs, limit, seed) -> None:
    """Classifier ROC on originals, with healthy tissue inpainted and with masses inpainted."""
    from tfsal.data.manifest import read_manifest
    from tfsal.errors import TfsalError
    from tfsal.evaluation.inpainter_check import FAMILY_NAMES, infill_score_shift, plot_fig2
    from tfsal.evaluation.inpainter_check import check_inpainter as check
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter, load_inpainter
    from tfsal.util import atomic

    classifier = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    inpainter = load_inpainter(inpainter_path) if inpainter_path else load_default_inpainter()
    records = read_manifest(data, split=split)[:limit]
    if not any(r.label == 1 for r in records) or not any(r.label == 0 for r in records):
        raise TfsalError(f"{data}: the {split!r} split needs mass and healthy images")
    result = check(classifier, inpainter, records, runs=runs, seed=seed, progress=True)
    result["infill"] = infill_score_shift(classifier, inpainter, records, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_dir / "results.json", json.dumps(result, indent=1) + "\n")
    plot_fig2(result, out_dir / "fig2.png", runs)
    from tfsal.evaluation.inpainter_check import example_rows
    from tfsal.outputs.drawing import write_grid

    write_grid(example_rows(inpainter, records, tuple(classifier.input_shape[1:3]), seed=seed),
               out_dir / "examples.png")
    for key, label in FAMILY_NAMES.items():
        click.echo(f"{label}: AUC {result[key]['auc_mean']:.4f} +- {result[key]['auc_std']:.4f}")
    click.echo(f"mass images whose score fell in every run: {result['mass_score_fell']:.3f}")
    error = result["inpainting_error"]
    click.echo(f"healthy images, random holes: hole L1 {error['hole_l1']:.4f}, PSNR {error['psnr']:.2f} dB")
    for fraction, shift in result["infill"]["fractions"].items():
        click.echo(f"healthy images with {float(fraction):.0%} of the breast inpainted: mean score change "
                   f"{shift['mean_change']:+.4f}")
