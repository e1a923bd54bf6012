"""``tfsal explain``: explain image files with the counterfactual method or a baseline."""

from __future__ import annotations

from pathlib import Path

import click

from tfsal.cli.params import (
    check_dicom_extra,
    command_inputs,
    dicom_options,
    input_option,
    method_options,
    overlay_option,
    redact_option,
    reject_options_not_taken,
)
from tfsal.explain import registry

DEMO_OUT = "tfsal-demo"


@click.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@input_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Output folder [required, except with --demo: ./{DEMO_OUT}].")
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A Keras classifier file [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A .keras inpainter [default: the shipped one; baselines use it only when given, "
                                 "to inpaint and score their masks].")
@click.option("--target", type=click.IntRange(min=0), default=None,
              help="Class to explain [default: 1 for one sigmoid output, else the predicted class].")
@click.option("--steps", type=click.IntRange(min=1), default=registry.DEFAULT_STEPS, show_default=True,
              help="Optimisation steps (counterfactual and extremal methods).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images explained together.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Offsets of the initial hole lattice and the in-fill blocks (counterfactual method).")
@method_options
@click.option("--demo", is_flag=True, help="Explain the shipped synthetic example mammograms.")
@overlay_option
@dicom_options
@redact_option
def explain(images, specs, out_dir, classifier_path, inpainter_path, target, steps, batch_size, seed, method,
            percentile, preset, mask_network, logits, demo, style, dicom_out, dicom_send, redact) -> None:
    """Explain why the classifier finds what it finds in each IMAGE (DICOM, PNG, TIFF, JPEG, NPY,
    a folder of them, a manifest CSV or a glob; --input takes the same).

    Writes per image <stem>.json, <stem>_overlay.png and <stem>_mask.png, for the
    counterfactual method <stem>_counterfactual.png and <stem>_saliency.npy, and with
    --dicom-out, for DICOM inputs, <stem>_seg.dcm and <stem>_overlay.dcm. Exit code 1 when any
    image failed (each named on stderr; the others are still written).
    """
    from tfsal.outputs.files import explain_files
    from tfsal.util.resources import example_images

    if demo:
        images = (*images, *example_images())
        out_dir = out_dir or Path(DEMO_OUT)
    images = command_inputs([*images, *specs])
    if not images:
        raise click.UsageError("give at least one IMAGE (or a folder holding images), or --demo")
    if out_dir is None:
        raise click.UsageError("missing option '--out'")
    check_dicom_extra(dicom_out, dicom_send)
    reject_options_not_taken(method)
    try:  # each method takes the options it names in the registry
        explainer = registry.build_from_files(method, classifier_path, inpainter_path, batch_size=batch_size,
                                              logits=logits, steps=steps, seed=seed, percentile=percentile,
                                              preset=preset, mask_network=mask_network and str(mask_network))
    except ValueError as exc:
        raise click.ClickException(f"--method {method}: {exc}") from None
    results = explain_files(images, out_dir, explainer, targets=target, progress=len(images) > batch_size,
                            dicom=dicom_out, dicom_send=dicom_send, redact=redact, style=style)
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

