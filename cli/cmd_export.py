"""``tfsal export``: the explainer as a SavedModel for TF Serving."""

from __future__ import annotations

from pathlib import Path

import click

from tfsal.cli.params import load_models
from tfsal.explain import registry


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model base folder; the SavedModel goes to OUT/VERSION/ (TF Serving's layout).")
@click.option("--version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A Keras classifier file with a fixed input size [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A .keras inpainter [default: the shipped one].")
@click.option("--steps", type=click.IntRange(min=1), default=registry.DEFAULT_STEPS, show_default=True,
              help="Optimisation steps of serving_default (explain_steps takes them per request).")
@click.option("--model-name", default="tfsal", show_default=True, help="Model name in the warm-up requests.")
@click.option("--mask-network", "mask_network_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The amortised explainer's mask network (tfsal train explainer, for this "
                                 "classifier and inpainter): adds the explain_fast signature [default: the shipped "
                                 "one with the shipped models, none with others].")
def export(out_dir, version, classifier_path, inpainter_path, steps, model_name, mask_network_path) -> None:
    """Write a SavedModel with the signatures serving_default (explain), classify, explain_steps and,
    with a mask network, explain_fast (the amortised explainer's one pass)."""
    from tfsal.errors import TfsalError
    from tfsal.serving.export import export_explainer

    folder = out_dir / str(version)
    if folder.exists():
        raise TfsalError(f"{folder} exists; pass another --version or remove it")
    classifier, inpainter = load_models(classifier_path, inpainter_path)
    mask_network = None  # a network trained for these models, when given; the shipped one for the shipped models
    if mask_network_path or not (classifier_path or inpainter_path):
        from tfsal.explain.amortised import load_mask_network

        mask_network = load_mask_network(mask_network_path)
    try:
        written = export_explainer(out_dir, classifier, inpainter, version=version, steps=steps, model_name=model_name,
                                   mask_network=mask_network)
    except ValueError as exc:
        raise TfsalError(f"cannot export: {exc}") from None
    fast = ", explain_fast" if mask_network is not None else ""
    click.echo(f"{written}: serving_default, classify, explain_steps{fast} ({steps} steps by default)")
