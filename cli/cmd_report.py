"""``tfsal report``: one static HTML page of an output folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html and report_images/ [default: FOLDER].")
def report(folder, out_dir) -> None:
    """Write report.html for the results in FOLDER (of tfsal explain, explain-batch, predict or
    evaluate): a sortable table of the cases with their pictures, and the evaluation's tables and
    figures when present. Self-contained: it needs no network."""
    from tfsal.outputs.report import write_report

    click.echo(str(write_report(folder, out_dir)))
