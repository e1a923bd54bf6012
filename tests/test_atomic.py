import os

import pytest

from tfsal.util import atomic


def test_write_text_creates_file_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic.write_text(target, "{}")
    assert target.read_text() == "{}"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_temporary_keeps_suffix_for_format_sniffing_writers(tmp_path):
    with atomic.atomic_path(tmp_path / "mask.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")


def test_the_file_and_its_folder_entry_reach_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    import os

    from tfsal.util import atomic

    synced, real = [], os.fsync

    def fsync(fd):
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), os.path.exists(tmp_path / "a.txt")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic.write_text(tmp_path / "a.txt", "hello")
    (data, renamed_before), (folder, renamed_after) = synced
    assert data.startswith(str(tmp_path / ".a.")) and not renamed_before  # the data, under its temporary name
    assert folder == str(tmp_path) and renamed_after  # then the folder, once the new name is in it
