"""``causalkit data build`` and ``causalkit data show``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from causalkit.cli import app


@pytest.fixture
def run(monkeypatch, tmp_path):
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("CAUSALKIT_MNIST", raising=False)
    monkeypatch.delenv("CAUSALKIT_TEXTURES", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_build_writes_splits_and_report(run, tmp_path):
    out = tmp_path / "out"
    res = run("data", "build", "double-colored-mnist", "--rho", "0.9", "--seed", "1",
              "--source", "embedded", "--n", "300", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [s["split"] for s in report["splits"]] == ["train", "test", "ood"]
    assert report["source"] == "embedded" and "NOT the full MNIST" in res.stderr
    assert json.loads((out / "data_build.json").read_text())["seed"] == 1
    with np.load(out / "double-colored-mnist-train.npz") as data:
        assert data["images"].shape == (300, 3, 32, 32) and data["images"].dtype == np.uint8
        assert 0.75 < data["aligned"].mean() < 0.88  # both nuisances aligned: rho^2 = 0.81
    # the cache was filled: a second run reads it and writes the same bytes under --out
    digest = hashlib.sha256((out / "double-colored-mnist-ood.npz").read_bytes()).hexdigest()
    res = run("data", "build", "double-colored-mnist", "--rho", "0.9", "--seed", "1",
              "--source", "embedded", "--n", "300", "--out", str(out), "--json")
    assert all(s["cached"] for s in json.loads(res.stdout)["splits"])
    assert hashlib.sha256((out / "double-colored-mnist-ood.npz").read_bytes()).hexdigest() \
        == digest


def test_build_table_output(run):
    res = run("data", "build", "colored-mnist", "--source", "embedded", "--split", "ood",
              "--n", "100", "--no-cache")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].split()[:3] == ["split", "n", "aligned"]
    assert res.stdout.splitlines()[2].split()[:2] == ["ood", "100"]


def test_show_writes_a_png(run, tmp_path):
    res = run("data", "show", "wildlife-mnist", "--source", "embedded", "--per-class", "4",
              "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    png = tmp_path / "wildlife-mnist.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "wildlife-mnist_graph.png").read_bytes()[:4] == b"\x89PNG"
    assert "wildlife-mnist_graph.png" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["data", "build", "mnist-m"], "unknown dataset variant"),
    (["data", "build", "colored-mnist", "--source", "mnist:/no/such/dir"], "does not exist"),
    (["data", "build", "colored-mnist", "--rho", "2", "--source", "embedded"],
     "rho must be a probability"),
    (["data", "build", "wildlife-mnist", "--source", "embedded", "--textures", "/no/dir"],
     "texture folder"),
    (["data", "show", "colored-mnist", "--source", "bogus"], "unknown MNIST source"),
])
def test_user_errors_exit_2_without_traceback(run, args, message):
    res = run(*args)
    assert res.exit_code == 2
    assert message in res.stderr and "Traceback" not in res.output
