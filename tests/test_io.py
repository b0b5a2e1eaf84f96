"""Atomic writes, and the one reader of torch and JSON files and the one output check:
one typed, one-line error for every bad file."""

from __future__ import annotations

import os

import pytest

from causalkit.errors import DataError
from causalkit.io import (
    atomic_write,
    atomic_write_text,
    check_out_dir,
    load_torch,
    read_json,
    read_text,
    save_torch,
)


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


def test_load_torch_names_each_kind_of_bad_file(tmp_path):
    import io

    import numpy as np
    import torch

    good = save_torch(tmp_path / "good.pt", {"w": torch.arange(1000)})
    data = good.read_bytes()
    assert torch.equal(load_torch(good)["w"], torch.arange(1000))
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    numpy_buf = io.BytesIO()
    torch.save({"a": np.zeros(3)}, numpy_buf)
    cases = {
        "text": (b"just some text\n", "is not a torch file"),
        "garbage": (bytes(range(256)) * 8, "is not a torch file"),
        "empty": (b"", "is empty"),
        "half": (data[: len(data) // 2], "is truncated or corrupt"),
        "head": (data[:30], "is truncated or corrupt"),
        "module": (buf.getvalue(), "not a plain state dict (it holds a "
                                   "torch.nn.modules.linear.Linear); causalkit refuses to "
                                   "unpickle it"),
        "numpy": (numpy_buf.getvalue(), "causalkit refuses to unpickle it"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(content)
        with pytest.raises(DataError) as info:
            load_torch(path, what="weights file")
        text = str(info.value)
        assert message in text and text.startswith(f"weights file {path} "), text
        assert "\n" not in text and len(text) < 300, text
    with pytest.raises(DataError, match="no such file"):
        load_torch(tmp_path / "nope.pt")
    with pytest.raises(DataError, match="is a folder, not a file"):
        load_torch(tmp_path)
    with pytest.raises(DataError, match="start over"):
        load_torch(tmp_path / "text.pt", fix="start over")


def test_read_json_and_read_text(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"model": "cnn", "heads": ["shape"]}')
    assert read_json(path, keys=("model", "heads"))["model"] == "cnn"
    for content, message in ((b"\xff\xfe\x00binary", "is not text"),
                             (b'{"model": ', "is not valid JSON (line 1, column 11"),
                             (b"[1, 2]", "holds a list, not a JSON object"),
                             (b'{"model": "cnn"}', "lacks 'heads'; retrain")):
        path.write_bytes(content)
        with pytest.raises(DataError, match=message.replace("(", r"\(")):
            read_json(path, what="model description", keys=("model", "heads"),
                      fix="retrain")
    path.write_bytes(b"caf\xc3\xa9\n")
    assert read_text(path) == "caf\u00e9\n"


def test_check_out_dir_refuses_files_and_unwritable_folders_and_creates_nothing(tmp_path):
    afile = tmp_path / "report.json"
    afile.write_text("{}")
    assert check_out_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_out_dir(tmp_path) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with pytest.raises(DataError, match="is an existing file, not a folder"):
        check_out_dir(afile)
    with pytest.raises(DataError, match="lies under .* which is an existing file"):
        check_out_dir(afile / "sub")
    with pytest.raises(DataError, match="--regressor /proc/x: folder /proc is not writable"):
        check_out_dir("/proc/x", option="--regressor")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(DataError, match="is not writable"):
            check_out_dir(locked / "out")


def test_resolve_device_refuses_what_the_machine_lacks():
    import torch

    from causalkit.devices import resolve_device
    from causalkit.errors import CausalKitError

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(CausalKitError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(CausalKitError, match="CUDA is not available"):
            resolve_device("cuda", option="--device")
    else:
        with pytest.raises(CausalKitError, match="pick one of them"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_a_damaged_cache_record_is_one_line(tmp_path):
    from generators.cache import cached_file

    dest = tmp_path / "weights.bin"
    dest.write_bytes(b"x" * 10)
    (tmp_path / "weights.bin.sha256").write_bytes(b"\xff\xfe junk")
    with pytest.raises(DataError, match="cache record .* is damaged; delete it"):
        cached_file("file:///nowhere", dest, offline=True)
    (tmp_path / "weights.bin.sha256").write_text("abc  ten\n")
    with pytest.raises(DataError, match="is damaged"):
        cached_file("file:///nowhere", dest, offline=True)
