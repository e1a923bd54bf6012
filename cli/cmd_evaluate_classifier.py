"""``tfsal evaluate-classifier``: ROC AUC, sensitivity and specificity of a classifier on a split."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("evaluate-classifier")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path), help="labels.csv or its folder.")
@click.option("--classifier", "classifier_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .keras classifier [default: the shipped saved_models/classifier.keras].")
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="test", show_default=True,
              help="The split to measure on; 'all' for every image of the manifest (foreign data, zero-shot).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Score at or above which an image is called a mass.")
@click.option("--by", multiple=True, metavar="COLUMN",
              help="Also the AUC of each value of this manifest column (e.g. tissue, texture, lesion; lesion_size: the "
                   "mass images in thirds by their mask's size); repeatable.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for metrics.json and roc.png.")
def evaluate_classifier(data, classifier_path, split, threshold, by, out_dir) -> None:
    """Measure how well a classifier separates mass from healthy images."""
    from tfsal.evaluation.classifier_metrics import classifier_line, subgroup_lines, write_classifier_report
    from tfsal.models.classifier import load_classifier, load_default_classifier

    model = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    result = write_classifier_report(model, data, split, out_dir, threshold, tuple(by))
    click.echo("\n".join([classifier_line(result), *subgroup_lines(result)]))
