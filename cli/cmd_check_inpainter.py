"""``tfsal check-inpainter``: the paper's Fig. 2 check and how the classifier reads in-fill."""

from __future__ import annotations

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
    from tfsal.evaluation.inpainter_check import check_lines, write_check
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter, load_inpainter

    classifier = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    inpainter = load_inpainter(inpainter_path) if inpainter_path else load_default_inpainter()
    records = read_manifest(data, split=split)[:limit]
    if not any(r.label == 1 for r in records) or not any(r.label == 0 for r in records):
        raise TfsalError(f"{data}: the {split!r} split needs mass and healthy images")
    result = write_check(classifier, inpainter, records, out_dir, runs=runs, seed=seed, progress=True)
    for line in check_lines(result):
        click.echo(line)
