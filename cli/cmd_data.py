"""``tfsal data``: make data sets (synthetic mammograms) and manifests (public data sets, your own table)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from tfsal.cli.params import SIZE


@click.group()
def data() -> None:
    """Make data sets and manifests (labels.csv)."""


@data.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write images, masks and labels.csv into.")
@click.option("--n-mass", type=click.IntRange(min=0), default=None,
              help="Images with masses (default 1565: the paper's 1231 train + 334 test).")
@click.option("--n-healthy", type=click.IntRange(min=0), default=None,
              help="Healthy images (default 2778: the paper's 2000 train + 778 test).")
@click.option("--size", type=SIZE, default="256x192", show_default=True, help="Image size HxW.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed; the same seed writes the same bytes.")
@click.option("--format", "fmt", type=click.Choice(["png", "dicom"]), default="png", show_default=True,
              help="16-bit PNG or DICOM (MG, 12 bits stored).")
@click.option("--photometric", type=click.Choice(["MONOCHROME2", "MONOCHROME1"], case_sensitive=False),
              default="MONOCHROME2", show_default=True, help="DICOM photometric interpretation.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes (default: all cores). The output does not depend on it.")
@click.option("--world", type=click.Choice(["classic", "mixture"]), default="classic", show_default=True,
              help="classic: one texture, masses, a digital detector. mixture: every family (textures, lesion "
                   "kinds, distractors, film and detector artefacts), for training that must survive a change of data.")
@click.option("--textures", default=None, metavar="NAME[,NAME...]",
              help="Only these tissue textures (gaussian, fibrous, nodular, cloudy), e.g. to hold one out of "
                   "training or to test on it alone [default: the world's].")
def synth(out_dir, n_mass, n_healthy, size, seed, fmt, photometric, workers, world, textures) -> None:
    """Write synthetic mammograms with ground-truth mass and breast masks."""
    from tfsal.data import synthetic_dataset
    from tfsal.data.synthetic import SynthConfig

    try:
        config = SynthConfig.mixture() if world == "mixture" else SynthConfig()
        if textures is not None:
            config = dataclasses.replace(config, textures=tuple(t.strip() for t in textures.split(",")))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--textures") from None
    kwargs = {}
    if n_mass is not None:
        kwargs["n_mass"] = n_mass
    if n_healthy is not None:
        kwargs["n_healthy"] = n_healthy
    manifest = synthetic_dataset.write_dataset(
        out_dir, size=size, seed=seed, fmt=fmt, photometric=photometric.upper(), config=config,
        workers=workers, progress=True, **kwargs)
    click.echo(str(manifest))


@data.command("cbis-ddsm")
@click.option("--csv", "csv_paths", required=True, multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CBIS-DDSM description CSV (mass or calc, train or test); repeat for several.")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The CBIS-DDSM folder (its DICOM tree) as The Cancer Imaging Archive delivers it.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for labels.csv and the combined ROI masks.")
@click.option("--include-calc", is_flag=True,
              help="Keep calcification-only images, labelled 0 (no mass); skipped by default. CBIS-DDSM has no "
                   "normal mammograms: without this flag there is no healthy class to train on.")
@click.option("--val", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of the training patients moved to the validation split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the validation split.")
def cbis_ddsm(csv_paths, root, out_dir, include_calc, val, seed) -> None:
    """Build labels.csv from CBIS-DDSM description CSVs and its DICOM tree."""
    from tfsal.data import cbis_ddsm as reader

    manifest = reader.build_manifest(
        list(csv_paths), root, out_dir, include_calc=include_calc, val=val, seed=seed, progress=True)
    click.echo(str(manifest))


def _reader_options(root_help: str, masks: str, include: tuple[str, str], val_help: str, test: bool = True):
    """The options every public-data reader takes: --root, --out, its --include-* flag, the
    split shares (--val, and --test where the reader draws the test split itself) and --seed."""
    options = [
        click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help=root_help),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help=f"Folder for labels.csv and the {masks}."),
        click.option(include[0], is_flag=True, help=include[1]),
        click.option("--val", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
                     help=val_help),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split."),
    ]
    if test:
        options.insert(4, click.option("--test", type=click.FloatRange(0, 1, max_open=True), default=0.2,
                                       show_default=True, help="Share of the women in the test split."))

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def _check_shares(val: float, test: float) -> None:
    if val + test >= 1:
        raise click.BadParameter(f"--val + --test must be under 1 (got {val + test:g})", param_hint="--val/--test")


@data.command("mias")
@_reader_options("The mini-MIAS folder: Info.txt and the mdbNNN.pgm films.", "lesion masks",
                 ("--include-calc", "Keep calcification-only films, labelled 0 (no mass); left out by default."),
                 "Share of the women in the validation split.")
def mias(root, out_dir, include_calc, val, test, seed) -> None:
    """Build labels.csv from the mini-MIAS films and Info.txt (lesion circles become masks)."""
    from tfsal.data import mias as reader

    _check_shares(val, test)
    click.echo(str(reader.build_manifest(root, out_dir, include_calc=include_calc, val=val, test=test, seed=seed)))


@data.command("vindr")
@_reader_options("The VinDr-Mammo release: finding_annotations.csv and images/<study_id>/<image_id>.dicom.",
                 "mass masks", ("--include-other", "Keep images whose findings are all other than masses, "
                                                   "labelled 0; left out by default."),
                 "Share of the training studies moved to the validation split (the test split is the official one).",
                 test=False)
def vindr(root, out_dir, include_other, val, seed) -> None:
    """Build labels.csv from VinDr-Mammo's finding_annotations.csv (mass boxes become masks)."""
    from tfsal.data import vindr as reader

    click.echo(str(reader.build_manifest(root, out_dir, include_other=include_other, val=val, seed=seed)))


@data.command("inbreast")
@_reader_options("The INbreast folder: AllDICOMs/, AllXML/ and INbreast.csv.", "mass masks",
                 ("--include-other", "Keep images whose ROIs are all other than masses, labelled 0; left out by "
                                     "default."),
                 "Share of the women in the validation split.")
def inbreast(root, out_dir, include_other, val, test, seed) -> None:
    """Build labels.csv from INbreast's DICOMs and XML ROI files (mass outlines become masks)."""
    from tfsal.data import inbreast as reader

    _check_shares(val, test)
    click.echo(str(reader.build_manifest(root, out_dir, include_other=include_other, val=val, test=test, seed=seed)))


@data.command("table")
@click.option("--csv", "table", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your table: columns image and label (0/1), optional mask, patient, split, and any others.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for labels.csv (the images stay where they are).")
@click.option("--val", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of the patients in the validation split (without a split column).")
@click.option("--test", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Share of the patients in the test split (without a split column).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
def table(table, out_dir, val, test, seed) -> None:
    """Build labels.csv from a CSV of your own images (DICOM, PNG, TIFF...), split by patient."""
    from tfsal.data import table as reader

    _check_shares(val, test)
    click.echo(str(reader.build_manifest(table, out_dir, val=val, test=test, seed=seed)))


@data.command("merge")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the merged labels.csv (the images stay where they are).")
def merge(manifests, out_dir) -> None:
    """Merge manifests (labels.csv or their folders) into one, each row's split kept: e.g. your
    images with synthetic ones, or two worlds of the generator."""
    from tfsal.data.manifest import merge_manifests

    out_dir.mkdir(parents=True, exist_ok=True)
    click.echo(str(merge_manifests(list(manifests), out_dir)))
