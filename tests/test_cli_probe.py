"""`causalkit probe-correlation`: report files, JSON, table and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from causalkit.cli import app

runner = CliRunner()

BASE = ["--generator", "scm:colored-mnist", "--mnist-source", "embedded", "--n-train", "256",
        "--epochs", "1", "--max-samples", "400", "--subsets", "2", "--no-progress",
        "--threads", "1"]
SMALL = [*BASE, "--categories", "2,5"]


@pytest.fixture(autouse=True)
def restore_threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def test_report_files_and_json(tmp_path):
    res = runner.invoke(app, ["probe-correlation", "--data", "colored-mnist:train",
                              "--data", "colored-mnist:ood", *SMALL, "--out", str(tmp_path),
                              "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [d["name"] for d in payload["datasets"]] == ["colored-mnist:train",
                                                       "colored-mnist:ood"]
    assert set(payload["datasets"][0]["ratios"]) == {"2", "5"}
    assert payload["regressor"]["z_names"] == ["fg_color.r", "fg_color.g", "fg_color.b"]
    on_disk = json.loads((tmp_path / "probe.json").read_text())
    assert on_disk["datasets"] == payload["datasets"]
    png = (tmp_path / "probe.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_saved_regressor_is_reused(tmp_path):
    reg = tmp_path / "reg.pt"
    args = ["probe-correlation", "--data", "colored-mnist:ood", *SMALL, "--regressor", str(reg),
            "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert reg.is_file()
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["regressor"]["r2"] == b["regressor"]["r2"]
    assert a["datasets"] == b["datasets"]  # same weights, same seeds: same numbers
    other = runner.invoke(app, ["probe-correlation", "--data", "colored-mnist:ood",
                                *SMALL[2:], "--generator", "scm:double-colored-mnist",
                                "--regressor", str(reg)])
    assert other.exit_code == 2 and "trained on" in other.stderr


def test_table_with_a_generator(tmp_path):
    res = runner.invoke(app, ["probe-correlation", "--data", "colored-mnist:ood",
                              "--generator", "tiny", "--strategy", "t=1,k=4,s=1,n=2",
                              "--mnist-source", "embedded", "--n-train", "128", "--epochs", "1",
                              "--max-samples", "200", "--subsets", "2", "--categories", "2",
                              "--no-progress", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "accuracy ÷ chance" in res.stdout and "colored-mnist:ood" in res.stdout
    assert "R² on held-out generated images" in res.stdout
    # 128 images of a random-weights GAN: the offsets cannot be learnt, and the table says so
    assert "warning: the nuisance regressor's held-out R²" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--data", "colored-mnist:ood", *BASE, "--categories", "2,x"], "categories"),
    (["--data", "colored-mnist:ood", *BASE, "--categories", "1"], ">= 2"),
    (["--data", "no-such-set", *SMALL], "cannot resolve dataset"),
    (["--data", "colored-mnist:val", *SMALL], "unknown split"),
    (["--data", "colored-mnist:ood", *BASE, "--categories", "12"], "fewer than N"),
    (["--data", "colored-mnist:ood", "--generator", "nope:1", "--strategy", "t=1,k=2,s=1"],
     "nope"),
    (["--data", "colored-mnist:ood", "--generator", "tiny"], "--strategy"),
    (["--data", "colored-mnist:ood", "--generator", "scm:purple-mnist"], "unknown dataset"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    res = runner.invoke(app, ["probe-correlation", *args])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and message in res.output
    assert "Traceback" not in res.output
