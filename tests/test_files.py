"""builder/files.py: a file is written whole or not at all, and a failed write leaves nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder import files


def test_written_whole_and_replacing(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    files.atomic_write_bytes(path, b"one")
    files.atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    files.atomic_write_bytes(path, b"old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        files.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
