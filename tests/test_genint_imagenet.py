"""GenInt on ImageNet through its CPU stand-in: config, stages, resume, the real adapter.

The stand-in is the ``tiny`` preset made smaller: colored MNIST written as ImageNet-shaped
PNG folders by the pipeline itself, a random small GAN (or the tiny random BigGAN-deep)
and a narrow ResNet-18, so every stage runs the code a GPU run runs, in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from causalkit.errors import CausalKitError
from robust_training.experiments import genint_pipeline as pipe
from robust_training.experiments.genint_imagenet import (
    METHODS,
    GenIntImageNetConfig,
    run_stage,
)

ROOT = Path(__file__).resolve().parents[1]
#: the tiny preset cut down to what a test needs (stand-in: 96 training images)
FAST = {
    "data.standin": {"variant": "colored-mnist", "rho": 0.9, "n_train": 96, "n_val": 40,
                     "n_ood": 30, "source": "embedded", "seed": 0},
    "generate.per_class": 2, "generate.edits_per_seed": 2, "generate.obs_per_class": 2,
    "generate.shard_size": 16, "transfer.n": 12, "transfer.batch_size": 12,
    "train.steps": 6, "train.checkpoint_every": 2, "train.log_every": 1,
    "evaluation.options": {"imagenet-c": {"source": "folder",
                                          "corruptions": ["gaussian_noise"],
                                          "severities": [3]}},
    "evaluation.batch_size": 40, "evaluation.methods": ["erm", "genint-transfer"],
}


def _config(**flags) -> GenIntImageNetConfig:
    return GenIntImageNetConfig.resolve("tiny", flags={**FAST, **flags})


@pytest.fixture(scope="module")
def small_gan(tmp_path_factory) -> str:
    from generators.small_gan import SmallGANConfig, build_small_gan, save_small_gan

    folder = tmp_path_factory.mktemp("gan") / "generator"
    save_small_gan(build_small_gan(SmallGANConfig(ngf=8), seed=0), folder)
    return f"small:{folder}"


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_gan) -> tuple[Path, GenIntImageNetConfig]:
    """Every stage of the stand-in, every method, interventions read from shards."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("genint") / "run"
    config = _config(generator=small_gan, methods=list(METHODS))
    record = run_stage(config, "all", out, device="cpu", progress=False)
    assert list(record["result"]) == ["directions", "generate", "transfer", "train",
                                      "evaluate"]
    return out, config


# -- config -------------------------------------------------------------------------------
def test_presets_round_trip_and_print_their_sources(tmp_path):
    paper = GenIntImageNetConfig.resolve("paper")
    assert paper.generator.spec == "biggan:biggan-deep-256"
    assert paper.interventions.strategy == "genint:t=1,k=60"
    assert (paper.generate.per_class, paper.generate.edits_per_seed) == (1000, 5)
    gt = paper.train.for_method("genint-transfer")
    assert (gt.optimizer, gt.lr, gt.epochs, gt.batch_size) == ("sgd", 1e-3, 40.0, 192)
    assert paper.train.for_method("genint").optimizer == "adam"
    saved = tmp_path / "mine.yaml"
    saved.write_text(paper.to_yaml())
    assert GenIntImageNetConfig.resolve(file=saved).to_dict() == paper.to_dict()
    tiny = GenIntImageNetConfig.resolve("tiny")
    assert tiny.train.arch == "resnet18" and tiny.data.standin["variant"] == "colored-mnist"
    assert tiny.train.for_method("genint-transfer").lambda2 == 0.2  # from paper, kept


@pytest.mark.parametrize(("flags", "match"), [
    ({"methods": ["genint", "irm"]}, "must name methods"),
    ({"source": "disk"}, "interventions.source"),
    ({"strategy": "t=1,k=x"}, "not a number|cannot parse"),
    ({"train.per_method": {"genint": {"seed": 3}}}, "cannot set"),
    ({"augment": "tpu"}, "data.augment"),
    ({"features": "vgg19:/no/such.pth"}, "no such file"),
    ({"roots": {"in9": "/tmp"}}, "unknown benchmark"),
    ({"generator": "stylegan:x"}, "unknown generator"),
    ({"train_data": "folder:/x"}, "data spec"),
])
def test_bad_settings_are_refused_in_one_line(flags, match):
    with pytest.raises(CausalKitError, match=match) as info:
        GenIntImageNetConfig.resolve("tiny", flags=flags)
    assert "\n" not in str(info.value)


def test_stages_refuse_missing_data_and_other_settings_before_writing(tmp_path, small_gan):
    paper = GenIntImageNetConfig.resolve("paper")
    with pytest.raises(CausalKitError, match="set data.train"):
        run_stage(paper, "train", tmp_path / "a")
    fine = GenIntImageNetConfig.resolve("paper", flags={"train_data": f"imagefolder:{tmp_path}",
                                                         "val_data": f"imagefolder:{tmp_path}"})
    with pytest.raises(CausalKitError, match="set train.pretrained"):
        run_stage(fine, "train", tmp_path / "a")
    with pytest.raises(CausalKitError, match="unknown stage"):
        run_stage(fine, "fit", tmp_path / "a")
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    run_stage(_config(generator=small_gan), "directions", out, progress=False)
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(CausalKitError, match="other settings"):
        run_stage(_config(generator=small_gan, strategy="genint:t=1,k=4"), "directions", out,
                  progress=False)
    assert sorted(p.name for p in out.rglob("*")) == before
    with pytest.raises(CausalKitError, match="run --stage generate"):
        run_stage(_config(generator=small_gan), "transfer", out, progress=False)


def test_cli_prints_the_config_and_refuses_bad_input(tmp_path):
    from typer.testing import CliRunner

    from causalkit.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["reproduce", "genint-imagenet", "--config", "tiny",
                                "--stage", "train", "--method", "genint", "--print-config"])
    assert shown.exit_code == 0, shown.output
    assert "spec: tiny:0" in shown.output and "- genint\n" in shown.output
    for args, match in ((["--config", "nope"], "neither a preset"),
                        (["--config", "paper"], "needs real images"),
                        (["--config", "tiny", "--root", "objectnet"], "NAME=DIR")):
        bad = runner.invoke(app, ["reproduce", "genint-imagenet", "--stage", "train", *args,
                                  "--out", str(tmp_path / "x")])
        assert bad.exit_code == 2 and match in bad.output, bad.output
    assert not (tmp_path / "x").exists()


# -- the stand-in end to end ----------------------------------------------------------------
def test_every_stage_and_method_on_the_stand_in(run):
    out, config = run
    labels = (out / "generate" / "int" / "labels.csv").read_text().splitlines()
    assert len(labels) == 1 + 10 * 2 * 2  # classes x seeds x edits
    assert (out / "generate" / "obs" / "labels.csv").is_file()
    assert len((out / "transfer" / "images" / "labels.csv").read_text().splitlines()) == 13
    expected = {"erm": {"real"}, "mixup": {"real"}, "gan-aug": {"real", "obs"},
                "genint": {"real", "int"}, "genint-transfer": {"real", "int", "transfer"}}
    for method, kinds in expected.items():
        info = json.loads((out / "train" / method / "classifier.json").read_text())
        assert set(info["streams"]) == kinds and info["steps"] == 6
        last = [json.loads(line) for line in (out / "train" / method / "log.jsonl")
                .read_text().splitlines()][-1]
        for kind in kinds - {"real"} if method != "mixup" else ():
            assert f"ce_{kind}" in last, (method, last)
    summary = json.loads((out / "evaluation.json").read_text())
    assert set(summary["results"]) == {"erm", "genint-transfer"}
    for method in summary["results"]:
        res = summary["results"][method]
        assert set(res) == {"imagenet-v2", "imagenet-c", "imagenet-val"}
        assert res["imagenet-v2"]["n"] == 30 and res["imagenet-val"]["n"] == 40
        assert 0.0 <= res["imagenet-val"]["top1"] <= res["imagenet-val"]["top5"] <= 1.0
        assert "imagenet-c/clean_error" in summary["summary"][method]


def test_imagenet_logits_put_each_class_at_its_imagenet_index():
    from analysis.benchmarks.imagenet_ids import WNIDS

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return {"label": torch.tensor([[0.0, 3.0, 1.0]]).repeat(len(x), 1)}

    names = [WNIDS[7], WNIDS[2], WNIDS[500]]
    wrapped = pipe.ImageNetLogits(Fixed(), pipe.class_indices(names), size=8)
    logits = wrapped(torch.rand(2, 3, 224, 224))
    assert logits.shape == (2, 1000) and logits.argmax(1).tolist() == [2, 2]
    assert logits[0, 500] == 1.0 and logits[0, 7] == 0.0 and logits[0, 3] < -1e3
    with pytest.raises(CausalKitError, match="WordNet id"):
        pipe.class_indices(["cats"])


def test_on_the_fly_interventions_and_per_epoch_evaluation(run, tmp_path):
    out, config = run
    live = tmp_path / "live"
    shutil.copytree(out / "data", live / "data")
    config = _config(generator=config.generator.spec, source="on-the-fly",
                     methods=["genint"], eval_every_epoch=True)
    run_stage(config, "directions", live, progress=False)
    run_stage(config, "train", live, progress=False)
    log = [json.loads(line) for line in
           (live / "train" / "genint" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]
    epochs = [r for r in log if "epoch" in r]
    assert [r["epoch"] for r in epochs] == [1]  # 96 images / 16 per step = 6 steps
    assert "imagenet-val/top1" in epochs[0]["eval"]
    assert not (live / "generate").exists()  # nothing pre-generated


def test_tiny_biggan_through_the_real_adapter_in_the_generate_stage(tmp_path):
    config = _config(methods=["genint"])
    assert config.generator.spec == "tiny:0"
    result = run_stage(config, "generate", tmp_path / "g", progress=False)
    assert set(result["result"]) == {"int"}
    assert result["result"]["int"]["images"] == 10 * 2 * 2
    manifest = json.loads((tmp_path / "g" / "generate" / "int" / "manifest.json").read_text())
    assert manifest["directions_key"]
    from PIL import Image

    first = (tmp_path / "g" / "generate" / "int" / "labels.csv").read_text().splitlines()[1]
    with Image.open(tmp_path / "g" / "generate" / "int" / first.split(",")[0]) as im:
        assert im.size == (32, 32)
    more = _config(methods=["genint", "gan-aug"])  # GAN augmentation needs obs images too
    again = run_stage(more, "generate", tmp_path / "g", progress=False)
    assert again["result"]["int"]["generated_images"] == 0  # resumed: nothing to redo
    assert again["result"]["obs"]["images"] == 10 * 2  # one image per seed
    with pytest.raises(CausalKitError, match="other settings"):
        run_stage(_config(per_class=3), "generate", tmp_path / "g", progress=False)


_KILLED = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import robust_training.engine as engine
    from robust_training.experiments.genint_imagenet import GenIntImageNetConfig, run_stage
    real, saves = engine.save_checkpoint, [0]
    def dying(path, state):
        real(path, state)
        saves[0] += 1
        if saves[0] == 2:  # after the checkpoint of step 4 of 6
            os.kill(os.getpid(), signal.SIGKILL)
    engine.save_checkpoint = dying
    flags = json.loads(sys.argv[2])
    run_stage(GenIntImageNetConfig.resolve("tiny", flags=flags), "train", sys.argv[1],
              device="cpu", progress=False)
""")


def test_kill_9_in_the_train_stage_resumes_to_identical_bytes(run, tmp_path):
    out, config = run
    cut = tmp_path / "cut"
    for part in ("data", "directions", "generate", "transfer"):
        shutil.copytree(out / part, cut / part)
    flags = {**FAST, "generator": config.generator.spec, "methods": ["genint-transfer"]}
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(cut), json.dumps(flags)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    folder = cut / "train" / "genint-transfer"
    assert (folder / "checkpoint.pt").is_file() and not (folder / "model.pt").exists()
    run_stage(GenIntImageNetConfig.resolve("tiny", flags=flags), "train", cut, device="cpu",
              progress=False)
    whole = out / "train" / "genint-transfer"
    for name in ("checkpoint.pt", "model.pt"):
        assert (folder / name).read_bytes() == (whole / name).read_bytes(), name

    def log(path: Path) -> list[dict]:
        rows = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert log(folder) == log(whole)


def test_stage_costs_read_gpu_records_and_say_when_there_are_none(tmp_path, monkeypatch):
    from robust_training.experiments.genint_imagenet import stage_costs

    monkeypatch.setenv("CAUSALKIT_RECORDS", str(tmp_path))
    paper = GenIntImageNetConfig.resolve("paper", validate=False)
    assert all(row["hours"] is None for row in stage_costs(paper))
    machine = {"date": "2026-12-01T00:00:00Z", "gpu": "NVIDIA H100"}
    (tmp_path / "genint_generation.json").write_text(json.dumps([
        {"device": "cpu", "interventional_images_per_s": 1.0, "machine": machine},
        {"device": "cuda", "interventional_images_per_s": 500.0, "machine": machine}]))
    (tmp_path / "genint_train_throughput.json").write_text(json.dumps([
        {"device": "cuda:0", "genint": {"images_per_s": 1600.0}, "machine": machine}]))
    generate, train = stage_costs(paper, method="genint")
    assert generate["hours"] == pytest.approx(1000 * 1000 * 5 / 500.0 / 3600)
    assert generate["hours_8"] == pytest.approx(generate["hours"] / 8)
    steps = round(8.0 * 1_281_167 / 256)  # the genint recipe: 8 epochs of 256 real images
    assert train["hours"] == pytest.approx(steps * (256 + 64) / 1600.0 / 3600)
    assert generate["gpu"] == "NVIDIA H100"
