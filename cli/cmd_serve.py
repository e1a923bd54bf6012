"""``tfsal serve`` and ``tfsal predict``: a TF-Serving-compatible gRPC server and its client."""

from __future__ import annotations

from pathlib import Path

import click

from tfsal.cli.params import command_inputs, input_option, overlay_option, redact_option


@click.command()
@click.option("--model-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The model base path written by tfsal export (version folders below it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8500, show_default=True)
@click.option("--model-name", default="tfsal", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (then use TLS and a token: docs/security.md).")
@click.option("--workers", type=click.IntRange(min=1), default=8, show_default=True, help="Request threads.")
@click.option("--queue", type=click.IntRange(min=0), default=8, show_default=True,
              help="Calls that may wait for a free worker; beyond them: RESOURCE_EXHAUSTED.")
@click.option("--max-batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most images per request (larger ones: RESOURCE_EXHAUSTED, before they are read).")
@click.option("--max-steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most optimisation steps an explain_steps request may ask for.")
@click.option("--grace", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds calls in flight get after SIGTERM before they are cancelled.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="PEM certificate (chain): serve TLS.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="PEM private key of --tls-cert.")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM CA: clients must present a certificate it signed (mutual TLS).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding a bearer token every call must send (the health service excepted).")
def serve(model_dir, port, model_name, host, workers, queue, max_batch, max_steps, grace, tls_cert, tls_key,
          tls_client_ca, token_file) -> None:
    """Serve an export over gRPC (PredictionService: Predict, GetModelMetadata; grpc.health.v1)
    until SIGTERM.

    For development and tests; production runs the tensorflow/serving image (see serving/).
    """
    from tfsal.serving.security import ServerSecurity
    from tfsal.serving.server import ModelServer, RequestLimits

    security = ServerSecurity.from_files(tls_cert, tls_key, tls_client_ca, token_file)
    server = ModelServer(model_dir, port=port, model_name=model_name, host=host, workers=workers,
                         limits=RequestLimits(max_batch=max_batch, max_steps=max_steps, queue=queue),
                         security=security, grace=grace)
    warmed = server.start()
    click.echo(f"serving {model_name!r} version {server.service.version} on {host}:{server.port} "
               f"({'TLS' if security.tls else 'plaintext'}, {'token' if security.token else 'no token'}; "
               f"{warmed} warm-up requests replayed)", err=True)
    server.wait()


@click.command()
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@input_option
@click.option("--server", required=True, help="HOST:PORT of TF Serving or tfsal serve (gRPC).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--signature", type=click.Choice(["serving_default", "classify", "explain_steps", "explain_fast"]),
              default="serving_default", show_default=True)
@click.option("--model-name", default="tfsal", show_default=True)
@click.option("--target", type=click.IntRange(min=0), default=1, show_default=True,
              help="Class to explain (the served explainer's default, as tfsal explain-batch --server).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="For explain_steps [default: 100].")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images per request (the server's --max-batch bounds it).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              help="Seconds each call may take (the server stops a call past it).")
@click.option("--tls", is_flag=True, help="Speak TLS, trusting the system's CAs (or --tls-ca).")
@click.option("--tls-ca", type=click.Path(dir_okay=False, path_type=Path), help="PEM CA to trust (implies --tls).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM client certificate, for a server that asks for one (implies --tls).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="PEM private key of --tls-cert.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding the server's bearer token, sent with every call.")
@overlay_option
@redact_option
def predict(images, specs, server, out_dir, signature, model_name, target, steps, batch_size, timeout, tls, tls_ca,
            tls_cert, tls_key, token_file, style, redact) -> None:
    """Explain (or classify) IMAGES through a model server; writes what tfsal explain writes."""
    from tfsal.serving.client import PredictionClient, predict_files
    from tfsal.serving.security import ChannelSecurity

    images = command_inputs([*images, *specs])
    if not images:
        raise click.UsageError("give at least one IMAGE")
    security = ChannelSecurity.from_files(tls, tls_ca, tls_cert, tls_key, token_file)
    client = PredictionClient(server, model_name, timeout=timeout, security=security)
    results = predict_files(images, out_dir, client, signature, target, steps, redact, style, batch_size)
    for result in results:
        if result.ok:
            click.echo(f"{result.label} -> {out_dir / result.stem}.json")
        else:
            click.echo(f"Error: {result.error}", err=True)
    if not all(r.ok for r in results):
        raise SystemExit(1)
