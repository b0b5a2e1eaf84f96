"""`causalkit evaluate` survives kill -9: per-unit partials, keyed, and a report in bytes.

The fixture is ImageNet-C in its released layout, drawn for the code classifier of
``_benchmark_helpers`` (one image class, some images in a wrong code), so each unit's
score is known and the run is cut into many small units (``--shard-images``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch
from _benchmark_helpers import CodeClassifier, code_image, save
from _process_helpers import kill_when
from typer.testing import CliRunner

from analysis.benchmarks import corruptions, imagenet_c, run_benchmark, shape_bias
from analysis.benchmarks.imagenet_ids import WNIDS
from analysis.benchmarks.partials import FOLDER, PartialStore, model_digest
from analysis.benchmarks.units import evaluate_in_units
from causalkit.cli import app

FAST = dict(batch_size=2, progress=False)
runner = CliRunner()


def _released(root: Path, names, severities=range(1, 6), images: int = 3,
              size: int = 32) -> Path:
    for name in names:
        for severity in severities:
            for j in range(images):
                code = 3 if severity + j < 5 else 4                  # wrong from here on
                save(root / name / str(severity) / WNIDS[3] / f"{j}.png",
                     code_image(code, size=size))
    return root


def _script(path: Path, where: str = "centre") -> Path:
    torch.jit.save(torch.jit.script(CodeClassifier(where)), str(path))
    return path


def _evaluate(model: Path, root: Path, out: Path, *extra: str):
    result = runner.invoke(app, ["evaluate", "--benchmark", "imagenet-c", "--root", str(root),
                                 "--model", str(model), "--workers", "0", "--batch-size",
                                 "2", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result


def _reused(result) -> int:
    line = next(x for x in result.stderr.splitlines() if x.startswith("imagenet-c: "))
    return int(line.split(", ")[1].split()[0])


def _partials(out: Path) -> list[Path]:
    folder = out / FOLDER / "imagenet-c"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


# ------------------------------------------------------ units give the evaluators' result
def test_units_assemble_what_the_evaluators_give(tmp_path):
    torch.manual_seed(0)
    released = _released(tmp_path / "c", corruptions.BENCHMARK)
    whole = imagenet_c.evaluate(CodeClassifier(), released, clean_error=0.25, **FAST)
    parts, info = evaluate_in_units("imagenet-c", CodeClassifier(), released, clean_error=0.25,
                                    shard_images=2, **FAST)
    assert parts.to_dict() == whole.to_dict() and "mce" in parts.metrics["logits"]
    assert info["units"] == 15 * 5 * 2 and info["computed"] == info["units"]

    fly = tmp_path / "fly"                         # on the fly: seeded noise and a clean pass
    for j in range(5):
        save(fly / WNIDS[3] / f"{j}.png", code_image(3, size=64))
        save(fly / WNIDS[9] / f"{j}.png", code_image(9, 3, size=64))
    kw = dict(source="folder", corruptions=["gaussian_noise", "contrast"], severities=(1, 5),
              seed=1, **FAST)
    whole = imagenet_c.evaluate(CodeClassifier(), fly, **kw)
    parts, info = evaluate_in_units("imagenet-c", CodeClassifier(), fly, shard_images=3, **kw)
    assert parts.to_dict() == whole.to_dict()
    assert info["units"] == (2 * 2 + 1) * 4                 # 10 images in shards 3, 3, 3, 1
    assert 0 < whole.metrics["logits"]["error/gaussian_noise"] < 1   # the noise moves codes

    cue = tmp_path / "cue"                              # any other benchmark: one unit
    save(cue / "cat" / "cat1-dog1.png", code_image(281, size=32))
    save(cue / "cat" / "cat2-car1.png", code_image(436, size=32))
    parts, info = evaluate_in_units("shape-bias", CodeClassifier(), cue, **FAST)
    assert parts.to_dict() == run_benchmark("shape-bias", CodeClassifier(), cue,
                                            **FAST).to_dict()
    assert parts.to_dict() == shape_bias.evaluate(CodeClassifier(), cue, **FAST).to_dict()
    assert info["units"] == 1


def test_model_digest_sees_weights_attributes_and_files(tmp_path):
    net = torch.nn.Linear(3, 2)
    digest = model_digest(net)
    assert model_digest(net) == digest
    with torch.no_grad():
        net.bias[0] += 1e-6
    assert model_digest(net) != digest
    assert model_digest(CodeClassifier()) != model_digest(CodeClassifier("corner"))
    a, b = _script(tmp_path / "a.ts"), _script(tmp_path / "b.ts", "corner")
    loaded = torch.jit.load(str(a))
    assert model_digest(loaded, files=[a]) != model_digest(loaded, files=[b])


# ------------------------------------------------------------------ kill -9, then rerun
def test_killed_evaluate_resumes_to_identical_bytes(tmp_path):
    """SIGKILL `causalkit evaluate` at a random unit of an ImageNet-C run, rerun the same
    command: its evaluate.json is byte for byte an uninterrupted run's, and so are two
    uninterrupted runs' reports."""
    root = _released(tmp_path / "c", corruptions.BENCHMARK, images=2, size=64)  # 150 units
    model = _script(tmp_path / "code.ts")
    argv = ["evaluate", "--benchmark", "imagenet-c", "--root", str(root), "--model",
            str(model), "--workers", "0", "--batch-size", "2", "--shard-images", "1"]
    killed = tmp_path / "killed"
    kill_at = random.Random(os.getpid()).randrange(5, 120)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    kill_when([*argv, "--out", str(killed)], lambda: len(_partials(killed)) >= kill_at,
              env=env, poll=0.002)
    assert not (killed / "evaluate.json").exists()
    done = len(_partials(killed))
    assert kill_at <= done < 150
    # what a kill inside an atomic write leaves: a temporary file, never read
    (killed / FOLDER / "imagenet-c" / ".x.json.abc.tmp").write_text('{"key": {"form')

    resumed = _evaluate(model, root, killed, "--shard-images", "1")
    assert _reused(resumed) == done
    assert f"150 unit(s), {done} reused" in resumed.stderr
    timing = json.loads((killed / "timing.json").read_text())["benchmarks"]["imagenet-c"]
    assert (timing["reused"], timing["computed"]) == (done, 150 - done)
    for i in (1, 2):
        _evaluate(model, root, tmp_path / f"fresh{i}", "--shard-images", "1")
    report = (killed / "evaluate.json").read_bytes()
    assert report == (tmp_path / "fresh1" / "evaluate.json").read_bytes()
    assert report == (tmp_path / "fresh2" / "evaluate.json").read_bytes()
    values = json.loads(report)["results"]["imagenet-c"]["metrics"]["logits"]
    assert values["error/gaussian_noise"] == pytest.approx(0.3)          # 0, 0, 0, 1/2, 1
    assert b"seconds" not in report and b"images_per_s" not in report
    again = _evaluate(model, root, killed, "--shard-images", "1")     # all reused, same bytes
    assert _reused(again) == 150 and (killed / "evaluate.json").read_bytes() == report


# ---------------------------------------------- other model, settings or data: not reused
def test_partials_of_another_key_are_never_used(tmp_path):
    root = _released(tmp_path / "c", ["gaussian_noise", "contrast"], severities=(1, 2))
    centre, corner = _script(tmp_path / "centre.ts"), _script(tmp_path / "corner.ts", "corner")
    sev = ["--severity", "1", "--severity", "2", "--shard-images", "2"]   # 4 x 2 = 8 units
    out = tmp_path / "out"
    assert _reused(_evaluate(centre, root, out, *sev)) == 0
    assert _reused(_evaluate(centre, root, out, *sev)) == 8

    # another model into the same folder: nothing reused, the report a fresh folder gives
    assert _reused(_evaluate(corner, root, out, *sev)) == 0
    _evaluate(corner, root, tmp_path / "fresh-corner", *sev)
    assert (out / "evaluate.json").read_bytes() == (
        tmp_path / "fresh-corner" / "evaluate.json").read_bytes()
    # another setting (batch size, corrupt-file rule, precision): nothing reused
    assert _reused(_evaluate(centre, root, out, *sev, "--batch-size", "3")) == 0
    assert _reused(_evaluate(centre, root, out, *sev, "--skip-corrupt")) == 0
    assert _reused(_evaluate(centre, root, out, *sev, "--amp")) == 0
    # a subset of the severities reuses exactly those units
    assert _reused(_evaluate(centre, root, out, "--severity", "2", "--shard-images", "2")) == 4

    # changed data: one more image in contrast/2 makes its two units stale, only them
    save(root / "contrast" / "2" / WNIDS[3] / "9.png", code_image(4, size=32))
    changed = _evaluate(centre, root, out, *sev)
    assert "8 unit(s), 6 reused" in changed.stderr
    _evaluate(centre, root, tmp_path / "fresh-changed", *sev)
    assert (out / "evaluate.json").read_bytes() == (
        tmp_path / "fresh-changed" / "evaluate.json").read_bytes()


def test_damaged_or_foreign_partial_under_the_right_name_is_recomputed(tmp_path):
    root = _released(tmp_path / "c", ["gaussian_noise"], severities=(1,))
    centre, corner = _script(tmp_path / "centre.ts"), _script(tmp_path / "corner.ts", "corner")
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    _evaluate(corner, root, out, "--severity", "1")
    _evaluate(centre, root, fresh, "--severity", "1")
    # plant the corner model's partial under the file name of the centre model's unit
    store = PartialStore(out / FOLDER, settings={},
                         model=model_digest(torch.jit.load(str(centre)), files=[centre]))
    from analysis.benchmarks.units import plan

    [unit] = plan("imagenet-c", None, root, severities=(1,), batch_size=2).units
    key = store.key(benchmark="imagenet-c", name=unit.name, settings=unit.settings,
                    reads=unit.reads)
    target = store.path(key)
    [foreign] = _partials(out)
    target.write_bytes(foreign.read_bytes())
    assert store.load(key) is None                      # its recorded key is the corner's
    assert _reused(_evaluate(centre, root, out, "--severity", "1")) == 0
    assert (out / "evaluate.json").read_bytes() == (fresh / "evaluate.json").read_bytes()
    target.write_text("not json")                        # damaged: recomputed, replaced
    assert _reused(_evaluate(centre, root, out, "--severity", "1")) == 0
    assert (out / "evaluate.json").read_bytes() == (fresh / "evaluate.json").read_bytes()
    assert store.load(key) is not None


def test_without_out_nothing_is_saved_and_bad_input_writes_no_partial(tmp_path, monkeypatch):
    root = _released(tmp_path / "c", ["gaussian_noise"], severities=(1,))
    model = _script(tmp_path / "code.ts")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["evaluate", "--benchmark", "imagenet-c", "--root", str(root),
                                 "--model", str(model), "--workers", "0", "--severity", "1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert "0 reused" in result.stderr and not (tmp_path / FOLDER).exists()
    assert json.loads(result.stdout)["results"]["imagenet-c"]["n"] == 3
    # the second benchmark lacks a severity: refused before the first benchmark runs
    cue = tmp_path / "cue"
    save(cue / "cat" / "cat1-dog1.png", code_image(281, size=32))
    out = tmp_path / "out"
    bad = runner.invoke(app, ["evaluate", "--benchmark", "shape-bias", "--benchmark",
                              "imagenet-c", "--root", f"shape-bias={cue}", "--root",
                              f"imagenet-c={root}", "--severity", "2", "--model", str(model),
                              "--workers", "0", "--out", str(out)])
    assert bad.exit_code == 2 and "gaussian_noise/2 is missing" in bad.stderr, bad.output
    assert not out.exists()
