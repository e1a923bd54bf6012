from pathlib import Path

import pytest

from tfsal.data.manifest import Record, read_manifest, write_manifest
from tfsal.errors import ManifestError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_round_trip_keeps_paths_relative_and_fields(tmp_path):
    records = [
        Record(_touch(tmp_path / "images/a.png"), 1, _touch(tmp_path / "masks/a.png"), "train",
               _touch(tmp_path / "organ/a.png"), {"pathology": "MALIGNANT"}),
        Record(_touch(tmp_path / "images/b.png"), 0, None, "test", None, {"pathology": ""}),
    ]
    path = write_manifest(tmp_path / "labels.csv", records)
    text = path.read_text()
    assert text.splitlines()[0] == "image,label,mask,split,organ,pathology"
    assert "images/a.png,1,masks/a.png,train,organ/a.png,MALIGNANT" in text
    assert str(tmp_path) not in text
    back = read_manifest(tmp_path)
    assert back == records
    assert back[0].extra == {"pathology": "MALIGNANT"}


def test_split_filter(tmp_path):
    records = [Record(_touch(tmp_path / f"{s}.png"), 0, None, s) for s in ("train", "val", "test")]
    write_manifest(tmp_path / "labels.csv", records)
    assert [r.split for r in read_manifest(tmp_path, split="val")] == ["val"]
    assert [r.split for r in read_manifest(tmp_path, split=["train", "test"])] == ["train", "test"]
    with pytest.raises(ManifestError, match="unknown split"):
        read_manifest(tmp_path, split="validation")


@pytest.mark.parametrize(
    "content, message",
    [
        ("image,label,split\na.png,1,train\n", "missing column.*mask"),
        ("image,label,mask,split\na.png,2,,train\n", "line 2: label must be 0 or 1"),
        ("image,label,mask,split\na.png,1,,training\n", "line 2: split must be one of"),
        ("image,label,mask,split\nmissing.png,0,,train\n", "image file .*missing.png does not exist"),
        ("image,label,mask,split\n,0,,train\n", "empty image path"),
    ],
)
def test_bad_manifests_name_the_problem(tmp_path, content, message):
    _touch(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "labels.csv")


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path)


def test_check_files_can_be_disabled(tmp_path):
    (tmp_path / "labels.csv").write_text("image,label,mask,split\nmissing.png,0,,train\n")
    assert read_manifest(tmp_path, check_files=False)[0].image == tmp_path / "missing.png"


def test_merge_keeps_every_row_and_split_with_paths_from_the_new_place(tmp_path):
    from click.testing import CliRunner

    from tfsal.cli.main import cli
    from tfsal.data.synthetic_dataset import write_dataset

    write_dataset(tmp_path / "a", n_mass=3, n_healthy=3, size=(48, 48), seed=1, workers=1)
    write_dataset(tmp_path / "b" / "deeper", n_mass=2, n_healthy=2, size=(48, 48), seed=2, workers=1)
    second = tmp_path / "b" / "deeper" / "labels.csv"
    result = CliRunner().invoke(cli, ["data", "merge", str(tmp_path / "a"), str(second), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    merged = read_manifest(tmp_path / "m")
    parts = read_manifest(tmp_path / "a") + read_manifest(tmp_path / "b" / "deeper")

    def rows(records):
        return [(r.image.resolve(), r.label, r.split, r.mask and r.mask.resolve(), r.organ.resolve()) for r in records]

    assert rows(merged) == rows(parts) and len(merged) == 10
    assert (tmp_path / "m" / "labels.csv").read_text().splitlines()[1].startswith("../a/images/")
    twice = CliRunner().invoke(cli, ["data", "merge", str(tmp_path / "a"), str(tmp_path / "a"),
                                     "--out", str(tmp_path / "n")])
    assert twice.exit_code == 1 and "may appear once" in twice.output and "Traceback" not in twice.output
    one = CliRunner().invoke(cli, ["data", "merge", str(tmp_path / "a"), "--out", str(tmp_path / "o")])
    assert one.exit_code == 1 and "at least two" in one.output
