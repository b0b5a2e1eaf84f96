"""`causalkit graph`: show, check, backdoor, identify, dsep, list -- exit codes, --json, bad
input."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from causalkit.cli import app
from causalkit.library import get_graph, list_graphs

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["graph", *args])


def test_list():
    res = run("list", "--json")
    assert res.exit_code == 0, res.output
    assert [e["name"] for e in json.loads(res.stdout)] == list_graphs()


def test_show_builtin_text_json_and_png(tmp_path):
    res = run("show", "genint")
    assert res.exit_code == 0, res.output
    assert "confounder  C (latent)" in res.stdout and "C -> Z" in res.stdout
    png = tmp_path / "g.png"
    res = run("show", "genint-partial", "--png", str(png), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["roles"]["nuisance"] == ["Z1", "Z2"]
    assert {"name": "C", "role": "confounder", "latent": True, "parents": []} in data["nodes"]
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200


def test_show_files(tmp_path):
    g = get_graph("genint")
    for name in ("g.json", "g.dagitty"):
        path = g.save(tmp_path / name)
        res = run("show", str(path), "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["edges"] == [list(e) for e in g.edges]


def test_check(tmp_path):
    res = run("check", "cgn-imagenet")
    assert res.exit_code == 0 and res.stdout.startswith("OK")
    good = get_graph("mediator").save(tmp_path / "m.dagitty")
    res = run("check", str(good), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"] is True
    cyc = tmp_path / "cyc.dagitty"
    cyc.write_text("dag { A -> B -> C -> A }")
    res = run("check", str(cyc))
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: the graph has a cycle")
    assert "Traceback" not in res.output and len(res.stderr.strip().splitlines()) == 1
    res = run("check", str(cyc), "--json")
    assert res.exit_code == 2
    report = json.loads(res.stdout)
    assert report["ok"] is False and "A -> B -> C -> A" in report["error"]


def test_backdoor():
    res = run("backdoor", "genint", "--x", "Z", "--y", "X")
    assert res.exit_code == 0, res.output
    assert "{}" in res.stdout and "P(X | do(Z)) = P(X | Z)" in res.stdout
    res = run("backdoor", "genint", "--x", "X", "--y", "Y", "--json")
    data = json.loads(res.stdout)
    assert data["minimal_sets"] == [["Z"]] and data["adjustment_set"] == ["Z"]
    assert data["formula"] == "P(Y | do(X)) = sum_{Z} P(Y | X, Z) P(Z)"
    res = run("backdoor", "frontdoor", "--x", "X", "--y", "Y", "--json")
    data = json.loads(res.stdout)
    assert res.exit_code == 0 and data["identifiable"] is False
    assert "X <- U -> Y" in data["reason"]
    res = run("backdoor", "genint-split", "--x", "X", "--y", "Y", "--exclude", "Z2", "--json")
    assert json.loads(res.stdout)["minimal_sets"] == []


def test_dsep():
    res = run("dsep", "genint", "--x", "Z", "--y", "Y")
    assert res.exit_code == 0 and "d-connected" in res.stdout
    res = run("dsep", "genint", "--x", "Z", "--y", "Y", "--given", "C,X", "--json")
    assert json.loads(res.stdout) == {"graph": "genint", "x": ["Z"], "y": ["Y"],
                                      "given": ["C", "X"], "d_separated": True}
    res = run("dsep", "m-bias", "--x", "A", "--y", "B", "--given", "M,X", "--json")
    assert json.loads(res.stdout)["d_separated"] is False


@pytest.mark.parametrize("args, match", [
    (("show", "no-such-graph"), "neither a graph file nor a built-in"),
    (("show", "missing.json"), "no such file"),
    (("dsep", "genint", "--x", "Z", "--y", "Q"), "unknown node 'Q'"),
    (("backdoor", "genint", "--x", "Zz", "--y", "X"), "did you mean 'Z'"),
    (("dsep", "genint", "--x", "Z", "--y", "Z"), "overlap"),
    (("identify", "genint", "--x", "Q", "--y", "Y"), "unknown node 'Q'"),
    (("identify", "genint", "--x", "C", "--y", "Y"), "latent node(s) C"),
])
def test_bad_input_one_line_exit_2(args, match):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert match in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_files_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": ["A"], "edges": [["A", "B"]]}))
    res = run("show", str(bad))
    assert res.exit_code == 2 and "undeclared node 'B'" in res.stderr
    loop = tmp_path / "loop.dagitty"
    loop.write_text("dag { A -> A }")
    res = run("backdoor", str(loop), "--x", "A", "--y", "A")
    assert res.exit_code == 2 and "self-loop" in res.stderr


def test_identify_text_latex_json():
    res = run("identify", "frontdoor", "--x", "X", "--y", "Y")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "frontdoor: identifiable (front-door)",
        "P(Y | do(X)) = sum_{M} P(M | X) [sum_{X'} P(Y | X', M) P(X')]"]
    res = run("identify", "frontdoor", "--x", "X", "--y", "Y", "--latex")
    assert r"\sum_{M} P(M \mid X)" in res.stdout
    data = json.loads(run("identify", "frontdoor", "--x", "X", "--y", "Y", "--json").stdout)
    assert data["method"] == "front-door" and data["front_door_set"] == ["M"]
    assert data["latex"].startswith(r"P(Y \mid do(X)) = ")
    res = run("identify", "genint", "--x", "X", "--y", "Y")
    assert res.exit_code == 0 and "identifiable (backdoor)" in res.stdout


def test_identify_not_identifiable_prints_hedge_and_bounds(tmp_path):
    bow = tmp_path / "bow.dagitty"
    bow.write_text("dag { Z -> X  X <-> Y  X -> Y }")
    res = run("identify", str(bow), "--x", "X", "--y", "Y")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "P(Y | do(X)) is not identifiable" in out
    assert "hedge F = {X, Y}, F' = {Y}" in out
    assert "natural: P(x, y) <= P(y | do(x))" in out and "do(z) for z in {Z}" in out
    assert "causalkit bound" in out
    data = json.loads(run("identify", str(bow), "--x", "X", "--y", "Y", "--json").stdout)
    assert data["identifiable"] is False and data["hedge"] == {"F": ["X", "Y"],
                                                               "F_prime": ["Y"]}


def test_backdoor_points_to_identify():
    res = run("backdoor", "frontdoor", "--x", "X", "--y", "Y")
    assert res.exit_code == 0
    assert "causalkit graph identify frontdoor --x X --y Y" in res.stdout


def test_empty_dagitty_refused(tmp_path):
    empty = tmp_path / "empty.dagitty"
    empty.write_text("")
    res = run("check", str(empty))
    assert res.exit_code == 2
    assert "line 1, column 1: the text holds no graph" in res.stderr
