import os
import stat

import pytest

from assistant.core.errors import ArtifactError
from assistant.core.files import (
    atomic_write_text,
    file_sha256,
    publish_directory,
    read_json,
    staging_directory,
    write_json,
)


def test_atomic_write_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "CURRENT"
    atomic_write_text(target, "v1\n")
    atomic_write_text(target, "v2\n")
    assert target.read_text() == "v2\n"
    assert [p.name for p in target.parent.iterdir()] == ["CURRENT"]


def test_a_write_is_durable_content_first_then_the_directory_entry(tmp_path, monkeypatch):
    synced = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(handle: int) -> None:
        synced.append("directory" if stat.S_ISDIR(os.fstat(handle).st_mode) else "file")
        real_fsync(handle)

    def replace(source, target) -> None:
        synced.append("replace")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_json(tmp_path / "LIVE.json", {"release": "r1"})
    assert synced == ["file", "replace", "directory"]
    assert read_json(tmp_path / "LIVE.json", "") == {"release": "r1"}


def test_a_published_folder_reaches_the_disk_before_it_is_renamed_in(tmp_path, monkeypatch):
    staging = staging_directory(tmp_path / "v1")
    (staging / "weights").mkdir()
    (staging / "weights" / "model.bin").write_bytes(b"w")
    (staging / "meta.json").write_text("{}")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(handle: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{handle}")))
        real_fsync(handle)

    def replace(source, target) -> None:
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    publish_directory(staging, tmp_path / "v1")
    renamed = events.index(("replace", str(tmp_path / "v1")))
    flushed_before = {path for kind, path in events[:renamed] if kind == "fsync"}
    for name in ("weights/model.bin", "meta.json", "weights", ""):
        assert str((staging / name) if name else staging) in flushed_before, name
    assert events[renamed + 1 :] == [("fsync", str(tmp_path))]


def test_failed_write_keeps_the_old_content(tmp_path):
    target = tmp_path / "meta.json"
    write_json(target, {"rows": 3})
    with pytest.raises(TypeError):
        write_json(target, {"rows": object()})
    assert read_json(target, "rebuild") == {"rows": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_read_json_explains_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ArtifactError, match=r"missing\. Run it again"):
        read_json(tmp_path / "nope.json", "Run it again.")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(ArtifactError, match="corrupt"):
        read_json(tmp_path / "bad.json", "")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="not a JSON object"):
        read_json(tmp_path / "list.json", "")


def test_publish_replaces_a_folder_and_clears_killed_builds(tmp_path):
    final = tmp_path / "qa"
    killed = staging_directory(final)  # a build that died before publishing
    (killed / "half.faiss").write_bytes(b"\x00" * 10)
    first = staging_directory(final)
    (first / "index.faiss").write_text("one")
    publish_directory(first, final)
    second = staging_directory(final)
    (second / "index.faiss").write_text("two")
    publish_directory(second, final)
    assert (final / "index.faiss").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["qa"]


def test_sha256_of_a_file(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
