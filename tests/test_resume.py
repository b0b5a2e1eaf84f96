"""causalkit.resume: the one checkpoint writer and settings-checking reader."""

from __future__ import annotations

import json

import pytest
import torch

from causalkit.errors import CausalKitError
from causalkit.resume import ABSENT, config_diff, load_checkpoint, save_checkpoint


def test_config_diff_defaults_free_fields_and_json_round_trip():
    assert config_diff({"a": 1}, {"a": 1, "b": 2}, defaults={"b": 2}) == {}
    assert config_diff({"a": 1}, {"a": 1, "b": 3}, defaults={"b": 2}) == {"b": (2, 3)}
    assert config_diff({"a": 1, "n": 5}, {"a": 1, "n": 9}, free=("n",)) == {}
    assert config_diff(json.dumps({"betas": [0.5, 0.9]}), {"betas": (0.5, 0.9)}) == {}
    assert config_diff({"a": 1, "gone": None}, {"a": 1}) == {"gone": (None, ABSENT)}
    assert config_diff({}, {"new": 1}) == {"new": (ABSENT, 1)}


def test_save_and_load_checkpoint(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    assert load_checkpoint(path, config={}, what="other settings") is None
    state = {"config": json.dumps({"lr": 0.1, "steps": 4}), "w": torch.arange(3), "step": 2}
    save_checkpoint(path, state)
    got = load_checkpoint(path, config={"lr": 0.1, "steps": 4}, what="other settings")
    assert torch.equal(got["w"], state["w"]) and got["step"] == 2
    with pytest.raises(CausalKitError, match=r"other settings \(lr saved 0.1, now 0.2\); use a "
                                             r"new --out folder .* \(only steps may change\)"):
        load_checkpoint(path, config={"lr": 0.2, "steps": 4}, what="other settings",
                        hint="only steps may change")
    with pytest.raises(CausalKitError, match="under 'config'"):
        save_checkpoint(path, {"w": torch.zeros(1)})
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(CausalKitError, match="not a training checkpoint"):
        load_checkpoint(path, config={}, what="other settings")


def test_load_checkpoint_refuses_damaged_files_in_one_line(tmp_path):
    path = tmp_path / "checkpoint.pt"
    good = {"config": "{}", "step": 1, "model": {"w": torch.zeros(50)}}
    save_checkpoint(path, good)
    data = path.read_bytes()
    with pytest.raises(CausalKitError, match="lacks optimizer"):
        load_checkpoint(path, config={}, what="x", keys=("model", "optimizer"))
    for damaged, message in ((data[: len(data) // 2], "is truncated or corrupt"),
                             (b"", "is empty"), (b"\x00garbage" * 20, "is not a torch file")):
        path.write_bytes(damaged)
        with pytest.raises(CausalKitError, match=message) as info:
            load_checkpoint(path, config={}, what="x")
        assert "\n" not in str(info.value) and "delete it to start the run over" in str(
            info.value)
    path.unlink()
    path.mkdir()
    with pytest.raises(CausalKitError, match="is a folder"):
        load_checkpoint(path, config={}, what="x")


# --------------------------------------------------- causalkit train under kill -9, logs
TRAIN = ["train", "--method", "erm", "--source", "embedded", "--n-train", "256",
         "--batch-size", "16", "--steps", "30", "--log-every", "2", "--checkpoint-every",
         "5", "--model", "cnn", "--device", "cpu", "--seed", "3", "--json"]


def _log_without_times(path):
    from causalkit.logs import read_log

    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_log(path)]


def test_train_killed_at_a_random_step_resumes_to_identical_bytes(tmp_path):
    """kill -9 a `causalkit train` subprocess at a random step, tear its log's last line,
    rerun the same command: model, checkpoint and log equal an uninterrupted run's."""
    import os
    import random

    from _process_helpers import kill_when, last_logged_step
    from typer.testing import CliRunner

    from causalkit.cli import app

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "CAUSALKIT_DATA": str(tmp_path / "cache")}
    full, killed = tmp_path / "full", tmp_path / "killed"
    kill_at = random.Random(os.getpid()).randrange(7, 27)  # a step that is no checkpoint
    kill_when([*TRAIN, "--out", str(killed)], lambda: last_logged_step(killed) >= kill_at,
              env=env)
    assert not (killed / "model.pt").exists()
    with open(killed / "log.jsonl", "a") as fh:  # what a kill inside a write leaves
        fh.write('{"step": 9999, "lo')

    runner = CliRunner()
    with_env = {"CAUSALKIT_DATA": str(tmp_path / "cache")}
    resumed = runner.invoke(app, [*TRAIN, "--out", str(killed)], env=with_env)
    assert resumed.exit_code == 0, resumed.output
    fresh = runner.invoke(app, [*TRAIN, "--out", str(full)], env=with_env)
    assert fresh.exit_code == 0, fresh.output

    assert (killed / "model.pt").read_bytes() == (full / "model.pt").read_bytes()
    assert (killed / "checkpoint.pt").read_bytes() == (full / "checkpoint.pt").read_bytes()
    log = _log_without_times(killed / "log.jsonl")
    assert [r["step"] for r in log] == list(range(2, 31, 2))  # no step twice, none lost
    assert log == _log_without_times(full / "log.jsonl")
    assert json.loads(resumed.stdout)["ood_accuracy"] == json.loads(fresh.stdout)[
        "ood_accuracy"]


def test_logs_tolerate_a_torn_tail_and_are_cut_to_the_checkpoint(tmp_path):
    from causalkit.errors import DataError
    from causalkit.logs import append_record, cut_log, read_log

    path = tmp_path / "log.jsonl"
    assert read_log(path) == [] and cut_log(path, 3) == [] and not path.exists()
    with open(path, "a") as fh:
        for step in range(1, 6):
            append_record(fh, {"step": step, "loss": 1.0 / step})
        fh.write('{"step": 6, "lo')
    assert [r["step"] for r in read_log(path)] == [1, 2, 3, 4, 5]
    assert [r["step"] for r in cut_log(path, 3)] == [1, 2, 3]
    assert path.read_text().count("\n") == 3 and path.read_text().endswith("}\n")
    before = path.stat().st_mtime_ns
    cut_log(path, 3)  # nothing to cut: the file is left alone
    assert path.stat().st_mtime_ns == before
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(DataError, match="line 2 of .* is not a JSON record"):
        read_log(path)


def _tear(path):
    with open(path, "a") as fh:  # what a kill inside a write leaves behind
        fh.write('{"iteration": 99, "lo')


def test_small_gan_and_cgn_resume_over_a_torn_log(tmp_path):
    from causalkit.logs import read_log
    from generators.cgn.mnist.train import preset, train_cgn
    from generators.small_gan_train import TrainConfig, train_small_gan

    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 10
    x = torch.randint(0, 255, (64, 3, 32, 32), generator=g, dtype=torch.uint8)

    cfg = TrainConfig(model={"z_dim": 8, "emb_dim": 4, "ngf": 4}, ndf=4, iters=6,
                      batch_size=8, log_every=1, checkpoint_every=3, sample_every=100,
                      calib_batches=2)
    run = tmp_path / "small"
    train_small_gan(x, y, cfg, run, progress=False, stop_after=5)  # checkpoint at 5
    _tear(run / "log.jsonl")
    train_small_gan(x, y, cfg, run, progress=False)
    assert [r["iteration"] for r in read_log(run / "log.jsonl")] == list(range(1, 7))

    class Killed(Exception):
        pass

    def kill_at_5(it: int) -> None:
        if it == 5:
            _tear(tmp_path / "cgn" / "log.jsonl")
            raise Killed

    cgn_cfg = preset("colored", recipe="paper", iterations=6, batch_size=8, ngf=8,
                     log_every=1, sample_every=100, checkpoint_every=2, seed=3)
    with pytest.raises(Killed):
        train_cgn(x, y, cgn_cfg, tmp_path / "cgn", progress=False, callback=kill_at_5)
    _, history = train_cgn(x, y, cgn_cfg, tmp_path / "cgn", progress=False)
    assert [r["iteration"] for r in history] == list(range(1, 7))
    assert [r["iteration"] for r in read_log(tmp_path / "cgn" / "log.jsonl")] == list(
        range(1, 7))


def test_check_run_folder_is_the_one_rule_for_run_folders(tmp_path):
    from causalkit.resume import check_run_folder

    out = tmp_path / "run"
    assert check_run_folder(out, {"seed": 1}, file="run.json", what="a run", write=True) is None
    assert json.loads((out / "run.json").read_text()) == {"seed": 1}
    assert check_run_folder(out, {"seed": 1}, file="run.json", what="a run") == {"seed": 1}
    with pytest.raises(CausalKitError, match=r"holds a run with other settings \(differs in "
                                             r"\['seed'\]\)"):
        check_run_folder(out, {"seed": 2}, file="run.json", what="a run")
    assert check_run_folder(out, {"seed": 2, "t": 0}, file="run.json", what="a run",
                            free=("seed", "t")) == {"seed": 1}
    (out / "run.json").write_text("{not json")
    with pytest.raises(CausalKitError, match="damaged"):
        check_run_folder(out, {"seed": 1}, file="run.json", what="a run")
    (out / "run.json").unlink()
    (out / ".shards").mkdir()
    with pytest.raises(CausalKitError, match="finished shards but no run.json"):
        check_run_folder(out, {"seed": 1}, file="run.json", what="a run", write=True)
    assert not (out / "run.json").exists()
