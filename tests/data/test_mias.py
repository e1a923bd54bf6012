"""The mini-MIAS reader, on films and an Info.txt the tests write, and on mias-dev when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.image_io import read_image, read_mask
from tfsal.data.manifest import read_manifest
from tfsal.data.mias import MiasError, build_manifest, read_info
from tfsal.data.splits import assign_splits

MIAS_DEV = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "mias-dev"

INFO = """MIAS header text that is not a row
mdb001 G CIRC B 20 10 4
mdb002 G NORM
mdb003 F SPIC M 10 50 3
mdb003 F MISC B 50 50 5
mdb004 F CALC B 30 30 6
mdb005 D CALC M
mdb006 D NORM
mdb007 G ASYM M
mdb008 G NORM
mdb009 F NORM
"""


def _pgm(path: Path, seed: int, size: int = 64) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    path.write_bytes(b"P5\n# written by a test\n%d %d\n255\n" % (size, size) + pixels.tobytes())


@pytest.fixture
def films(tmp_path):
    root = tmp_path / "mias"
    root.mkdir()
    (root / "Info.txt").write_text(INFO)
    for number in range(1, 9):  # mdb009 is named in Info.txt but absent
        _pgm(root / f"mdb{number:03d}.pgm", number)
    return root


def test_lesions_become_circles_with_the_origin_at_the_bottom_left(films, tmp_path):
    records = {r.image.name: r for r in read_manifest(build_manifest(films, tmp_path / "out"))}
    assert set(records) == {f"mdb{n:03d}.pgm" for n in (1, 2, 3, 6, 7, 8)}  # calcs only and absent left out
    assert {n: r.label for n, r in records.items()} == {"mdb001.pgm": 1, "mdb002.pgm": 0, "mdb003.pgm": 1,
                                                        "mdb006.pgm": 0, "mdb007.pgm": 1, "mdb008.pgm": 0}
    one = read_mask(records["mdb001.pgm"].mask)
    assert one[63 - 10, 20] and not one[10, 20]  # x 20, y 10 from the bottom: row 53
    assert one.sum() == sum((r - 53) ** 2 + (c - 20) ** 2 <= 16 for r in range(64) for c in range(64))
    both = read_mask(records["mdb003.pgm"].mask)  # two lesions on one film: the union of both circles
    assert both[13, 10] and both[13, 50] and not both[13, 30]
    assert records["mdb007.pgm"].mask is None  # a lesion without coordinates: positive, no mask
    assert records["mdb003.pgm"].extra["abnormality"] == "MISC|SPIC"
    assert records["mdb003.pgm"].extra["severity"] == "B|M"
    assert read_image(records["mdb001.pgm"].image)[0].shape == (64, 64, 1)


def test_calcification_films_are_kept_as_healthy_when_asked(films, tmp_path):
    records = {r.image.name: r for r in read_manifest(build_manifest(films, tmp_path / "out", include_calc=True))}
    assert records["mdb004.pgm"].label == 0 and records["mdb004.pgm"].mask is None
    assert records["mdb005.pgm"].label == 0


def test_a_womans_two_films_share_a_split(films, tmp_path):
    for seed in range(5):
        records = read_manifest(build_manifest(films, tmp_path / f"out{seed}", val=0.3, test=0.3, seed=seed))
        by_woman = {}
        for r in records:
            by_woman.setdefault(r.extra["patient"], set()).add(r.split)
        assert all(len(splits) == 1 for splits in by_woman.values())
        assert {r.extra["patient"] for r in records if r.image.name in ("mdb001.pgm", "mdb002.pgm")} == {"mias001"}


def test_assign_splits_is_by_patient_seeded_and_checked():
    patients = [f"p{i // 2}" for i in range(40)]
    splits = assign_splits(patients, val=0.1, test=0.2, seed=1)
    assert set(splits) == set(patients)
    assert sorted(splits.values()).count("test") == 4 and sorted(splits.values()).count("val") == 2
    assert splits == assign_splits(reversed(patients), val=0.1, test=0.2, seed=1)  # order does not matter
    assert splits != assign_splits(patients, val=0.1, test=0.2, seed=2)
    assert set(assign_splits(["a", "b"], val=0.1, test=0.1).values()) == {"train", "test"}  # train keeps one
    with pytest.raises(ValueError):
        assign_splits(patients, val=0.5, test=0.5)


def test_a_folder_without_films_or_rows_is_refused(tmp_path):
    with pytest.raises(MiasError, match=r"Info\.txt"):
        build_manifest(tmp_path, tmp_path / "out")
    (tmp_path / "Info.txt").write_text("no rows here\n")
    with pytest.raises(MiasError, match="no film rows"):
        read_info(tmp_path / "Info.txt")
    (tmp_path / "Info.txt").write_text(INFO)
    with pytest.raises(MiasError, match="none of the films"):
        build_manifest(tmp_path, tmp_path / "out")


def test_the_command(films, tmp_path):
    result = CliRunner().invoke(cli, ["data", "mias", "--root", str(films), "--out", str(tmp_path / "out"),
                                      "--val", "0.2", "--test", "0.2"])
    assert result.exit_code == 0, result.output
    assert len(read_manifest(tmp_path / "out")) == 6
    bad = CliRunner().invoke(cli, ["data", "mias", "--root", str(films), "--out", str(tmp_path / "o2"),
                                   "--val", "0.6", "--test", "0.5"])
    assert bad.exit_code == 2 and "under 1" in bad.output


@pytest.mark.skipif(not MIAS_DEV.is_dir(), reason="../shared/realdata/mias-dev is not here")
def test_every_mias_dev_lesion_mask_holds_its_annotated_centre(tmp_path):
    films = read_info(MIAS_DEV / "Info.txt")
    records = {r.image.stem: r for r in read_manifest(build_manifest(MIAS_DEV, tmp_path / "mias"))}
    checked = 0
    for reference, film in films.items():
        for lesion in film.lesions:
            if lesion.kind == "CALC" or lesion.centre is None:
                continue
            mask = read_mask(records[reference].mask)
            x, y = lesion.centre
            assert mask[mask.shape[0] - 1 - y, x], reference
            checked += 1
    assert checked > 30
    assert sum(r.label for r in records.values()) == sum(
        any(lesion.kind != "CALC" for lesion in f.lesions) for f in films.values())


def test_a_folder_of_films_is_expanded_to_them(films):
    from tfsal.outputs.inputs import expand_inputs

    assert sorted(p.name for p in expand_inputs([films])) == [f"mdb{n:03d}.pgm" for n in range(1, 9)]


def test_a_manifest_that_train_all_accepts(tmp_path):
    """Ten women, each with a lesion film and a normal one: every split has both classes."""
    from tfsal.recipes.train_all import check_trainable

    root = tmp_path / "mias"
    root.mkdir()
    rows = []
    for number in range(1, 21):
        rows.append(f"mdb{number:03d} G CIRC B 30 30 5" if number % 2 else f"mdb{number:03d} G NORM")
        _pgm(root / f"mdb{number:03d}.pgm", number)
    (root / "Info.txt").write_text("header\n" + "\n".join(rows) + "\n")
    _, table = check_trainable(build_manifest(root, tmp_path / "out", val=0.2, test=0.2))
    assert all(table[split]["mass"] and table[split]["healthy"] for split in ("train", "val", "test"))
    assert table["train"]["mass_masks"] == table["train"]["mass"]
