"""``tfsal explain``: explain image files with the counterfactual method or a baseline."""

from __future__ import annotations

from pathlib import Path

import click

from tfsal.cli.params import check_dicom_extra, dicom_options

METHODS = ("counterfactual", "sal", "cam", "gradcam")


def load_models(classifier_path, inpainter_path):
    """The classifier and inpainter files given, else the shipped ones."""
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter, load_inpainter

    classifier = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    return classifier, load_inpainter(inpainter_path) if inpainter_path else load_default_inpainter()
DEMO_OUT = "tfsal-demo"


@click.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Output folder [required, except with --demo: ./{DEMO_OUT}].")
@click.option("--method", type=click.Choice(METHODS), default="counterfactual", show_default=True)
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A Keras classifier file [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A .keras inpainter [default: the shipped one; baselines use it only when given, "
                                 "to inpaint and score their masks].")
@click.option("--target", type=click.IntRange(min=0), default=None,
              help="Class to explain [default: 1 for one sigmoid output, else the predicted class].")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True,
              help="Optimisation steps (counterfactual method).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images explained together.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Offsets of the initial hole lattice and the in-fill blocks (counterfactual method).")
@click.option("--percentile", type=click.FloatRange(0, 100), default=90.0, show_default=True,
              help="Baselines: the result mask keeps the map above this percentile inside the breast.")
@click.option("--preset", type=click.Choice(["default", "paper"]), default="default", show_default=True,
              help="Counterfactual method: tfsal's tuned settings, or the paper's (lambdas 1, 0.1, 0.1, psi "
                   "unbounded, 8 px cells at 576 rows); see docs/explain.md.")
@click.option("--logits", is_flag=True, help="The classifier outputs logits, not probabilities.")
@click.option("--demo", is_flag=True, help="Explain the shipped synthetic example mammograms.")
@dicom_options
def explain(images, out_dir, method, classifier_path, inpainter_path, target, steps, batch_size, seed, percentile,
            preset, logits, demo, dicom_out, dicom_send) -> None:
    """Explain why the classifier finds what it finds in each IMAGE (DICOM, PNG, TIFF, JPEG, NPY,
    or a folder of them).

    Writes per image <stem>.json, <stem>_overlay.png and <stem>_mask.png, for the
    counterfactual method <stem>_counterfactual.png and <stem>_saliency.npy, and with
    --dicom-out, for DICOM inputs, <stem>_seg.dcm and <stem>_overlay.dcm. Exit code 1 when any
    image failed (each named on stderr; the others are still written).
    """
    from tfsal.explain import EXPLAINERS, paper_settings
    from tfsal.explain.files import expand_inputs, explain_files
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_inpainter
    from tfsal.resources import example_images

    if demo:
        images = (*images, *example_images())
        out_dir = out_dir or Path(DEMO_OUT)
    images = expand_inputs(images)
    if not images:
        raise click.UsageError("give at least one IMAGE (or a folder holding images), or --demo")
    if out_dir is None:
        raise click.UsageError("missing option '--out'")
    check_dicom_extra(dicom_out, dicom_send)
    classifier = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    options = {"batch_size": batch_size, "logits": logits}
    if method == "counterfactual":
        options.update(inpainter=load_inpainter(inpainter_path) if inpainter_path else None, steps=steps, seed=seed)
        if preset == "paper":
            options.update(paper_settings(classifier.input_shape[1] or 256))
    else:
        options.update(percentile=percentile, inpainter=load_inpainter(inpainter_path) if inpainter_path else None)
    try:
        explainer = EXPLAINERS[method](classifier, **options)
    except ValueError as exc:
        raise click.ClickException(f"--method {method}: {exc}") from None
    results = explain_files(images, out_dir, explainer, steps=steps if method == "counterfactual" else None,
                            targets=target, progress=len(images) > batch_size, dicom=dicom_out,
                            dicom_send=dicom_send)
    for result in results:
        if result.ok:
            record = result.record
            after = record["score_counterfactual"]
            click.echo(f"{result.path}: score {record['score_original']:.3f}"
                       + (f" -> {after:.3f}" if after is not None else "")
                       + f", area {100 * record['area_fraction']:.1f}% of the breast -> {out_dir / result.stem}.*")
        else:
            click.echo(f"Error: {result.error}", err=True)
    if not all(r.ok for r in results):
        raise SystemExit(1)
