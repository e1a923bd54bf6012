"""`tfsal data table`: a user's own CSV of images to labels.csv, split by patient."""

import csv
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.image_io import write_mask
from tfsal.data.manifest import read_manifest
from tfsal.data.table import build_manifest
from tfsal.errors import ManifestError


def _table(folder, rows, columns=("image", "label", "mask", "patient")):
    path = folder / "mine.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def images(tmp_path):
    """Twelve tiny files (the reader does not decode them) and masks for the odd ones, 6 patients."""
    folder = tmp_path / "scans"
    folder.mkdir()
    rows = []
    for i in range(12):
        (folder / f"img{i}.dcm").write_bytes(b"x")
        mask = ""
        if i % 2:
            write_mask(folder / f"img{i}_mask.png", np.ones((4, 4), bool))
            mask = f"scans/img{i}_mask.png"
        rows.append({"image": f"scans/img{i}.dcm", "label": str(i % 2), "mask": mask, "patient": f"P{i // 2}",
                     "extra": f"note{i}"})
    return tmp_path, rows


def test_patients_stay_in_one_split_and_extras_are_kept(images):
    root, rows = images
    path = build_manifest(_table(root, rows, ("image", "label", "mask", "patient", "extra")), root / "out",
                          val=0.2, test=0.3, seed=1)
    records = read_manifest(path)
    assert len(records) == 12
    split_of = {}
    for record in records:
        split_of.setdefault(record.extra["patient"], set()).add(record.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {s.pop() for s in split_of.values()} == {"train", "val", "test"}
    assert all((r.mask is not None) == (r.label == 1) for r in records)
    assert records[0].extra["extra"] == "note0" and records[0].image.name == "img0.dcm"
    again = read_manifest(build_manifest(_table(root, rows, ("image", "label", "mask", "patient", "extra")),
                                         root / "out2", val=0.2, test=0.3, seed=1))
    assert [r.split for r in again] == [r.split for r in records]


def test_a_given_split_column_is_kept(images):
    root, rows = images
    rows = [{**row, "split": ("train", "val", "test")[i % 3]} for i, row in enumerate(rows)]
    records = read_manifest(build_manifest(_table(root, rows, ("image", "label", "mask", "patient", "split",
                                                                "extra")), root / "out"))
    assert [r.split for r in records] == [("train", "val", "test")[i % 3] for i in range(12)]
    rows[3]["split"] = ""
    with pytest.raises(ManifestError, match="some rows only"):
        build_manifest(_table(root, rows, ("image", "label", "mask", "patient", "split", "extra")), root / "o")


def test_missing_files_are_left_out_with_their_lines(images, caplog):
    root, rows = images
    (root / "scans" / "img4.dcm").unlink()
    with caplog.at_level(logging.WARNING):
        records = read_manifest(build_manifest(_table(root, rows, ("image", "label", "mask", "patient", "extra")),
                                               root / "out"))
    assert len(records) == 11 and "1 rows" in caplog.text and "lines 6" in caplog.text


def test_without_patients_each_image_is_its_own_with_a_warning(images, caplog):
    root, rows = images
    with caplog.at_level(logging.WARNING):
        records = read_manifest(build_manifest(_table(root, [{k: r[k] for k in ("image", "label")} for r in rows],
                                                      ("image", "label")), root / "out"))
    assert len(records) == 12 and "own patient" in caplog.text


@pytest.mark.parametrize("change, message", [
    ({"label": "2"}, "label must be 0 or 1"),
    ({"label": "0", "mask": "scans/img1_mask.png"}, "a healthy image"),
    ({"image": ""}, "no image"),
])
def test_bad_rows_name_their_line(images, change, message):
    root, rows = images
    rows[1] = {**rows[1], **change}
    with pytest.raises(ManifestError, match=f"line 3: {message}"):
        build_manifest(_table(root, rows, ("image", "label", "mask", "patient", "extra")), root / "out")


def test_command_refuses_a_table_without_labels_in_one_line(tmp_path):
    path = _table(tmp_path, [{"image": "a.png"}], ("image",))
    result = CliRunner().invoke(cli, ["data", "table", "--csv", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "needs the columns image and label (missing: label)" in result.output
    assert CliRunner().invoke(cli, ["data", "table", "--csv", str(path), "--out", str(tmp_path / "o"),
                                    "--val", "0.6", "--test", "0.5"]).exit_code == 2
