"""``tfsal evaluate``: the paper's Tables 1-2 and Figs. 2-3 on a manifest's split."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from tfsal.cli.params import MethodChoice, load_models
from tfsal.explain import registry


def _lambda(value: str):
    name, _, number = value.partition("=")
    try:
        return name.strip(), float(number)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected NAME=VALUE, e.g. l2=0.5") from None


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path), help="labels.csv or its folder.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.json, results.md, roc.png, cases.png and the per-image cache.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N mass images.")
@click.option("--method", "methods", multiple=True,
              type=MethodChoice(lambda: dict.fromkeys((*registry.evaluation_rows(), *registry.names(),
                                                       *registry.LEGACY_ROWS))),
              help="Evaluate only these methods or rows (repeatable; a method's name, as tfsal explain takes it, "
                   "stands for its rows; counterfactual-paper is the counterfactual method's --preset paper) "
                   "[default: all but counterfactual-ablation].")
@click.option("--lambda", "lambdas", multiple=True,
              help="Override l1, l2 or l3 of the counterfactual row, e.g. --lambda l2=1.")
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A Keras classifier file [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A .keras inpainter [default: the shipped one].")
@click.option("--steps", type=click.IntRange(min=1), default=registry.DEFAULT_STEPS, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the methods that take one (as tfsal explain --seed).")
@click.option("--logits", is_flag=True, help="The classifier outputs logits, not probabilities.")
@click.option("--mask-network", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The amortised row's mask network, trained for this classifier and inpainter (tfsal train "
                   "explainer) [default: the shipped one].")
@click.option("--fig2-runs", type=click.IntRange(min=0), default=3, show_default=True,
              help="Runs of the Fig. 2 inpainter check for roc.png (0: skip; `tfsal check-inpainter` runs 10).")
@click.option("--cases", type=click.IntRange(min=0), default=4, show_default=True, help="Rows of cases.png.")
@click.option("--workers", type=click.IntRange(min=1), default=min(2, os.cpu_count() or 1), show_default="2, or 1 "
              "on one core", help="Processes that share the explanations and the metrics, each with its share of the "
              "cores (the results do not depend on it beyond float rounding).")
def evaluate(data, out_dir, split, limit, methods, lambdas, classifier_path, inpainter_path, steps, batch_size,
             seed, logits, mask_network, fig2_runs, cases, workers) -> None:
    """Every method on the same mass images: paper, area-matched and search-matched regions (D, H, A,
    flips), deletion and insertion curves, and one-sided paired tests of the counterfactual method against each."""
    from tfsal.data.manifest import read_manifest
    from tfsal.evaluation.cases import write_cases
    from tfsal.evaluation.evaluate import EvaluationSettings
    from tfsal.evaluation.evaluate import evaluate as run
    from tfsal.evaluation.inpainter_check import check_inpainter, plot_fig2
    from tfsal.evaluation.report import write_json, write_markdown
    from tfsal.util import atomic

    try:
        settings = EvaluationSettings(split=split, methods=registry.expand_rows(methods) if methods
                                      else registry.default_evaluation_rows(),
                                      lambdas=tuple(_lambda(v) for v in lambdas), steps=steps, batch_size=batch_size,
                                      seed=seed, logits=logits, mask_network=mask_network and str(mask_network))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    classifier, inpainter = load_models(classifier_path, inpainter_path)
    evaluation = run(data, out_dir, classifier, inpainter, settings, limit=limit, progress=True, workers=workers)
    command = " ".join(["tfsal evaluate", *(shlex.quote(a) for a in sys.argv[2:])])
    write_json(evaluation, out_dir / "results.json")
    write_markdown(evaluation, out_dir / "results.md", command)
    records = read_manifest(data, split=split)
    masses = [r for r in records if r.label == 1 and r.mask is not None][:limit]
    if fig2_runs:
        healthy = [r for r in records if r.label == 0][:limit]
        result = check_inpainter(classifier, inpainter, masses + healthy, runs=fig2_runs, progress=True)
        plot_fig2(result, out_dir / "roc.png", fig2_runs)
        atomic.write_text(out_dir / "fig2.json", json.dumps(
            {k: result[k]["auc_mean"] for k in ("original", "healthy_inpainted", "mass_inpainted")}) + "\n")
    if cases:
        write_cases(masses, out_dir / "cache", evaluation.size, out_dir / "cases.png", settings.methods, cases)
    summary = evaluation.summary["all"]
    for protocol in ("own", "paper", "area", "search"):
        for key, entry in summary.get(protocol, {}).get("raw", {}).items():
            click.echo(f"{protocol} {key}: D median {entry['D']['median']:.1f}, H median {entry['H']['median']:.1f}, "
                       f"A {entry['A']['mean']:.3f}, flipped {entry['flipped']}/{summary['positives']}, "
                       f"empty {entry['empty']}")
    click.echo(f"{out_dir / 'results.md'}: {evaluation.images} mass images")
