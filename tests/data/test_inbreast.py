"""The INbreast reader, on a folder of DICOMs, OsiriX ROI files and a CSV the tests write."""

from __future__ import annotations

import plistlib

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.dicom import write_mammogram_dicom
from tfsal.data.image_io import read_image, read_mask
from tfsal.data.inbreast import InbreastError, build_manifest, read_rois, roi_mask
from tfsal.data.manifest import read_manifest

# number, woman, laterality, view, ROIs (name, points)
IMAGES = [
    ("101", "aa01", "L", "CC", [("Mass", [(4, 4), (12, 4), (12, 10), (4, 10)]), ("Calcification", [(20, 20)])]),
    ("102", "aa01", "L", "MLO", [("Spiculated Region", [(2, 30), (8, 30), (8, 36)])]),
    ("103", "bb02", "R", "CC", None),  # no XML: nothing annotated
    ("104", "bb02", "R", "MLO", [("Calcification", [(5, 5)]), ("Cluster", [(1, 1), (9, 1), (9, 9)])]),
    ("105", "cc03", "L", "CC", None),
    ("106", "dd04", "L", "CC", None),
]


def _plist(rois):
    return {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": [
        {"Name": name, "NumberOfPoints": len(points), "Point_px": [f"({x}.0, {y}.0)" for x, y in points],
         "Point_mm": []} for name, points in rois]}]}


def _release(root, images):
    """An INbreast folder at ``root`` with ``images`` (as :data:`IMAGES`)."""
    (root / "AllDICOMs").mkdir(parents=True)
    (root / "AllXML").mkdir()
    rng = np.random.default_rng(0)
    lines = ["Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"]
    for number, woman, laterality, view, rois in images:
        write_mammogram_dicom(root / "AllDICOMs" / f"{number}_{woman}_MG_{laterality}_{view}_ANON.dcm",
                              rng.integers(0, 4096, (48, 40)), laterality=laterality, view=view, uid_seed=number)
        if rois is not None:
            (root / "AllXML" / f"{number}.xml").write_bytes(plistlib.dumps(_plist(rois)))
        lines.append(f"removed;removed;{laterality};{view};200901;{number};2;{'4c' if rois else '1'}")
    (root / "INbreast.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def folder(tmp_path):
    root = _release(tmp_path / "INbreast", IMAGES)
    (root / "AllDICOMs" / "notes.dcm").write_bytes(b"not an INbreast name")  # ignored
    return root


def test_mass_outlines_become_filled_masks(folder, tmp_path):
    records = {r.image.name.split("_")[0]: r for r in read_manifest(build_manifest(folder, tmp_path / "out"))}
    assert set(records) == {"101", "102", "103", "105", "106"}  # 104 has calcifications only
    assert {k: r.label for k, r in records.items()} == {"101": 1, "102": 1, "103": 0, "105": 0, "106": 0}
    mass = read_mask(records["101"].mask)
    assert mass.shape == (48, 40) and mass[4:11, 4:13].all() and mass.sum() == 7 * 9  # the filled outline
    assert not mass[20, 20]  # the calcification is not a mass
    assert read_mask(records["102"].mask)[33, 6]  # a spiculated region counts as a mass
    assert records["101"].extra["birads"] == "4c" and records["103"].extra["birads"] == "1"
    assert records["101"].extra["rois"] == "Calcification|Mass"
    assert records["101"].split == records["102"].split  # one woman, one split
    assert records["101"].extra["patient"].startswith("inbreast") and "aa01" not in str(records["101"].extra)
    assert read_image(records["103"].image)[0].shape == (48, 40, 1)


def test_other_findings_kept_as_healthy_when_asked(folder, tmp_path):
    records = {r.image.name.split("_")[0]: r for r in read_manifest(build_manifest(folder, tmp_path / "o",
                                                                                   include_other=True))}
    assert records["104"].label == 0 and records["104"].mask is None


def test_rois_and_masks():
    from tfsal.data.inbreast import Roi

    assert roi_mask([Roi("Calcification", np.array([[1.0, 1.0]]))], (4, 4)) is None
    assert roi_mask([Roi("Mass", np.array([[1.0, 2.0]]))], (4, 4)).sum() == 1  # a point ROI: its pixel


def test_bad_files_are_refused(tmp_path, folder):
    (tmp_path / "bad.xml").write_text("<plist><dict><key>Images</key>")
    with pytest.raises(InbreastError, match="not a readable"):
        read_rois(tmp_path / "bad.xml")
    assert read_rois(folder / "AllXML" / "101.xml")[0].name == "Mass"
    (tmp_path / "empty" / "AllDICOMs").mkdir(parents=True)
    with pytest.raises(InbreastError, match="no INbreast DICOM"):
        build_manifest(tmp_path / "empty", tmp_path / "out")


def test_the_command(folder, tmp_path):
    result = CliRunner().invoke(cli, ["data", "inbreast", "--root", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "labels.csv").exists()


def test_a_manifest_that_train_all_accepts(tmp_path):
    """Ten women, each with an image holding a mass and one with nothing annotated."""
    from tfsal.recipes.train_all import check_trainable

    images = [(f"{w}0{k}", f"ab{w:02d}", "L", view, [("Mass", [(4, 4), (12, 4), (12, 10)])] if k == 1 else None)
              for w in range(1, 11) for k, view in ((1, "CC"), (2, "MLO"))]
    root = _release(tmp_path / "INbreast", images)
    _, table = check_trainable(build_manifest(root, tmp_path / "out", val=0.2, test=0.2))
    assert all(table[split]["mass"] and table[split]["healthy"] for split in ("train", "val", "test"))
