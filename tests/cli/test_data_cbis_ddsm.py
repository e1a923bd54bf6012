"""Tests of ``tfsal data cbis-ddsm`` through click's CliRunner."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data import dicom

HEADER = ["patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
          "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
          "image file path", "cropped image file path", "ROI mask file path"]


def _series_path(root, folder, name, pixels, seed):
    path = root / folder / "01-01-2000-DDSM-1" / f"1.000000-{name}-1" / "1-1.dcm"
    dicom.write_mammogram_dicom(path, pixels, uid_seed=seed)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return f"{folder}/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/000000.dcm\n"


def _one_case(tmp_path):
    root = tmp_path / "CBIS-DDSM"
    full = _series_path(root, "Mass-Training_P_00001_LEFT_CC", "full mammogram images",
                        np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) % 4096, "full")
    roi_pixels = np.zeros((64, 48), np.uint16)
    roi_pixels[10:20, 10:20] = 255
    roi = _series_path(root, "Mass-Training_P_00001_LEFT_CC_1", "ROI mask images", roi_pixels, "roi")
    row = dict.fromkeys(HEADER, "x")
    row.update({"patient_id": "P_00001", "abnormality type": "mass", "pathology": "MALIGNANT",
                "image file path": full, "cropped image file path": roi, "ROI mask file path": roi})
    path = tmp_path / "mass_case_description_train_set.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerow(row)
    return path, root


def test_cbis_ddsm_command_writes_labels_csv(tmp_path):
    csv_path, root = _one_case(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "cbis-ddsm", "--csv", str(csv_path), "--root", str(root),
                                      "--out", str(out), "--val", "0"])
    assert result.exit_code == 0, result.output
    assert (out / "labels.csv").is_file()
    assert str(out / "labels.csv") in result.stdout
    assert (out / "masks" / "cbis_00000.png").is_file()


def test_cbis_ddsm_command_names_missing_columns_in_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,pathology\nP_00001,BENIGN\n")
    result = CliRunner().invoke(cli, ["data", "cbis-ddsm", "--csv", str(bad), "--root", str(tmp_path),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "missing column(s)" in lines[0]
    assert "Traceback" not in result.output
