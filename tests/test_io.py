"""Atomic writes: all or nothing, with ordinary permissions."""

from __future__ import annotations

import os

import pytest

from causalkit.io import atomic_write, atomic_write_text


def test_atomic_write_replaces_and_keeps_old_on_failure(tmp_path):
    path = tmp_path / "sub" / "report.json"
    atomic_write_text(path, "old")
    assert path.read_text() == "old"

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp left


def test_atomic_write_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
