"""``tfsal serve`` and ``tfsal predict``: a TF-Serving-compatible gRPC server and its client."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--model-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The model base path written by tfsal export (version folders below it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8500, show_default=True)
@click.option("--model-name", default="tfsal", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (no TLS, no authentication: docs/security.md).")
@click.option("--workers", type=click.IntRange(min=1), default=8, show_default=True, help="Request threads.")
@click.option("--max-batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most images per request (larger ones: RESOURCE_EXHAUSTED, before they are read).")
@click.option("--max-steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most optimisation steps an explain_steps request may ask for.")
def serve(model_dir, port, model_name, host, workers, max_batch, max_steps) -> None:
    """Serve an export over gRPC (PredictionService: Predict, GetModelMetadata) until SIGTERM.

    For development and tests; production runs the tensorflow/serving image (see serving/).
    """
    from tfsal.serving.server import ModelServer, RequestLimits

    server = ModelServer(model_dir, port=port, model_name=model_name, host=host, workers=workers,
                         limits=RequestLimits(max_batch=max_batch, max_steps=max_steps))
    warmed = server.start()
    click.echo(f"serving {model_name!r} version {server.service.version} on {host}:{server.port} "
               f"({warmed} warm-up requests replayed)", err=True)
    server.wait()


@click.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--server", required=True, help="HOST:PORT of TF Serving or tfsal serve (gRPC).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--signature", type=click.Choice(["serving_default", "classify", "explain_steps"]),
              default="serving_default", show_default=True)
@click.option("--model-name", default="tfsal", show_default=True)
@click.option("--target", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="For explain_steps [default: 100].")
def predict(images, server, out_dir, signature, model_name, target, steps) -> None:
    """Explain (or classify) IMAGES through a model server; writes what tfsal explain writes."""
    from tfsal.outputs.files import expand_inputs
    from tfsal.serving.client import PredictionClient, predict_files

    images = expand_inputs(images)
    if not images:
        raise click.UsageError("give at least one IMAGE")
    results = predict_files(images, out_dir, PredictionClient(server, model_name), signature, target, steps)
    for result in results:
        if result.ok:
            click.echo(f"{result.path} -> {out_dir / result.stem}.json")
        else:
            click.echo(f"Error: {result.error}", err=True)
    if not all(r.ok for r in results):
        raise SystemExit(1)
