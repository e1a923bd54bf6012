"""``tfsal explain-batch``: ``tfsal explain``'s counterfactual outputs for many images, as an Apache Beam
pipeline (the optional extra ``tfsal[beam]``)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from tfsal.cli.params import (
    check_dicom_extra,
    dicom_options,
    method_options,
    overlay_option,
    redact_option,
    reject_options_not_taken,
)

log = logging.getLogger(__name__)

RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--input", "specs", multiple=True, required=True, metavar="MANIFEST|FOLDER|GLOB",
              help="A manifest CSV (column image or path), a folder of images, an image or a glob; repeatable.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: per image what tfsal explain writes, and results.csv, dead_letters.csv.")
@click.option("--runner", default="DirectRunner", show_default=True,
              help="Beam runner (FlinkRunner, SparkRunner, DataflowRunner, ...).")
@click.option("--direct-num-workers", "direct_num_workers", type=click.IntRange(min=1),
              default=None, help="DirectRunner: workers [default: 2; 1 with in_memory].")
@click.option("--direct-running-mode", "direct_running_mode",
              type=click.Choice(RUNNING_MODES), default="multi_processing", show_default=True,
              help="DirectRunner: how the workers run.")
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A Keras classifier file [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A .keras inpainter [default: the shipped one].")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Optimisation steps [default: 100; with --server, the export's own].")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images explained together.")
@click.option("--seed", type=int, default=None, help="Offsets of the initial hole lattice and the in-fill blocks "
                                                     "[default: 0].")
@click.option("--target", type=click.IntRange(min=0), default=None,
              help="Class to explain [default: 1 for one sigmoid output, else the predicted class; 1 with --server].")
@click.option("--server", default=None, metavar="HOST:PORT",
              help="Explain through a TF Serving (or tfsal serve) gRPC endpoint instead of local models.")
@click.option("--model-name", default="tfsal", show_default=True, help="With --server: the served model's name.")
@method_options
@overlay_option
@dicom_options
@redact_option
@click.pass_context
def explain_batch(ctx, specs, out_dir, runner, direct_num_workers, direct_running_mode, classifier_path,
                  inpainter_path, steps, batch_size, seed, target, server, model_name, method, percentile, preset,
                  mask_network, logits, style, dicom_out, dicom_send, redact) -> None:
    """Explain many images with an Apache Beam pipeline; resumable.

    Writes what tfsal explain writes (same stems for the same list), skipping inputs whose
    <stem>.json in --out was made from the same file content with the same method, settings,
    models and overlay (any other is explained again), plus results.csv (one row per input: status, scores, area,
    components of the mask, seconds, error) and dead_letters.csv (the inputs that failed, with the
    reason). Other options (e.g. --flink_master=..., --project=...) go to Beam. Exit code 1 when
    any input failed (each named on stderr).
    """
    _import_beam()
    from tfsal.batch import pipeline as batch
    from tfsal.batch.results import RESULTS
    from tfsal.explain.registry import DEFAULT_STEPS

    _check_server_options(ctx, server, classifier_path, inpainter_path, seed,
                          method not in ("counterfactual", "amortised"), preset != "default", logits, mask_network)
    check_dicom_extra(dicom_out, dicom_send)
    reject_options_not_taken(method)
    inputs = _list_inputs(ctx, specs)
    pipeline = _new_pipeline(ctx, runner, direct_num_workers, direct_running_mode)
    settings = batch.BatchSettings(
        out=str(out_dir), batch_size=batch_size, steps=steps or (None if server else DEFAULT_STEPS),
        seed=seed or 0, target=target, classifier=str(classifier_path) if classifier_path else None,
        inpainter=str(inpainter_path) if inpainter_path else None, server=server, model_name=model_name,
        dicom_out=dicom_out, dicom_send=dicom_send, redact=redact, overlay=style, method=method,
        percentile=percentile, preset=preset, logits=logits, mask_network=mask_network and str(mask_network))
    try:  # here, once: bad model files or an unreachable server give one line, not a failed pipeline
        provenance = batch.check_settings(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        report = batch.run_batch(inputs, settings, pipeline, provenance)
    except OSError as exc:  # on the launcher: the output folder or its tables
        raise click.ClickException(f"{exc.filename or out_dir}: {exc.strerror or exc}") from None
    except Exception as exc:  # the runner failed (job server, cluster, a crashed worker); -vv shows the traceback
        log.debug("the pipeline failed", exc_info=True)
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise click.ClickException(f"the pipeline failed on {runner}: {type(exc).__name__}: {reason}") from None
    for row in report.failed:
        click.echo(f"Error: {row['input']}: {row['error']}", err=True)
    explained = len(report.rows) - len(report.failed)
    click.echo(f"{explained} explained, {report.skipped} already done, {len(report.failed)} failed "
               f"-> {out_dir / RESULTS}")
    if report.failed:
        raise SystemExit(1)


def _list_inputs(ctx, specs) -> list[str]:
    """The image files of every --input, each of which must name some."""
    from tfsal.errors import TfsalError
    from tfsal.outputs.inputs import list_inputs

    inputs = []
    for spec in specs:
        try:
            found = list_inputs([spec])
        except TfsalError as exc:
            raise click.BadParameter(str(exc), ctx, param_hint="--input") from None
        if not found:
            raise click.BadParameter(f"no image files found in {spec}", ctx, param_hint="--input")
        inputs += found
    return inputs


def _new_pipeline(ctx, runner, direct_num_workers, direct_running_mode):
    """The Beam pipeline on ``runner``, with the command's unknown options passed to Beam."""
    from tfsal.batch import runner as beam_runner

    beam_args = list(ctx.args)
    for arg in beam_args:  # one spelling of each option: tfsal's, which sets Beam's
        name = arg.split("=")[0]
        if name in ("--direct_num_workers", "--direct_running_mode"):
            raise click.UsageError(f"{name} is given as {name.replace('_', '-')}", ctx)
    if direct_num_workers is None:
        direct_num_workers = 1 if direct_running_mode == "in_memory" else 2
    try:
        unknown = beam_runner.unknown_beam_args(beam_args)
        if unknown and beam_runner.is_direct(runner):  # other runners may take options of their own
            raise click.UsageError(f"unknown option(s) or argument(s): {' '.join(unknown)}", ctx)
        return beam_runner.new_pipeline(beam_runner.pipeline_options(runner, beam_args, direct_num_workers,
                                                                     direct_running_mode))
    except ValueError as exc:  # a bad value of a Beam option, an unknown runner, options the runner rejects
        raise click.UsageError(" ".join(str(exc).split()), ctx) from None
    except ImportError as exc:
        raise click.ClickException(f"--runner {runner}: {exc}") from None


def _check_server_options(ctx, server, classifier_path, inpainter_path, seed, method, preset, logits,
                          mask_network=None) -> None:
    """A usage error for options of local models together with --server (``method``, ``preset``
    and ``logits``: whether those were set away from their defaults)."""
    if server:
        given = [name for name, value in (("--classifier", classifier_path), ("--inpainter", inpainter_path),
                                          ("--seed", seed), ("--mask-network", mask_network)) if value is not None]
        given += [name for name, used in (("--method", method), ("--preset", preset), ("--logits", logits)) if used]
        if given:
            raise click.UsageError(f"{', '.join(given)}: the server's model decides; not with --server", ctx)


def _import_beam() -> None:
    """Import Apache Beam, or fail with one line naming the extra that installs it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # without apache-beam[gcp], Beam's import warns that BigQuery clients are missing
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise click.ClickException("tfsal explain-batch needs Apache Beam: pip install 'tfsal[beam]'") from None
    finally:
        root.setLevel(level)
