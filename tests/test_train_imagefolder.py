"""`causalkit train --data imagefolder:DIR` and the engine at ImageNet scale, on a stand-in.

The stand-in is colored MNIST (rho 0.9, the embedded source) written as a PNG ImageFolder
(``train/c0 ... c9``, ``val/c0 ... c9``, 32x32) by a fixture, read through the same
loaders as ImageNet: ERM and mixup through the CLI with SGD, the multistep schedule and
a ResNet with torchvision's stem; a kill -9 at a random step and a rerun give the bytes
of an uninterrupted run; a 2-process gloo DDP run under torchrun matches one process;
``on_epoch`` logs each epoch once across a resume; ResNet-152's parameter layout is
torchvision's; fine-tuning starts from a torchvision-format checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _process_helpers import kill_when, last_logged_step
from typer.testing import CliRunner

from causalkit.cli import app
from causalkit.errors import CausalKitError, WeightsMismatchError
from causalkit.logs import read_log
from robust_training.engine import FitConfig, fit, load_model, scheduled_lr
from robust_training.imagenet_data import EvenBatches, FolderStream
from robust_training.resnet import build_resnet, init_from_torchvision, multi_head_resnet
from robust_training.streams import Concat, MultiStream, Stream

runner = CliRunner()
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """colored MNIST as PNG class folders: 300 training and 100 validation images."""
    import warnings

    from PIL import Image

    from causalkit.datasets import build_split

    root = tmp_path_factory.mktemp("imagefolder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the embedded-subset notice
        for split, sub, n in (("train", "train", 300), ("test", "val", 100)):
            sp = build_split("colored-mnist", split, rho=0.9, seed=0, source="embedded", n=n,
                             cache=False)
            for i, (image, label) in enumerate(zip(sp.images, sp.labels, strict=True)):
                d = root / sub / f"c{int(label)}"
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.asarray(image).transpose(1, 2, 0)).save(d / f"{i:04d}.png")
    # generated-stream stand-ins in the layout of the generate and transfer stages: flat
    # folders with a labels.csv (file,label); the validation digits with their colours
    # inverted (int) and the training digits' first 60 (transfer)
    for name, files in (("int", sorted((root / "val").rglob("*.png"))),
                        ("transfer", sorted((root / "train").rglob("*.png"))[:60])):
        (root / name).mkdir()
        rows = ["file,label"]
        for i, path in enumerate(files):
            array = np.asarray(Image.open(path))
            Image.fromarray(255 - array if name == "int" else array).save(
                root / name / f"{i:04d}.png")
            rows.append(f"{i:04d}.png,{int(path.parent.name[1:])}")
        (root / name / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _train(folder: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", f"imagefolder:{folder / 'train'}", "--size", "32",
            "--device", "cpu", "--seed", "1", "--json", "--out", str(out), *extra]


def test_erm_and_mixup_through_the_cli_learn_and_report_top1(folder, tmp_path):
    erm = runner.invoke(app, _train(folder, tmp_path / "erm", "--method", "erm", "--val",
                                    f"imagefolder:{folder / 'val'}", "--model", "cnn-cn",
                                    "--steps", "60", "--batch-size", "32", "--lr", "5e-3",
                                    "--val-each-epoch"))
    assert erm.exit_code == 0, erm.output
    report = json.loads(erm.stdout)
    epochs = [r for r in read_log(tmp_path / "erm" / "log.jsonl") if "epoch" in r]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(e, 9 * e) for e in range(1, 7)]
    assert all(r["val_n"] == 100 and 0 <= r["val_top1"] <= 1 for r in epochs)
    assert report["n_classes"] == 10 and report["val_n"] == 100
    assert report["streams"] == {"real": {"n": 300, "batch_size": 32, "id": 0}}
    assert report["val_top1"] > 0.3  # chance is 0.1; colour gives the label 9 times in 10

    mix = runner.invoke(app, _train(
        folder, tmp_path / "mix", "--method", "mixup", "--val", f"imagefolder:{folder / 'val'}",
        "--model", "resnet18", "--width", "8", "--steps", "30", "--batch-size", "32",
        "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.1", "--schedule", "multistep",
        "--milestones", "0.5,0.8", "--warmup-steps", "5", "--log-every", "10"))
    assert mix.exit_code == 0, mix.output
    report = json.loads(mix.stdout)
    log = read_log(tmp_path / "mix" / "log.jsonl")
    assert [r["step"] for r in log] == [10, 20, 30] and all("lam" in r for r in log)
    meta = json.loads((tmp_path / "mix" / "model.json").read_text())
    assert meta["stem"] == "imagenet" and meta["n_classes"] == 10
    assert meta["fit_config"]["optimizer"] == "sgd" and meta["fit_config"]["milestones"] == [
        0.5, 0.8]
    # the saved model rebuilds strictly (torchvision stem, 10 classes) and reads the same
    model = load_model(tmp_path / "mix")
    assert model.backbone.conv1.kernel_size == (7, 7)
    val = FolderStream.real(folder / "val", 100)
    x, y = next(val.eval_batches(100, resize=37, crop=32))
    with torch.no_grad():
        top1 = float((model.logits(x * 2 - 1, "label").argmax(1) == y[:, 0]).float().mean())
    assert top1 == pytest.approx(report["val_top1"])


def test_genint_transfer_on_disk_streams(folder, tmp_path):
    """real + int + transfer folders, each with its own batch size, through the CLI."""
    result = runner.invoke(app, _train(
        folder, tmp_path / "gt", "--method", "genint-transfer", "--model", "cnn-cn",
        "--int-data", str(folder / "int"), "--transfer-data", str(folder / "transfer"),
        "--steps", "4", "--batch-size", "8", "--gen-batch-size", "4",
        "--transfer-batch-size", "2", "--lambda1", "0.2", "--lambda2", "0.2",
        "--log-every", "1"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["streams"] == {"real": {"n": 300, "batch_size": 8, "id": 0},
                                 "int": {"n": 100, "batch_size": 4, "id": 1},
                                 "transfer": {"n": 60, "batch_size": 2, "id": 2}}
    assert [r["step"] for r in read_log(tmp_path / "gt" / "log.jsonl")] == [1, 2, 3, 4]
    missing = runner.invoke(app, _train(folder, tmp_path / "no", "--method", "genint-transfer",
                                        "--int-data", str(folder / "int")))
    assert missing.exit_code == 2 and "needs --transfer-data DIR" in missing.stderr


def test_sgd_multistep_and_warmup_rates():
    cfg = FitConfig(optimizer="sgd", schedule="multistep", milestones=[30, 60],
                    milestone_unit="epoch", steps=900, nesterov=True)
    from robust_training.engine import milestone_steps

    ms = milestone_steps(cfg, steps_per_epoch=10)
    assert ms == (300, 600)
    rates = [scheduled_lr(0.1, s, 900, "multistep", milestones=ms) for s in (299, 300, 600)]
    assert rates == pytest.approx([0.1, 0.01, 0.001])
    assert scheduled_lr(0.1, 1, 900, "constant", warmup_steps=4) == pytest.approx(0.05)
    with pytest.raises(CausalKitError, match="need the steps per epoch"):
        milestone_steps(cfg)
    for bad, match in (({"schedule": "multistep"}, "needs milestones"),
                       ({"milestones": [0.5]}, "apply to schedule 'multistep'"),
                       ({"schedule": "multistep", "milestones": [0.6, 0.3]}, "ascending"),
                       ({"schedule": "multistep", "milestones": [30]}, "lie in \\(0, 1\\)"),
                       ({"nesterov": True}, "nesterov needs"),
                       ({"momentum": 1.0}, "momentum"),
                       ({"stem": "imagenet"}, "needs a ResNet"),
                       ({"n_classes": 1}, "n_classes")):
        with pytest.raises(CausalKitError, match=match):
            FitConfig(**bad)


def test_cli_killed_at_a_random_step_resumes_to_identical_bytes(folder, tmp_path):
    """kill -9 a run at a random step (not a checkpoint), rerun it with DataLoader workers:
    model, checkpoint and log equal an uninterrupted run's."""
    argv = ["--method", "erm", "--model", "cnn-cn", "--steps", "24", "--batch-size", "16",
            "--optimizer", "sgd", "--lr", "0.05", "--log-every", "1", "--checkpoint-every",
            "5"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    kill_at = random.Random(os.getpid()).choice([s for s in range(7, 21) if s % 5])
    kill_when(_train(folder, killed, *argv), lambda: last_logged_step(killed) >= kill_at, env=ENV)
    assert not (killed / "model.pt").exists()
    resumed = runner.invoke(app, _train(folder, killed, *argv, "--num-workers", "1"))
    assert resumed.exit_code == 0, resumed.output
    fresh = runner.invoke(app, _train(folder, full, *argv))
    assert fresh.exit_code == 0, fresh.output
    assert (killed / "model.pt").read_bytes() == (full / "model.pt").read_bytes()
    assert (killed / "checkpoint.pt").read_bytes() == (full / "checkpoint.pt").read_bytes()

    def steps_and_losses(path):
        return [(r["step"], r["loss"]) for r in read_log(path)]

    assert steps_and_losses(killed / "log.jsonl") == steps_and_losses(full / "log.jsonl")
    assert [s for s, _ in steps_and_losses(full / "log.jsonl")] == list(range(1, 25))


@pytest.mark.slow  # three interpreters start (torchrun and two ranks)
def test_two_process_gloo_ddp_matches_one_process(folder, tmp_path):
    """torchrun --nproc_per_node 2: each rank trains on its rows r::2 of the same global
    batch and DDP averages the gradients, so the weights equal one process's on the whole
    batch up to float32 summation order. The model (cnn-cn) has no batch statistics, so
    nothing else differs; the tolerance (1e-5, weights of order 0.1) is about 100 times
    the 1e-7 relative rounding of a handful of SGD steps, and 1,000 times below the change
    that the same steps make to the weights (checked, so the comparison can fail)."""
    argv = ["--method", "erm", "--model", "cnn-cn", "--steps", "6", "--batch-size", "16",
            "--optimizer", "sgd", "--lr", "0.05", "--checkpoint-every", "6"]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "causalkit",
                          *_train(folder, tmp_path / "ddp", *argv)],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = runner.invoke(app, _train(folder, tmp_path / "one", *argv))
    assert single.exit_code == 0, single.output
    a = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    from robust_training.engine import build_fit_model

    init = build_fit_model("cnn-cn", ("label",), seed=1, n_classes=10).state_dict()
    assert set(a) == set(b) == set(init)
    moved = max(float((b[k] - init[k]).abs().max()) for k in b)
    diff = max(float((a[k] - b[k]).abs().max()) for k in b)
    assert moved > 1e-2 and diff < 1e-5, (moved, diff)
    assert json.loads(ddp.stdout)["steps"] == 6  # rank 0 reports, once


def _stand_in_batches(folder: Path, steps: int) -> EvenBatches:
    return EvenBatches([FolderStream.real(folder / "train", 50)], steps=steps, size=32, seed=2)


def test_on_epoch_runs_once_per_epoch_across_a_resume(folder, tmp_path, monkeypatch):
    """300 images, 50 a step: 6 steps an epoch, 3 epochs. A run stopped mid-epoch and one
    that dies between an epoch's record and its checkpoint both resume to a log with
    each epoch once, and the model of an uninterrupted run."""
    import robust_training.engine as engine

    cfg = FitConfig(objective="erm", model="cnn-cn", steps=18, checkpoint_every=100,
                    log_every=3, optimizer="sgd", lr=0.05, schedule="multistep",
                    milestones=[2], milestone_unit="epoch")
    calls: list[int] = []

    def on_epoch(epoch, model):
        assert not model.training
        calls.append(epoch)
        with torch.no_grad():
            return {"probe": float(sum(p.sum() for p in model.parameters()))}

    def run(out, **kw):
        return fit(_stand_in_batches(folder, 18), cfg, out, device="cpu", progress=False,
                   on_epoch=on_epoch, **kw)

    full, _ = run(tmp_path / "full")
    assert calls == [1, 2, 3]
    calls.clear()
    run(tmp_path / "stopped", stop_after=9)
    run(tmp_path / "stopped")
    assert calls == [1, 2, 3]  # stopped at step 9: epoch 1 was checkpointed with its record

    # die after epoch 2's record, before its checkpoint (a kill -9 between the two)
    real_save = engine.save_checkpoint

    def dies_at_12(path, state):
        if state["step"] == 12:
            raise KeyboardInterrupt
        real_save(path, state)

    monkeypatch.setattr(engine, "save_checkpoint", dies_at_12)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "died")
    assert [r["epoch"] for r in read_log(tmp_path / "died" / "log.jsonl") if "epoch" in r] \
        == [1, 2]
    monkeypatch.setattr(engine, "save_checkpoint", real_save)
    resumed, _ = run(tmp_path / "died")
    for path in ("full", "stopped", "died"):
        log = read_log(tmp_path / path / "log.jsonl")
        epochs = [(r["epoch"], r["step"], r["probe"]) for r in log if "epoch" in r]
        assert [e[:2] for e in epochs] == [(1, 6), (2, 12), (3, 18)], path
        assert [r["step"] for r in log if "epoch" not in r] == list(range(3, 19, 3))
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(CausalKitError, match="on_epoch needs the steps per epoch"):
        fit(Concat([_Bare()]), FitConfig(steps=1), None, on_epoch=on_epoch, progress=False)


class _Bare:
    def batch(self, step, *, rank=0, world=1, device="cpu"):
        return {}


def test_concat_joins_sources_and_checks_sizes():
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 255, (12, 3, 8, 8), generator=g, dtype=torch.uint8)
    a = MultiStream([Stream("real", img, torch.arange(12) % 3, 4)], seed=1)
    b = MultiStream([Stream("int", img[:6], torch.arange(6) % 3, 2)], seed=2)
    both = Concat([a, b])
    for rank in (0, 1):
        got = both.batch(5, rank=rank, world=2)
        want = [a.batch(5, rank=rank, world=2), b.batch(5, rank=rank, world=2)]
        for k in ("x", "y", "stream", "real", "env"):
            assert torch.equal(got[k], torch.cat([w[k] for w in want])), k
    assert both.batch(0)["stream"].tolist() == [0, 0, 0, 0, 1, 1]
    assert both.batch_size == 6 and both.steps_per_epoch() == 3
    small = MultiStream([Stream("int", img[:, :, :4, :4], torch.arange(12) % 3, 2)])
    with pytest.raises(CausalKitError, match="different sizes"):
        Concat([a, small]).batch(0)
    with pytest.raises(CausalKitError, match="not a batch source"):
        Concat([a, object()])
    with pytest.raises(CausalKitError, match="lacks"):
        Concat([a, _Bare()]).batch(0)


# -------------------------------------------------------------- torchvision's layouts
def _bn(p, c):
    return [(f"{p}.weight", (c,)), (f"{p}.bias", (c,)), (f"{p}.running_mean", (c,)),
            (f"{p}.running_var", (c,)), (f"{p}.num_batches_tracked", ())]


def _torchvision_bottleneck_layout(blocks):
    """(name, shape) of torchvision's ``ResNet(Bottleneck, blocks)`` state dict, in
    order, from torchvision/models/resnet.py: ``conv1`` 7x7/2, ``bn1``; stages of
    Bottlenecks (conv1 1x1, bn1, conv2 3x3 with the stride, bn2, conv3 1x1 to 4x width,
    bn3, and ``downsample`` = 1x1 conv + BN on each stage's first block); ``fc``."""
    keys = [("conv1.weight", (64, 3, 7, 7)), *_bn("bn1", 64)]
    cin = 64
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), 1):
        for block in range(n):
            p = f"layer{stage}.{block}"
            keys += [(f"{p}.conv1.weight", (width, cin, 1, 1)), *_bn(f"{p}.bn1", width),
                     (f"{p}.conv2.weight", (width, width, 3, 3)), *_bn(f"{p}.bn2", width),
                     (f"{p}.conv3.weight", (4 * width, width, 1, 1)),
                     *_bn(f"{p}.bn3", 4 * width)]
            if block == 0:
                keys += [(f"{p}.downsample.0.weight", (4 * width, cin, 1, 1)),
                         *_bn(f"{p}.downsample.1", 4 * width)]
            cin = 4 * width
    return keys + [("fc.weight", (1000, 2048)), ("fc.bias", (1000,))]


def test_resnet152_has_torchvision_names_and_shapes():
    model = build_resnet("resnet152")
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == _torchvision_bottleneck_layout((3, 8, 36, 3))
    assert sum(p.numel() for p in model.parameters()) == 60_192_808  # torchvision's count
    r50 = [(k, tuple(v.shape)) for k, v in build_resnet("resnet50", width=64).state_dict()
           .items()]
    assert r50 == _torchvision_bottleneck_layout((3, 4, 6, 3))


def _checkpoint(tmp_path, n_classes, *, wrap=False):
    # a torchvision-format resnet18 (width 8 keeps it small), optionally as a training
    # checkpoint with DataParallel's "module." keys
    state = build_resnet("resnet18", n_classes, seed=7, width=8).state_dict()
    if wrap:
        state = {"epoch": 90, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    path = tmp_path / f"r18_{n_classes}_{wrap}.pth"
    torch.save(state, path)
    return path, build_resnet("resnet18", n_classes, seed=7, width=8).state_dict()


def test_fine_tuning_starts_from_a_torchvision_checkpoint(folder, tmp_path):
    from robust_training.imagenet_classifier import build_imagenet_classifier

    path, state = _checkpoint(tmp_path, 10, wrap=True)
    model = build_imagenet_classifier("resnet18", heads=("label",), n_classes=10, width=8)
    init_from_torchvision(model, path)  # fc kept: 10 classes in both
    torch.testing.assert_close(model.backbone.layer2[0].conv1.weight,
                               state["layer2.0.conv1.weight"])
    torch.testing.assert_close(model.heads["label"].weight, state["fc.weight"])
    other, _ = _checkpoint(tmp_path, 1000)
    with pytest.raises(WeightsMismatchError, match="1000-class fc.*--pretrained-fc new"):
        init_from_torchvision(model, other)
    fresh = build_imagenet_classifier("resnet18", heads=("label",), n_classes=10, width=8)
    head = fresh.heads["label"].weight.clone()
    init_from_torchvision(fresh, other, fc="new")
    assert torch.equal(fresh.heads["label"].weight, head)
    with pytest.raises(WeightsMismatchError, match="3x3 conv1"):
        init_from_torchvision(multi_head_resnet("resnet18", width=8), path)

    # through fit: the first step starts from the checkpoint (a 1e-9 lr barely moves it)
    cfg = FitConfig(objective="erm", model="resnet18", width=8, stem="imagenet", steps=1,
                    optimizer="sgd", lr=1e-9, pretrained=str(path))
    tuned, _ = fit(_stand_in_batches(folder, 1), cfg, tmp_path / "tuned", device="cpu",
                   progress=False)
    torch.testing.assert_close(tuned.backbone.conv1.weight, state["conv1.weight"])
    assert json.loads((tmp_path / "tuned" / "model.json").read_text())["fit_config"][
        "pretrained"] == str(path)
    cli = runner.invoke(app, _train(folder, tmp_path / "cli", "--method", "erm", "--model",
                                    "resnet18", "--width", "8", "--steps", "2", "--pretrained",
                                    str(other)))
    assert cli.exit_code == 2 and "--pretrained-fc new" in cli.stderr
    assert not (tmp_path / "cli").exists()  # refused before anything was written
