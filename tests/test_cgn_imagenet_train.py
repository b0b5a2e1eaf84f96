"""Training the ImageNet CGN: the official defaults, a tiny end-to-end run, kill -9 resume.

The model is the real CGN on a tiny BigGAN-deep config (random weights through the strict
loader) with the real u2netp where ``../shared/data`` has it (a random u2netp otherwise);
the perceptual features are two fixed maps (the image and its 2 x 2 pooling), so the
runs take seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SHARED_DATA

from causalkit.errors import CausalKitError
from causalkit.logs import read_log
from generators.cgn.imagenet.losses import LOSS_NAMES, LossWeights
from generators.cgn.imagenet.train import CGNImageNetTrainConfig, inception_score

U2NETP = SHARED_DATA / "u2netp" / "u2netp.onnx"
pytest.importorskip("generators.u2net", reason="the CGN's U^2-Net comes from generators.u2net, "
                    "which this checkout lacks")

_SETUP = """
import sys, torch
import torch.nn.functional as F
from torch import nn
from generators.cgn.imagenet import load_cgn_imagenet
from generators.cgn.imagenet.losses import LossWeights
from generators.cgn.imagenet.train import CGNImageNetTrainConfig, train_cgn_imagenet

torch.set_num_threads(1)

class Maps(nn.Module):
    def forward(self, x):
        return [x * 2.0, F.avg_pool2d(x, 2)]

def config(**kw):
    losses = LossWeights(perc=(4.0, 4.0), text=(0.0, 5.0), patch_size=5, patch_top=10,
                         patch_grid=2, patch_work_size=32)
    base = dict(episodes=2, batch_acc=3, batch_size=1, sample_classes=(1, 2),
                checkpoint_every=2, sample_every=3, lr_shape=1e-3, lr_texture=1e-3,
                lr_background=1e-3, losses=losses)
    base.update(kw)
    return CGNImageNetTrainConfig(**base)
"""


def _namespace() -> dict:
    ns: dict = {}
    exec(_SETUP, ns)  # the same definitions the subprocesses use
    return ns


@pytest.fixture(scope="module")
def cgn_file(tmp_path_factory) -> Path:
    from generators.biggan import tiny_config
    from generators.cgn.imagenet import build_cgn_imagenet, save_cgn_imagenet

    u2net = str(U2NETP) if U2NETP.is_file() else "u2netp"
    cgn = build_cgn_imagenet(tiny_config(), u2net=u2net, seed=0, device="cpu")
    return save_cgn_imagenet(cgn, tmp_path_factory.mktemp("cgn") / "cgn.pt")


def test_defaults_are_the_official_recipe():
    c = CGNImageNetTrainConfig()
    assert (c.episodes, c.batch_acc, c.batch_size, c.truncation) == (300, 4000, 1, 1.0)
    assert c.learning_rates() == {"shape": 8e-6, "texture": 3e-5, "background": 1e-5}
    assert c.betas == (0.9, 0.999) and c.losses == LossWeights() and c.iterations == 1_200_000
    with pytest.raises(CausalKitError, match="batch_acc"):
        CGNImageNetTrainConfig(batch_acc=0)
    with pytest.raises(CausalKitError, match="precision"):
        CGNImageNetTrainConfig(precision="fp8")


def test_inception_score_formula():
    assert inception_score(torch.zeros(5, 4)) == pytest.approx(1.0)
    sharp = torch.eye(4) * 50.0                     # confident and diverse: IS = classes
    assert inception_score(sharp) == pytest.approx(4.0, rel=1e-6)


def test_tiny_run_trains_logs_samples_and_saves(cgn_file, tmp_path):
    from generators.cgn.imagenet import load_cgn_imagenet

    ns = _namespace()
    cgn = load_cgn_imagenet(cgn_file, device="cpu")
    before = {k: v.clone() for k, v in cgn.state_dict().items()}
    result = ns["train_cgn_imagenet"](cgn, ns["config"](), tmp_path, features=ns["Maps"](),
                                      classifier=nn_classifier(), progress=False)
    log = read_log(tmp_path / "log.jsonl")
    assert [r["iteration"] for r in log] == list(range(1, 7))
    assert all(set(LOSS_NAMES) | {"loss", "mask_mean", "episode"} <= set(r) for r in log)
    assert all(0 < r["mask_mean"] < 1 for r in log)
    assert [r["episode"] for r in log] == [0, 0, 1, 1, 1, 2]
    assert "inception_score" in log[0] and "inception_score" in log[3]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "iter_0000000.png", "iter_0000003.png"]
    after = load_cgn_imagenet(result.model_path, device="cpu").state_dict()
    for child in ("f_shape", "f_text", "f_bg"):
        assert any(not torch.equal(before[k], after[k]) for k in before
                   if k.startswith(child + ".") and before[k].is_floating_point())
    for k in before:
        if k.startswith(("biggan_GT.", "u2net.")):
            assert torch.equal(before[k], after[k]), k
    # resuming a finished run does nothing more; other settings are refused
    again = ns["train_cgn_imagenet"](load_cgn_imagenet(cgn_file, device="cpu"), ns["config"](),
                                     tmp_path, features=ns["Maps"](), progress=False)
    assert again.iterations == 0
    with pytest.raises(CausalKitError, match="lr_shape"):
        ns["train_cgn_imagenet"](load_cgn_imagenet(cgn_file, device="cpu"),
                                 replace(ns["config"](), lr_shape=1e-2), tmp_path,
                                 features=ns["Maps"](), progress=False)


def nn_classifier():
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))


def test_fp16_needs_cuda_and_classes_must_exist(cgn_file, tmp_path):
    from generators.cgn.imagenet import load_cgn_imagenet

    ns = _namespace()
    cgn = load_cgn_imagenet(cgn_file, device="cpu")
    with pytest.raises(CausalKitError, match="fp16"):
        ns["train_cgn_imagenet"](cgn, ns["config"](precision="fp16"), tmp_path / "a",
                                 features=ns["Maps"](), progress=False)
    with pytest.raises(CausalKitError, match="do not exist"):
        ns["train_cgn_imagenet"](cgn, ns["config"](sample_classes=(15,)), tmp_path / "b",
                                 features=ns["Maps"](), progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _run(cgn_file: Path, out: Path, kill_at: int | None) -> subprocess.CompletedProcess:
    kill = (f"lambda done: os.kill(os.getpid(), signal.SIGKILL) if done == {kill_at} "
            "else None") if kill_at else "None"
    script = _SETUP + textwrap.dedent(f"""
        import os, signal
        cgn = load_cgn_imagenet({str(cgn_file)!r}, device="cpu")
        train_cgn_imagenet(cgn, config(), {str(out)!r}, features=Maps(), progress=False,
                           callback={kill})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def test_resume_after_kill_9_gives_the_same_bytes(cgn_file, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert _run(cgn_file, whole, None).returncode == 0
    killed = _run(cgn_file, cut, 5)  # after a mid-episode checkpoint (4): its gradients
    assert killed.returncode == -signal.SIGKILL
    assert not (cut / "cgn.pt").exists()
    done = _run(cgn_file, cut, None)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("checkpoint.pt", "cgn.pt", "log.jsonl", "samples/iter_0000003.png"):
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
