"""The trainer: resume gives the uninterrupted run, DDP on 2 CPU processes, ResNet names."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from causalkit.errors import CausalKitError, DataError
from robust_training.engine import FitConfig, evaluate, fit, load_model
from robust_training.resnet import build_resnet, load_torchvision_weights, multi_head_resnet
from robust_training.streams import MultiStream, Stream


def _streams(seed=0, n=64, real_bs=16, int_bs=8):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randint(0, 60, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    x[:, 0] += (y * 19).to(torch.uint8)[:, None, None]  # label visible in the red channel
    xi = torch.randint(0, 255, (n // 2, 3, 32, 32), generator=g, dtype=torch.uint8)
    return MultiStream([Stream("real", x, y, real_bs),
                        Stream("int", xi, torch.arange(n // 2) % 10, int_bs)], seed=seed)


class TinyNet(torch.nn.Module):
    """BN-free, so DDP's averaged gradients equal the single-process full-batch ones."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, 2, 1)
        self.fc = torch.nn.Linear(4, 10)
        self.head_names = ("label",)

    def forward(self, x):
        return {"label": self.fc(self.conv(x).relu().mean(dim=(2, 3)))}

    def logits(self, x, head=None):
        return self(x)["label"]


def test_resume_equals_uninterrupted(tmp_path):
    cfg = FitConfig(objective="genint", steps=12, checkpoint_every=4, log_every=2, lr=1e-2)
    full, _ = fit(_streams(), cfg, tmp_path / "a", device="cpu", progress=False)
    part, info = fit(_streams(), cfg, tmp_path / "b", device="cpu", progress=False,
                     stop_after=6)
    assert info["steps"] == 6 and not (tmp_path / "b" / "model.pt").exists()
    resumed, info = fit(_streams(), cfg, tmp_path / "b", device="cpu", progress=False)
    assert info["steps"] == 12
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(a, b, msg=k)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6, 8, 10, 12]
    # A saved model reloads strictly and evaluates the same.
    again = load_model(tmp_path / "b")
    s = _streams()
    x, y = s.streams[0].images, s.streams[0].labels[:, 0]
    assert evaluate(again, x, y) == evaluate(resumed, x, y)
    with pytest.raises(CausalKitError, match="other settings"):
        fit(_streams(), FitConfig(objective="genint", steps=13), tmp_path / "b",
            device="cpu", progress=False)


def test_a_checkpoint_from_before_a_new_field_still_resumes(tmp_path):
    # checkpoints written before FitConfig.schedule and .optimizer existed lack them
    cfg = FitConfig(objective="erm", steps=4, checkpoint_every=2)
    fit(_streams(), cfg, tmp_path, device="cpu", progress=False, stop_after=2)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    old = json.loads(state["config"])
    del old["schedule"], old["optimizer"]
    state["config"] = json.dumps(old, sort_keys=True)
    torch.save(state, path)
    _, info = fit(_streams(), cfg, tmp_path, device="cpu", progress=False)
    assert info["steps"] == 4
    with pytest.raises(CausalKitError, match="other settings"):
        fit(_streams(), FitConfig(objective="erm", steps=4, schedule="cosine"), tmp_path,
            device="cpu", progress=False)
    with pytest.raises(CausalKitError, match="unknown schedule"):
        FitConfig(schedule="linear")
    with pytest.raises(CausalKitError, match="unknown optimizer"):
        FitConfig(optimizer="lamb")


def test_training_learns_something(tmp_path):
    cfg = FitConfig(objective="erm", steps=60, lr=3e-3)
    s = _streams()
    model, _ = fit(MultiStream([s.streams[0]]), cfg, None, device="cpu", progress=False)
    acc = evaluate(model, s.streams[0].images, s.streams[0].labels[:, 0])["accuracy"]
    assert acc > 0.5  # chance is 0.1


def test_bfloat16_autocast_on_cpu_learns_and_is_reproducible():
    cfg = FitConfig(objective="erm", steps=60, lr=3e-3, precision="bf16")
    s = _streams()
    real = MultiStream([s.streams[0]])
    model, _ = fit(real, cfg, None, device="cpu", progress=False)
    again, _ = fit(real, cfg, None, device="cpu", progress=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert next(model.parameters()).dtype == torch.float32  # autocast, not a cast model
    acc = evaluate(model, s.streams[0].images, s.streams[0].labels[:, 0])["accuracy"]
    assert acc > 0.5  # chance is 0.1
    with pytest.raises(CausalKitError, match="unknown precision"):
        FitConfig(precision="half")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out, steps):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = FitConfig(objective="genint", steps=steps, lr=1e-2, checkpoint_every=steps)
    model, _ = fit(_streams(), cfg, out, device="cpu", progress=False, model=TinyNet())
    torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_two_cpu_processes_match_single_process(tmp_path):
    steps = 5
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), steps), nprocs=2, join=True)
    s0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    cfg = FitConfig(objective="genint", steps=steps, lr=1e-2)
    single, _ = fit(_streams(), cfg, None, device="cpu", progress=False, model=TinyNet())
    for k, v in single.state_dict().items():
        torch.testing.assert_close(s0[k], s1[k])  # ranks agree
        torch.testing.assert_close(s0[k], v, atol=1e-5, rtol=1e-4)  # = the full batch
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "log.jsonl").is_file()


def _torchvision_resnet18_layout():
    """(name, shape) of torchvision's resnet18 state_dict, written from its known layout."""
    keys = [("conv1.weight", (64, 3, 7, 7))]
    keys += _bn("bn1", 64)
    cin = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            stride2 = stage > 1 and block == 0
            keys.append((f"{p}.conv1.weight", (width, cin if block == 0 else width, 3, 3)))
            keys += _bn(f"{p}.bn1", width)
            keys.append((f"{p}.conv2.weight", (width, width, 3, 3)))
            keys += _bn(f"{p}.bn2", width)
            if stride2:
                keys.append((f"{p}.downsample.0.weight", (width, cin, 1, 1)))
                keys += _bn(f"{p}.downsample.1", width)
        cin = width
    return keys + [("fc.weight", (1000, 512)), ("fc.bias", (1000,))]


def _bn(p, c):
    return [(f"{p}.weight", (c,)), (f"{p}.bias", (c,)), (f"{p}.running_mean", (c,)),
            (f"{p}.running_var", (c,)), (f"{p}.num_batches_tracked", ())]


def test_resnet18_has_torchvision_names_and_shapes(tmp_path):
    model = build_resnet("resnet18")
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == _torchvision_resnet18_layout()
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's count
    # A checkpoint file in that layout loads strictly.
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(s, generator=g) if s else torch.tensor(0))
             for k, s in _torchvision_resnet18_layout()}
    torch.save(state, tmp_path / "r18.pth")
    fresh = load_torchvision_weights(build_resnet("resnet18", seed=1), tmp_path / "r18.pth")
    torch.testing.assert_close(fresh.conv1.weight, state["conv1.weight"])
    del state["layer3.0.downsample.0.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="layer3.0.downsample.0.weight"):
        load_torchvision_weights(build_resnet("resnet18"), tmp_path / "bad.pth")


def test_resnet50_and_multi_head_forward():
    r50 = build_resnet("resnet50")
    assert sum(p.numel() for p in r50.parameters()) == 25_557_032  # torchvision's count
    assert tuple(r50.state_dict()["layer1.0.conv3.weight"].shape) == (256, 64, 1, 1)
    m = multi_head_resnet("resnet18", ("shape", "texture"), width=8)
    out = m(torch.zeros(2, 3, 32, 32))
    assert set(out) == {"shape", "texture"} and out["shape"].shape == (2, 10)


def test_bf16_is_native_answers_for_each_device(monkeypatch):
    from causalkit import precision

    assert precision.bf16_is_native("cpu") in (True, False)
    if not torch.cuda.is_available():
        assert precision.bf16_is_native("cuda") is False

    class NoOp:
        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(precision.torch.ops, "mkldnn", NoOp(), raising=False)
    assert precision.bf16_is_native("cpu") is False  # a torch without the check: say no
