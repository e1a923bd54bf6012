"""``tfsal explain``: explain image files with the counterfactual method or a baseline."""

from __future__ import annotations

from pathlib import Path

import click

from tfsal.cli.params import MethodChoice, check_dicom_extra, dicom_options, redact_option
from tfsal.explain import registry

DEMO_OUT = "tfsal-demo"


@click.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Output folder [required, except with --demo: ./{DEMO_OUT}].")
@click.option("--method", type=MethodChoice(registry.names), default="counterfactual", show_default=True,
              help="The explanation method (tfsal.explain.registry).")
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A Keras classifier file [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A .keras inpainter [default: the shipped one; baselines use it only when given, "
                                 "to inpaint and score their masks].")
@click.option("--target", type=click.IntRange(min=0), default=None,
              help="Class to explain [default: 1 for one sigmoid output, else the predicted class].")
@click.option("--steps", type=click.IntRange(min=1), default=registry.DEFAULT_STEPS, show_default=True,
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
@redact_option
def explain(images, out_dir, method, classifier_path, inpainter_path, target, steps, batch_size, seed, percentile,
            preset, logits, demo, dicom_out, dicom_send, redact) -> None:
    """Explain why the classifier finds what it finds in each IMAGE (DICOM, PNG, TIFF, JPEG, NPY,
    or a folder of them).

    Writes per image <stem>.json, <stem>_overlay.png and <stem>_mask.png, for the
    counterfactual method <stem>_counterfactual.png and <stem>_saliency.npy, and with
    --dicom-out, for DICOM inputs, <stem>_seg.dcm and <stem>_overlay.dcm. Exit code 1 when any
    image failed (each named on stderr; the others are still written).
    """
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_inpainter
    from tfsal.outputs.files import expand_inputs, explain_files
    from tfsal.util.resources import example_images

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
    try:  # each method takes the options it names in the registry
        explainer = registry.get(method).build(
            classifier, batch_size=batch_size, logits=logits, steps=steps, seed=seed, percentile=percentile,
            preset=preset, inpainter=load_inpainter(inpainter_path) if inpainter_path else None)
    except ValueError as exc:
        raise click.ClickException(f"--method {method}: {exc}") from None
    results = explain_files(images, out_dir, explainer, targets=target, progress=len(images) > batch_size,
                            dicom=dicom_out, dicom_send=dicom_send, redact=redact)
    for result in results:
        if result.ok:
            record = result.record
            after = record["score_counterfactual"]
            click.echo(f"{result.label}: score {record['score_original']:.3f}"
                       + (f" -> {after:.3f}" if after is not None else "")
                       + f", area {100 * record['area_fraction']:.1f}% of the breast -> {out_dir / result.stem}.*")
        else:
            click.echo(f"Error: {result.error}", err=True)
    if not all(r.ok for r in results):
        raise SystemExit(1)
