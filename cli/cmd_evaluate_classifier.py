"""``tfsal evaluate-classifier``: ROC AUC, sensitivity and specificity of a classifier on a split."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("evaluate-classifier")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path), help="labels.csv or its folder.")
@click.option("--classifier", "classifier_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .keras classifier [default: the shipped saved_models/classifier.keras].")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Score at or above which an image is called a mass.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for metrics.json and roc.png.")
def evaluate_classifier(data, classifier_path, split, threshold, out_dir) -> None:
    """Measure how well a classifier separates mass from healthy images."""
    from tfsal.evaluation.classifier_metrics import evaluate_classifier as evaluate
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.outputs.plots import plot_roc
    from tfsal.util import atomic

    model = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    result = evaluate(model, data, split, threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_dir / "metrics.json", json.dumps(result, indent=1) + "\n")
    label = f"{split} split, AUC {result['roc_auc']:.3f}"
    plot_roc([(label, result["roc"]["fpr"], result["roc"]["tpr"])], out_dir / "roc.png", title="Mass classifier")
    click.echo(f"{split}: {result['n_mass']} mass + {result['n_healthy']} healthy images, "
               f"ROC AUC {result['roc_auc']:.4f} (95 % bootstrap interval "
               f"{result['roc_auc_interval'][0]:.3f}-{result['roc_auc_interval'][1]:.3f}), "
               f"sensitivity {result['sensitivity']:.3f} and "
               f"specificity {result['specificity']:.3f} at {threshold}")
