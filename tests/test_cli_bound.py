"""`causalkit bound`: built-in SCMs, CSV data, interventional data, and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
from typer.testing import CliRunner

from causalkit.cli import app
from causalkit.library import get_scm

runner = CliRunner()


def write_csv(path, columns):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(columns))
        w.writerows(zip(*columns.values(), strict=True))
    return path


def test_scm_strategies_json():
    res = runner.invoke(app, ["bound", "--scm", "genint-example", "--strategy", "Z1",
                              "--strategy", "Z1,Z2", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    truth = report["truth"]
    model = get_scm("genint-example")
    assert truth == model.prob({"Y": 1}, do={"X": 1})
    for s in report["strategies"]:
        assert s["lower"] <= truth <= s["upper"]
        assert abs(s["width"] - (1 - s["p_x_do"])) < 1e-12
    assert report["intersection"]["width"] <= min(s["width"] for s in report["strategies"])
    ps = [r["p_x_do"] for r in report["ranking"]]
    assert ps == sorted(ps, reverse=True)


def test_scm_table_output_and_report(tmp_path):
    res = runner.invoke(app, ["bound", "--scm", "genint-example", "--strategy", "Z1",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "Theorem 1 ranking" in res.stdout and "intersection" in res.stdout
    assert json.loads((tmp_path / "bound.json").read_text())["scm"] == "genint-example"


def test_data_and_interventional(tmp_path):
    model = get_scm("genint-example")
    scm = model.to_scm()
    obs = scm.sample(20_000, seed=0)
    inter = scm.do({"Z1": lambda n, rng: rng.integers(0, model.cardinality["Z1"], n)})
    ints = inter.sample(20_000, seed=1)
    write_csv(tmp_path / "obs.csv", {"X": obs["X"], "Y": obs["Y"]})
    write_csv(tmp_path / "do.csv", {"X": ints["X"], "Y": ints["Y"], "Z1": ints["Z1"]})
    res = runner.invoke(app, ["bound", "--data", str(tmp_path / "obs.csv"), "--x", "1",
                              "--y", "1", "--interventional", str(tmp_path / "do.csv"),
                              "--nuisance", "Z1", "--json"])
    assert res.exit_code == 0, res.output
    (entry,) = json.loads(res.stdout)["results"]
    truth = model.prob({"Y": 1}, do={"X": 1})
    assert entry["natural"]["ci_lower"] <= truth <= entry["natural"]["ci_upper"]
    for e in entry["interventional"]:
        assert e["ci_lower"] <= truth <= e["ci_upper"], e
    assert entry["intersection"]["upper"] - entry["intersection"]["lower"] \
        < entry["natural"]["upper"] - entry["natural"]["lower"]


def test_counts_table(tmp_path):
    path = write_csv(tmp_path / "c.csv", {"X": [0, 0, 1, 1], "Y": [0, 1, 0, 1],
                                          "count": [10, 20, 30, 40]})
    res = runner.invoke(app, ["bound", "--data", str(path), "--x", "1", "--y", "1", "--json"])
    assert res.exit_code == 0, res.output
    nat = json.loads(res.stdout)["results"][0]["natural"]
    assert np.isclose(nat["lower"], 0.4) and np.isclose(nat["upper"], 0.7)


def test_bad_input_one_line_exit_2(tmp_path):
    probs = write_csv(tmp_path / "p.csv", {"X": [0, 1], "Y": [1, 1], "p": [1.5, -0.5]})
    nocol = write_csv(tmp_path / "n.csv", {"A": [0, 1], "Y": [1, 1]})
    cases = [
        (["bound", "--data", str(probs)], "probabilit"),
        (["bound", "--data", str(nocol)], "missing column"),
        (["bound", "--data", str(tmp_path / "absent.csv")], "does not exist"),
        (["bound", "--scm", "genint-example", "--strategy", "Q9"], "unknown node"),
        (["bound", "--scm", "nope"], "nope"),
        (["bound", "--scm", "genint-example", "--strategy", "t=1,k=60,s=1"], "generator"),
        (["bound", "--scm", "genint-example", "--strategy", "t=3,k=60,s=1"], "truncation"),
        (["bound", "--data", str(nocol), "--nuisance", "Z"], "interventional"),
    ]
    for args, match in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert match in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.output and len(res.stderr.strip().splitlines()) == 1
