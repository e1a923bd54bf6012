"""Tests of tfsal.data.cbis_ddsm on a tiny CBIS-DDSM-shaped tree written with pydicom."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from tfsal.data import cbis_ddsm, dicom
from tfsal.data.manifest import read_manifest
from tfsal.errors import CbisDdsmError

MASS_HEADER = ["patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
               "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
               "image file path", "cropped image file path", "ROI mask file path"]
CALC_HEADER = ["patient_id", "breast density", "left or right breast", "image view", "abnormality id",
               "abnormality type", "calc type", "calc distribution", "assessment", "pathology", "subtlety",
               "image file path", "cropped image file path", "ROI mask file path"]
SIZE = (64, 48)


def _dcm(root: Path, folder: str, series: str, name: str, pixels: np.ndarray, seed: str) -> str:
    """Write a DICOM in TCIA's layout; return the CSV-style path of its series."""
    path = root / folder / "07-20-2016-DDSM-74994" / f"1.000000-{series}-24515" / name
    dicom.write_mammogram_dicom(path, pixels, uid_seed=seed)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return f"{folder}/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/000000.dcm\n"


def _full(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, SIZE).astype(np.uint16)


def _roi(box) -> np.ndarray:
    mask = np.zeros(SIZE, np.uint16)
    r0, r1, c0, c1 = box
    mask[r0:r1, c0:c1] = 255
    return mask


def _crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, (20, 16)).astype(np.uint16)


def _row(header, patient, side, kind, image, crop, roi, abnormality=1, pathology="MALIGNANT"):
    values = dict.fromkeys(header, "x")
    values.update({"patient_id": patient, "left or right breast": side, "image view": "CC",
                   "abnormality id": str(abnormality), "abnormality type": kind, "pathology": pathology,
                   "image file path": image, "cropped image file path": crop, "ROI mask file path": roi})
    return values


def _write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


ROI_BOXES = {"P1a": (5, 15, 5, 15), "P1b": (30, 40, 20, 30), "P2": (10, 20, 30, 40), "P4": (40, 50, 10, 20)}


def _tree(tmp_path: Path) -> tuple[list[Path], Path]:
    """Mass train (two abnormalities, one with swapped crop/ROI columns; a crop and ROI sharing
    one series as 1-1.dcm and 1-2.dcm), a calc row, a test row found by folder, a missing row."""
    root = tmp_path / "CBIS-DDSM"
    p1 = "Mass-Training_P_00001_LEFT_CC"
    p1_full = _dcm(root, p1, "full mammogram images", "1-1.dcm", _full(1), "p1")
    p1a_crop = _dcm(root, p1 + "_1", "cropped images", "1-1.dcm", _crop(11), "p1a-crop")
    p1a_roi = _dcm(root, p1 + "_1", "ROI mask images", "1-1.dcm", _roi(ROI_BOXES["P1a"]), "p1a-roi")
    p1b_crop = _dcm(root, p1 + "_2", "cropped images", "1-1.dcm", _crop(12), "p1b-crop")
    p1b_roi = _dcm(root, p1 + "_2", "ROI mask images", "1-1.dcm", _roi(ROI_BOXES["P1b"]), "p1b-roi")
    p2 = "Mass-Training_P_00002_RIGHT_CC"
    p2_full = _dcm(root, p2, "full mammogram images", "1-1.dcm", _full(2), "p2")
    p2_crop = _dcm(root, p2 + "_1", "ROI mask images", "1-1.dcm", _crop(21), "p2-roi")  # same series:
    p2_roi = _dcm(root, p2 + "_1", "ROI mask images", "1-2.dcm", _roi(ROI_BOXES["P2"]), "p2-roi")  # 1-1, 1-2
    p4 = "Mass-Test_P_00004_LEFT_CC"
    _dcm(root, p4, "full mammogram images", "1-1.dcm", _full(4), "p4")
    p4_roi = _dcm(root, p4 + "_1", "ROI mask images", "1-1.dcm", _roi(ROI_BOXES["P4"]), "p4-roi")
    p4_full_by_folder = f"{p4}/1.2.3/9.9.9.9/000000.dcm"  # a UID not in the tree: found by folder
    p3 = "Calc-Training_P_00003_LEFT_CC"
    p3_full = _dcm(root, p3, "full mammogram images", "1-1.dcm", _full(3), "p3")
    missing = "Mass-Training_P_00005_LEFT_CC/1.2.3/4.5.6/000000.dcm"
    mass_train = _write_csv(tmp_path / "mass_case_description_train_set.csv", MASS_HEADER, [
        _row(MASS_HEADER, "P_00001", "LEFT", "mass", p1_full, p1a_crop, p1a_roi, 1, "MALIGNANT"),
        _row(MASS_HEADER, "P_00001", "LEFT", "mass", p1_full, p1b_roi, p1b_crop, 2, "BENIGN"),  # swapped
        _row(MASS_HEADER, "P_00002", "RIGHT", "mass", p2_full, p2_roi, p2_crop),  # swapped columns
        _row(MASS_HEADER, "P_00005", "LEFT", "mass", missing, missing, missing),
    ])
    mass_test = _write_csv(tmp_path / "mass_case_description_test_set.csv", MASS_HEADER, [
        _row(MASS_HEADER, "P_00004", "LEFT", "mass", p4_full_by_folder, p4_roi, p4_roi, 1, "BENIGN"),
    ])
    calc_train = _write_csv(tmp_path / "calc_case_description_train_set.csv", CALC_HEADER, [
        _row(CALC_HEADER, "P_00003", "LEFT", "calcification", p3_full, p3_full, p3_full),
    ])
    return [mass_train, mass_test, calc_train], root


def _by_folder(records):
    return {r.image.parent.parent.parent.name: r for r in records}


def test_manifest_has_mass_images_with_union_masks_and_splits(tmp_path, caplog):
    csvs, root = _tree(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tfsal.data.cbis_ddsm"):
        path = cbis_ddsm.build_manifest(csvs, root, tmp_path / "out", val=0.5, progress=False)
    assert path == tmp_path / "out" / "labels.csv"
    records = _by_folder(read_manifest(path))
    assert sorted(records) == ["Mass-Test_P_00004_LEFT_CC", "Mass-Training_P_00001_LEFT_CC",
                               "Mass-Training_P_00002_RIGHT_CC"]
    assert all(r.label == 1 and r.image.name == "1-1.dcm" for r in records.values())
    assert records["Mass-Test_P_00004_LEFT_CC"].split == "test"
    assert sorted(records[f].split for f in records if "Training" in f) == ["train", "val"]
    expected = {"Mass-Training_P_00001_LEFT_CC": ["P1a", "P1b"], "Mass-Training_P_00002_RIGHT_CC": ["P2"],
                "Mass-Test_P_00004_LEFT_CC": ["P4"]}
    for folder, boxes in expected.items():
        mask = cv2.imread(str(records[folder].mask), cv2.IMREAD_UNCHANGED)
        union = np.logical_or.reduce([_roi(ROI_BOXES[b]) > 0 for b in boxes])
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
        np.testing.assert_array_equal(mask > 0, union)
    assert records["Mass-Training_P_00001_LEFT_CC"].extra == {"pathology": "BENIGN|MALIGNANT",
                                                              "abnormality_type": "mass"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "skipped 1 of 6" in warnings[0] and "P_0000" not in warnings[0]


def test_mask_names_carry_no_patient_id(tmp_path):
    csvs, root = _tree(tmp_path)
    out = tmp_path / "out"
    cbis_ddsm.build_manifest(csvs, root, out, progress=False)
    names = sorted(p.name for p in (out / "masks").iterdir())
    assert names == ["cbis_00000.png", "cbis_00001.png", "cbis_00002.png"]
    text = (out / "labels.csv").read_text()
    assert "masks/cbis_00000.png" in text and "CBIS-DDSM/Mass-Training_P_00001_LEFT_CC/" in text


def test_calc_images_are_kept_as_label_0_only_when_asked(tmp_path):
    csvs, root = _tree(tmp_path)
    records = _by_folder(read_manifest(cbis_ddsm.build_manifest(
        csvs, root, tmp_path / "out", include_calc=True, progress=False)))
    calc = records["Calc-Training_P_00003_LEFT_CC"]
    assert len(records) == 4 and calc.label == 0 and calc.mask is None
    assert calc.extra["abnormality_type"] == "calc"


def test_validation_split_depends_on_seed_only(tmp_path):
    csvs, root = _tree(tmp_path)
    runs = [cbis_ddsm.build_manifest(csvs, root, tmp_path / f"o{i}", val=0.5, seed=s, progress=False)
            for i, s in enumerate([3, 3])]
    assert [r.split for r in read_manifest(runs[0])] == [r.split for r in read_manifest(runs[1])]
    no_val = read_manifest(cbis_ddsm.build_manifest(csvs, root, tmp_path / "o3", val=0.0, progress=False))
    assert "val" not in {r.split for r in no_val}


def test_missing_columns_are_named(tmp_path):
    bad = _write_csv(tmp_path / "bad.csv", ["patient_id", "pathology"], [{"patient_id": "P", "pathology": "B"}])
    with pytest.raises(CbisDdsmError, match="missing column\\(s\\): left or right breast, image view"):
        cbis_ddsm.build_manifest([bad], tmp_path, tmp_path / "out", progress=False)


def test_no_resolvable_row_is_an_error(tmp_path):
    csvs, _ = _tree(tmp_path)
    empty = tmp_path / "empty_root"
    empty.mkdir()
    with pytest.raises(CbisDdsmError, match="none of the 4 CSV rows resolves"):
        cbis_ddsm.build_manifest(csvs[:1], empty, tmp_path / "out", progress=False)


def test_a_manifest_that_train_all_accepts_needs_the_calcification_images(tmp_path):
    """CBIS-DDSM has no normal mammograms: with ``include_calc`` the calcification-only images are the
    healthy class, and ten patients with a mass image and a calcification image each give every
    split both classes; without it ``train all`` is refused before it starts."""
    from tfsal.errors import TfsalError
    from tfsal.recipes.train_all import check_trainable

    root, mass, calc = tmp_path / "CBIS-DDSM", [], []
    for n in range(1, 13):
        kind = "Training" if n <= 10 else "Test"
        patient = f"P_{n:05d}"
        full = _dcm(root, f"Mass-{kind}_{patient}_LEFT_CC", "full mammogram images", "1-1.dcm", _full(n), f"m{n}")
        roi = _dcm(root, f"Mass-{kind}_{patient}_LEFT_CC_1", "ROI mask images", "1-1.dcm",
                   _roi(ROI_BOXES["P1a"]), f"r{n}")
        crop = _dcm(root, f"Mass-{kind}_{patient}_LEFT_CC_1", "cropped images", "1-1.dcm", _crop(n), f"c{n}")
        mass.append((kind, _row(MASS_HEADER, patient, "LEFT", "mass", full, crop, roi)))
        other = _dcm(root, f"Calc-{kind}_{patient}_RIGHT_CC", "full mammogram images", "1-1.dcm", _full(100 + n),
                     f"k{n}")
        calc.append((kind, _row(CALC_HEADER, patient, "RIGHT", "calcification", other, other, other)))
    csvs = [_write_csv(tmp_path / f"{name}_case_description_{kind.lower()}_set.csv", header,
                       [row for k, row in rows if k == kind])
            for name, header, rows in (("mass", MASS_HEADER, mass), ("calc", CALC_HEADER, calc))
            for kind in ("Training", "Test")]
    _, table = check_trainable(cbis_ddsm.build_manifest(csvs, root, tmp_path / "out", include_calc=True, val=0.2,
                                                        progress=False))
    assert all(table[split]["mass"] and table[split]["healthy"] for split in ("train", "val", "test"))
    with pytest.raises(TfsalError, match="needs mass and healthy images"):
        check_trainable(cbis_ddsm.build_manifest(csvs, root, tmp_path / "masses", val=0.2, progress=False))
