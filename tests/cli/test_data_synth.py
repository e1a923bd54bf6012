"""`tfsal data synth`, as the issue's done-when states it."""

import csv
import filecmp

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.image_io import read_image

ARGS = ["--n-mass", "6", "--n-healthy", "6", "--size", "256x192", "--seed", "7"]


def _synth(out, *extra):
    result = CliRunner().invoke(cli, ["data", "synth", "--out", str(out), *ARGS, *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def png_set(tmp_path_factory):
    return _synth(tmp_path_factory.mktemp("png"))


def test_writes_images_masks_and_manifest(png_set):
    rows = list(csv.DictReader((png_set / "labels.csv").open()))
    assert len(rows) == 12
    assert len(list((png_set / "images").glob("*.png"))) == 12
    assert len(list((png_set / "masks").glob("*.png"))) == 6
    assert sum(r["label"] == "1" for r in rows) == 6
    assert all((png_set / r["image"]).is_file() for r in rows)
    assert all(bool(r["mask"]) == (r["label"] == "1") for r in rows)
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert list(rows[0]) == ["image", "label", "mask", "split", "organ", "density", "lesion"]  # classic: no world
    assert all(r["density"] in "abcd" and bool(r["lesion"]) == (r["label"] == "1") for r in rows)


def test_second_run_writes_identical_files(png_set, tmp_path):
    again = _synth(tmp_path / "again", "--workers", "1")
    comparison = filecmp.dircmp(png_set, again)
    assert not comparison.diff_files and not comparison.left_only and not comparison.right_only
    for sub in ("images", "masks", "organ"):
        names = sorted(p.name for p in (png_set / sub).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(png_set / sub, again / sub, names, shallow=False)
        assert not mismatch and not errors


def test_other_seed_other_images(png_set, tmp_path):
    other = _synth(tmp_path / "other", "--seed", "8")
    assert (png_set / "images/img_00000.png").read_bytes() != (other / "images/img_00000.png").read_bytes()


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_reads_back_as_mg_and_as_the_png_picture(png_set, tmp_path, photometric):
    dicom_set = _synth(tmp_path / "dcm", "--format", "dicom", "--photometric", photometric)
    files = sorted((dicom_set / "images").glob("*.dcm"))
    assert len(files) == 12
    for path in files[:4]:
        ds = pydicom.dcmread(path)
        assert ds.Modality == "MG" and ds.PhotometricInterpretation == photometric and ds.BitsStored == 12
        from_dicom, meta = read_image(path)
        from_png, _ = read_image(png_set / "images" / (path.stem + ".png"))
        np.testing.assert_allclose(from_dicom, from_png, atol=1e-4)
        assert meta.laterality in ("L", "R") and meta.view in ("CC", "MLO") and meta.pixel_spacing
