"""``causalkit generate``: layout, labels.csv, offsets, and resuming after a crash."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import generators.writer as writer
from causalkit.cli import app

ARGS = ["generate", "--generator", "tiny:0", "--strategy", "t=0.8,k=6,s=1,n=3",
        "--per-class", "5", "--classes", "0,3,9", "--shard-size", "4", "--batch-size", "3",
        "--seed", "7"]



def _run(out, *extra, expect=0):
    result = CliRunner().invoke(app, ARGS + ["--out", str(out), "--json", *extra])
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout) if expect == 0 else result


def _snapshot(out):
    """Every file's bytes (relative path -> bytes), ignoring nothing."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "gen"
    result = _run(out)
    return out, result, _snapshot(out)


def test_layout_labels_and_offsets(reference):
    out, result, files = reference
    assert result["images"] == 15 and result["shards"] == 4
    assert result["generated_images"] == 15 and result["skipped_shards"] == 0
    pngs = sorted(f for f in files if f.endswith(".png"))
    assert pngs[:2] == ["0/000000.png", "0/000001.png"] and pngs[-1] == "9/000004.png"
    assert len(pngs) == 15
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert [r["file"] for r in rows] == pngs
    assert [int(r["label"]) for r in rows] == [0] * 5 + [3] * 5 + [9] * 5
    offsets = np.array([[float(r[f"offset_{j}"]) for j in range(6)] for r in rows])
    assert np.all((offsets != 0).sum(axis=1) == 3)  # n=3 directions per image
    with np.load(out / "latents.npz") as lat:
        np.testing.assert_allclose(lat["offsets"], offsets, rtol=1e-5, atol=1e-6)
        assert lat["z"].shape == lat["z_star"].shape == (15, 8)
        assert list(lat["files"]) == pngs
    from PIL import Image

    img = Image.open(out / pngs[0])
    assert img.size == (32, 32) and img.mode == "RGB"
    manifest = json.loads((out / "generation.json").read_text())
    assert manifest["strategy"] == "t=0.8,k=6,s=1" and manifest["seed"] == 7
    assert (out / "directions.npz").exists()


def test_resume_after_a_crash_gives_identical_output(reference, tmp_path, monkeypatch):
    _, _, expected = reference
    out = tmp_path / "gen"
    real_save, calls = writer._save_png, {"n": 0}

    def crashing_save(path, array):
        calls["n"] += 1
        if calls["n"] == 7:  # mid-way through the second shard
            raise RuntimeError("simulated kill")
        return real_save(path, array)

    monkeypatch.setattr(writer, "_save_png", crashing_save)
    crashed = CliRunner().invoke(app, ARGS + ["--out", str(out), "--json"])
    assert isinstance(crashed.exception, RuntimeError) and crashed.exit_code != 0
    assert sorted(p.name for p in (out / ".shards").iterdir()) == ["shard-000000.npz"]
    assert not (out / "labels.csv").exists()
    monkeypatch.setattr(writer, "_save_png", real_save)
    result = _run(out)
    assert result["skipped_shards"] == 1 and result["generated_images"] == 11
    assert _snapshot(out) == expected


def test_damaged_outputs_are_regenerated(reference, tmp_path):
    import shutil

    src, _, expected = reference
    out = tmp_path / "gen"
    shutil.copytree(src, out)
    (out / ".shards" / "shard-000002.npz").unlink()  # a shard killed before its record
    victim = out / "0" / "000001.png"  # a torn file in a finished shard
    victim.write_bytes(victim.read_bytes()[:20])
    (out / "3" / ".000002.png.abc.tmp").write_bytes(b"partial")  # a temp file left by kill
    (out / "9" / "000004.png").unlink()
    result = _run(out)
    assert result["skipped_shards"] == 1  # shards 0, 2 and 3 were redone
    assert _snapshot(out) == expected


def test_complete_run_is_skipped_and_settings_are_checked(reference, tmp_path):
    import shutil

    src, _, expected = reference
    out = tmp_path / "gen"
    shutil.copytree(src, out)
    result = _run(out)
    assert result["skipped_shards"] == 4 and result["generated_images"] == 0
    assert _snapshot(out) == expected
    bad = CliRunner().invoke(app, ARGS[:4] + ["t=0.8,k=6,s=2,n=3"] + ARGS[5:]
                             + ["--out", str(out)])
    assert bad.exit_code == 2
    assert "other settings (differs in ['strategy', 'strategy_fields'])" in bad.output
    # per_sample is not in the strategy's short form, but it is checked too.
    bad = CliRunner().invoke(app, ARGS[:4] + ["t=0.8,k=6,s=1,n=2"] + ARGS[5:]
                             + ["--out", str(out)])
    assert bad.exit_code == 2
    assert "other settings (differs in ['strategy_fields'])" in bad.output


def test_observational_and_bad_specs(tmp_path):
    out = tmp_path / "obs"
    res = CliRunner().invoke(app, ["generate", "-g", "tiny:1", "-s", "observational:t=0.2",
                                   "-n", "2", "--classes", "4", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert (out / "labels.csv").read_text().splitlines() == [
        "file,label", "4/000000.png,4", "4/000001.png,4"]
    assert not (out / "directions.npz").exists()
    for args, message in [
        (["-g", "nope:1"], "unknown generator 'nope:1'"),
        (["-g", "tiny", "--classes", "0,x"], "--classes must be comma-separated"),
        (["-g", "tiny", "--classes", "10"], "outside [0, 9]"),
        (["-g", "tiny", "-s", "t=2"], "0 < t <= 1"),
        (["-g", "tiny", "-s", "t=1,k=60"], "only 8 are stored"),
        (["-g", "tiny", "--directions", str(tmp_path / "none.npz")], "no such file"),
    ]:
        res = CliRunner().invoke(app, ["generate", "-n", "1", "--out", str(tmp_path / "x"),
                                       *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
