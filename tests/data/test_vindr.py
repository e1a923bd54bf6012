"""The VinDr-Mammo reader, on a release layout and DICOMs the tests write."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.dicom import write_mammogram_dicom
from tfsal.data.image_io import read_image, read_mask
from tfsal.data.manifest import read_manifest
from tfsal.data.vindr import VindrError, box_mask, build_manifest

COLUMNS = ["study_id", "series_id", "image_id", "laterality", "view_position", "height", "width", "breast_birads",
           "breast_density", "finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax", "split"]
# study, image, categories, box, split
ROWS = [
    ("s1", "i1", "['Mass']", (4.5, 2.0, 10.0, 8.0), "training"),
    ("s1", "i1", "['Mass', 'Suspicious Calcification']", (20.0, 30.0, 24.0, 34.0), "training"),
    ("s1", "i2", "['No Finding']", None, "training"),
    ("s2", "i3", "['Suspicious Calcification']", (1.0, 1.0, 3.0, 3.0), "training"),
    ("s2", "i4", "['No Finding']", None, "training"),
    ("s3", "i5", "['Mass']", (-5.0, 40.0, 6.0, 60.0), "test"),  # a box over the image's edges
    ("s3", "i6", "['No Finding']", None, "test"),
    ("s4", "i7", "['No Finding']", None, "training"),
    ("s5", "i8", "['No Finding']", None, "training"),  # named, but its file is absent
]


def _release(root, rows):
    """A VinDr-Mammo release at ``root`` with ``rows`` (as :data:`ROWS`; ``i8``'s file is left out)."""
    rng = np.random.default_rng(0)
    with open(root.mkdir() or root / "finding_annotations.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for study, image, categories, box, split in rows:
            writer.writerow({"study_id": study, "series_id": "x", "image_id": image, "laterality": "L",
                             "view_position": "CC", "height": 48, "width": 32, "breast_birads": "BI-RADS 4",
                             "breast_density": "DENSITY C", "finding_categories": categories,
                             "finding_birads": "", "split": split,
                             **dict(zip(("xmin", "ymin", "xmax", "ymax"), box or ("", "", "", ""), strict=True))})
            path = root / "images" / study / f"{image}.dicom"
            if image != "i8" and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_mammogram_dicom(path, rng.integers(0, 4096, (48, 32)), uid_seed=image)
    return root


@pytest.fixture
def release(tmp_path):
    return _release(tmp_path / "vindr", ROWS)


def test_mass_boxes_become_masks_and_other_findings_are_left_out(release, tmp_path):
    records = {r.image.stem: r for r in read_manifest(build_manifest(release, tmp_path / "out"))}
    assert set(records) == {"i1", "i2", "i4", "i5", "i6", "i7"}  # i3 calcification only, i8 absent
    assert {k: r.label for k, r in records.items()} == {"i1": 1, "i2": 0, "i4": 0, "i5": 1, "i6": 0, "i7": 0}
    one = read_mask(records["i1"].mask)
    assert one.shape == (48, 32) and one[5, 6] and one[31, 21] and not one[20, 15]
    assert one.sum() == 6 * 6 + 4 * 4  # rows 2-7 x cols 4-9, and rows 30-33 x cols 20-23
    edge = read_mask(records["i5"].mask)
    assert edge[40:48, 0:6].all() and edge.sum() == 8 * 6  # clipped to the image
    assert records["i1"].extra["findings"] == "Mass|Suspicious Calcification"
    assert {r.split for k, r in records.items() if k in ("i5", "i6")} == {"test"}  # the official test split
    assert read_image(records["i1"].image)[0].shape == (48, 32, 1)


def test_other_findings_kept_as_healthy_when_asked(release, tmp_path):
    records = {r.image.stem: r for r in read_manifest(build_manifest(release, tmp_path / "out", include_other=True))}
    assert records["i3"].label == 0 and records["i3"].mask is None


def test_validation_is_drawn_by_study_from_training(release, tmp_path):
    for seed in range(4):
        records = read_manifest(build_manifest(release, tmp_path / f"o{seed}", val=0.4, seed=seed))
        by_study = {}
        for r in records:
            by_study.setdefault(r.image.parent.name, set()).add(r.split)
        assert all(len(s) == 1 for s in by_study.values())
        assert by_study["s3"] == {"test"} and {"val"} in by_study.values()


def test_box_mask_rounds_outwards():
    assert box_mask([[0.5, 0.5, 1.2, 2.0]], (4, 4)).sum() == 2 * 2


def test_bad_releases_are_refused(tmp_path, release):
    with pytest.raises(VindrError, match="cannot read"):
        build_manifest(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "finding_annotations.csv").write_text("study_id,image_id\ns,i\n")
    with pytest.raises(VindrError, match="missing columns"):
        build_manifest(tmp_path / "bad", tmp_path / "out")
    (tmp_path / "bad" / "finding_annotations.csv").write_text((release / "finding_annotations.csv").read_text())
    with pytest.raises(VindrError, match="none of the images"):
        build_manifest(tmp_path / "bad", tmp_path / "out")


def test_the_command(release, tmp_path):
    result = CliRunner().invoke(cli, ["data", "vindr", "--root", str(release), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert len(read_manifest(tmp_path / "out")) == 6


def test_a_manifest_that_train_all_accepts(tmp_path):
    """Twelve studies (ten in the official training split), each with a mass and a normal image."""
    from tfsal.recipes.train_all import check_trainable

    rows = [(f"s{s}", f"s{s}{image}", categories, box, "training" if s <= 10 else "test")
            for s in range(1, 13)
            for image, categories, box in (("a", "['Mass']", (4.0, 4.0, 12.0, 12.0)), ("b", "['No Finding']", None))]
    root = _release(tmp_path / "vindr", rows)
    _, table = check_trainable(build_manifest(root, tmp_path / "out", val=0.2))
    assert all(table[split]["mass"] and table[split]["healthy"] for split in ("train", "val", "test"))
