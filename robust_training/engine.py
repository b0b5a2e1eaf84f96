"""The training loop for multi-stream objectives: devices, AMP, torchrun DDP, resume.

:func:`fit` optimises a registered objective (:mod:`robust_training.objectives`, plus
those of :mod:`robust_training.objectives_genint`) on a
:class:`~robust_training.streams.MultiStream`:

* **Devices.** CPU or CUDA; on CUDA the forward pass runs under ``torch.autocast``
  (float16) with a gradient scaler (``amp=True``). ``precision="bf16"`` runs it under
  bfloat16 autocast instead, on either device, without a scaler
  (:mod:`causalkit.precision`).
* **DDP.** Launched under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` in the environment),
  :func:`init_distributed` starts the process group -- ``gloo`` on CPU, ``nccl`` on CUDA
  -- and every rank takes the rows ``rank::world`` of each stream's batch, so the global
  batch is the same for any number of processes. DDP averages the gradients.
* **Checkpoints.** Every ``checkpoint_every`` steps rank 0 writes ``checkpoint.pt``
  atomically (model, optimiser, scaler, step). Calling :func:`fit` again on the same
  ``out`` resumes: batches are a pure function of ``(seed, step)``, so the resumed run
  sees the batches the uninterrupted one would have seen.
* **Logs.** ``log.jsonl`` gets one JSON line every ``log_every`` steps; a tqdm bar shows
  progress on rank 0.
* **Data.** Anything with ``batch(step, *, rank, world, device)`` returning the flat
  batch of :mod:`robust_training.objectives` as a pure function of ``step``: a
  :class:`~robust_training.streams.MultiStream` (GenInt's sources) or a
  :class:`~robust_training.trainer.ShuffledData` (one pooled set, the CGN pipeline).
* **Output.** ``model.pt`` (state dict) and ``model.json`` (how to rebuild it), loadable
  with :func:`load_model`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import robust_training.objectives_genint  # noqa: F401 - registers GenInt & baselines
from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write, atomic_write_text
from causalkit.precision import autocast as precision_autocast
from causalkit.precision import check_precision
from robust_training.models import build_model
from robust_training.objectives import Objective, get_objective
from robust_training.streams import MultiStream, to_float

__all__ = ["FitConfig", "fit", "load_model", "save_model", "evaluate",
           "init_distributed", "dist_info", "SCHEDULES", "check_schedule", "scheduled_lr",
           "OPTIMIZERS", "check_optimizer"]

#: Learning-rate schedules of :class:`FitConfig`.
SCHEDULES = ("constant", "cosine", "step")
#: Optimisers of :class:`FitConfig`: Adam (ours), or Adadelta, which the official CGN
#: MNIST classifier uses (lr 1.0 with the ``"step"`` schedule).
OPTIMIZERS = {"adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta}


def check_schedule(schedule: str) -> None:
    """Raise :class:`CausalKitError` unless ``schedule`` is one of :data:`SCHEDULES`."""
    if schedule not in SCHEDULES:
        raise CausalKitError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")


def scheduled_lr(lr: float, step: int, steps: int, schedule: str = "constant") -> float:
    """The learning rate at ``step`` of ``steps``: ``lr`` throughout (``"constant"``),
    half a cosine wave from ``lr`` at step 0 towards 0 at the end (``"cosine"``), or
    ``lr`` times 0.7 after each tenth of the run (``"step"``: the official CGN MNIST
    classifier's ``StepLR(gamma=0.7)`` over its 10 epochs)."""
    check_schedule(schedule)
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * step / steps))
    if schedule == "step":
        return lr * 0.7 ** (10 * step // steps)
    return lr


def check_optimizer(name: str) -> None:
    """Raise :class:`CausalKitError` unless ``name`` is one of :data:`OPTIMIZERS`."""
    if name not in OPTIMIZERS:
        raise CausalKitError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


def _optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr,
                                        weight_decay=config.weight_decay)


@dataclass
class FitConfig:
    """Settings of one training run (stored with checkpoints; a resume must match).

    Attributes
    ----------
    objective
        A registered objective name (``erm``, ``genint``, ``genint-transfer``,
        ``gan-aug``, ``mixup``, ``irm``, ``cgn-heads``).
    steps
        Optimisation steps.
    lr, weight_decay
        Optimiser settings.
    optimizer
        ``"adam"`` or ``"adadelta"`` (:data:`OPTIMIZERS`).
    schedule
        ``"constant"`` learning rate, ``"cosine"`` decay towards 0 over the run, or
        ``"step"`` (times 0.7 per tenth of the run); see :func:`scheduled_lr`.
    seed
        Seeds the model's initialisation (the streams carry their own seed).
    model
        ``"cnn"`` (the MNIST CNN), one of its variants (``"cnn-bn"``, ``"cnn-cn"``:
        :data:`robust_training.models.MODELS`) or a ResNet name (``"resnet18"`` ...).
    width
        First-stage width of a ResNet (64 as torchvision; smaller for CPU runs).
    hparams
        Objective hyper-parameters (e.g. ``{"lambda1": 1.0}``).
    amp
        Mixed precision (float16) on CUDA; ignored on CPU and under ``precision="bf16"``.
    precision
        ``"fp32"``, or ``"bf16"``: bfloat16 autocast on CPU or CUDA.
    log_every, checkpoint_every
        In steps.
    """

    objective: str = "erm"
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    optimizer: str = "adam"
    seed: int = 0
    model: str = "cnn"
    width: int = 64
    hparams: dict[str, Any] = field(default_factory=dict)
    amp: bool = True
    precision: str = "fp32"
    log_every: int = 50
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        for f in ("steps", "log_every", "checkpoint_every"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise CausalKitError(f"FitConfig.{f} must be a positive int, got {v!r}")
        check_precision(self.precision)
        if not self.lr > 0:
            raise CausalKitError(f"FitConfig.lr must be positive, got {self.lr}")
        check_schedule(self.schedule)
        check_optimizer(self.optimizer)


def _same_config(saved_json: str, config: FitConfig) -> bool:
    # a field added after the checkpoint was written counts as its default
    return {**asdict(FitConfig()), **json.loads(saved_json)} == asdict(config)


# -- distributed --------------------------------------------------------------------------
def dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed(device: torch.device | str | None = None) -> torch.device:
    """Start the process group when launched by torchrun; return this rank's device.

    ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per local rank). Without torchrun's
    environment (``WORLD_SIZE`` unset or 1) nothing is started.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if world > 1 and not torch.distributed.is_initialized():
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return device


# -- models -------------------------------------------------------------------------------
def save_model(model: nn.Module, folder: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write ``model.pt`` and ``model.json`` (``model``, ``width``, ``heads``,
    ``predict_head`` and anything else in ``meta``) atomically."""
    folder = Path(folder)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.pt", lambda fh: torch.save(state, fh))
    atomic_write_text(folder / "model.json", json.dumps(meta, indent=2) + "\n")
    return folder


def load_model(folder: str | os.PathLike, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`fit` (strict keys, ``weights_only``)."""
    folder = Path(folder)
    if not (folder / "model.json").is_file() or not (folder / "model.pt").is_file():
        raise DataError(f"{folder} is not a trained-model folder (model.json + model.pt); "
                        "train one with `causalkit train --out DIR`")
    meta = json.loads((folder / "model.json").read_text())
    model = build_model(meta["model"], tuple(meta["heads"]), width=meta.get("width", 64))
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise DataError(f"{folder / 'model.pt'} does not match {meta['model']}: missing "
                        f"{missing[:8]}, unexpected {unexpected[:8]}")
    model.load_state_dict(state, strict=True)
    model.predict_head = meta.get("predict_head")  # type: ignore[attr-defined]
    return model.to(device).eval()


@torch.no_grad()
def evaluate(model: nn.Module, images, labels, *, head: str | None = "default",
             batch_size: int = 1000) -> dict[str, float]:
    """Accuracy (and mean cross-entropy) of ``model`` on uint8 ``images``."""
    if head == "default":
        head = getattr(model, "predict_head", None) or model.head_names[0]
    model.eval()
    x = torch.as_tensor(np.asarray(images))
    y = torch.as_tensor(np.asarray(labels)).long()
    dev = next(model.parameters()).device
    correct, ce = 0, 0.0
    for i in range(0, len(x), batch_size):
        logits = model.logits(to_float(x[i:i + batch_size]).to(dev), head).float()
        yy = y[i:i + batch_size].to(dev)
        correct += int((logits.argmax(1) == yy).sum())
        ce += float(nn.functional.cross_entropy(logits, yy, reduction="sum"))
    return {"accuracy": correct / max(len(x), 1), "ce": ce / max(len(x), 1), "n": len(x)}


# -- the loop -----------------------------------------------------------------------------
def fit(streams: MultiStream | Any, config: FitConfig, out: str | os.PathLike | None = None, *,
        device: torch.device | str | None = None, progress: bool = True,
        model: nn.Module | None = None, stop_after: int | None = None
        ) -> tuple[nn.Module, dict[str, Any]]:
    """Train with ``config.objective`` on ``streams``; resume from ``out`` when possible.

    Parameters
    ----------
    streams
        The data: a :class:`~robust_training.streams.MultiStream` (every step sees one
        batch of each stream) or any object with the same ``batch`` method.
    config
        Run settings.
    out
        Run folder for ``checkpoint.pt``, ``log.jsonl``, ``model.pt`` / ``model.json``;
        ``None`` keeps everything in memory.
    device
        Default: CUDA when available. Under torchrun, :func:`init_distributed` picks the
        local GPU.
    progress
        tqdm bar on rank 0.
    model
        Train this module instead of building ``config.model`` (it must return a dict of
        logits with the objective's heads).
    stop_after
        Stop (after checkpointing) once this many steps are done, without finishing the
        run -- for tests and for splitting a run over sessions.

    Returns
    -------
    (nn.Module, dict)
        The unwrapped model in eval mode and ``{"steps", "seconds", "last"}``.
    """
    from tqdm.auto import tqdm

    obj: Objective = get_objective(config.objective, **config.hparams)
    device = init_distributed(device)
    rank, world = dist_info()
    if model is None:
        model = build_model(config.model, obj.heads, seed=config.seed, width=config.width)
    model = model.to(device)
    opt = _optimizer(model, config)
    use_amp = bool(config.amp and device.type == "cuda" and config.precision == "fp32")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    out_dir = Path(out) if out is not None else None
    start = 0
    ckpt = out_dir / "checkpoint.pt" if out_dir is not None else None
    cfg_json = json.dumps(asdict(config), sort_keys=True)
    if ckpt is not None and ckpt.is_file():
        st = torch.load(ckpt, map_location="cpu", weights_only=True)
        if not _same_config(st["config"], config):
            raise CausalKitError(f"{ckpt} was written by a run with other settings; use a new "
                                 "--out folder or the same settings to resume")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        scaler.load_state_dict(st["scaler"])
        start = int(st["step"])
    net: nn.Module = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    main = rank == 0
    if out_dir is not None and main:
        out_dir.mkdir(parents=True, exist_ok=True)
    log_fh = open(out_dir / "log.jsonl", "a") if (out_dir is not None and main) else None
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    t0, last = time.perf_counter(), {}
    bar = tqdm(range(start, end), initial=start, total=config.steps,
               disable=not (progress and main),
               desc=f"train {obj.name}", dynamic_ncols=True)
    autocast = (torch.autocast("cuda", dtype=torch.float16) if use_amp
                else precision_autocast(device, config.precision))

    def save_ckpt(step: int) -> None:
        if ckpt is None or not main:
            return
        st = {"model": model.state_dict(), "optimizer": opt.state_dict(),
              "scaler": scaler.state_dict(), "step": step, "config": cfg_json}
        atomic_write(ckpt, lambda fh: torch.save(st, fh))

    try:
        model.train()
        for step in bar:
            batch = streams.batch(step, rank=rank, world=world, device=device)
            if obj.resets_optimizer(step):
                opt = _optimizer(model, config)
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(config.lr, step, config.steps, config.schedule)
            with autocast:
                loss, logs = obj.loss(net, batch, step)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            done = step + 1
            last = {"loss": float(loss.detach()), **logs}
            if not np.isfinite(last["loss"]):
                raise CausalKitError(f"the loss became {last['loss']} at step {done}; lower "
                                     "the learning rate or check the data")
            if log_fh is not None and (done % config.log_every == 0 or done == end):
                log_fh.write(json.dumps({"step": done, **last, "seconds": round(
                    time.perf_counter() - t0, 3)}) + "\n")
                log_fh.flush()
                bar.set_postfix(loss=f"{last['loss']:.3f}")
            if done % config.checkpoint_every == 0 or done == end:
                save_ckpt(done)
    finally:
        bar.close()
        if log_fh is not None:
            log_fh.close()
    steps_done = max(start, end)
    if out_dir is not None and main and steps_done >= config.steps:
        save_model(model, out_dir, {"model": config.model, "width": config.width,
                                    "heads": list(obj.heads), "predict_head": obj.predict_head,
                                    "objective": config.objective, "steps": steps_done,
                                    "fit_config": asdict(config)})
    model.predict_head = obj.predict_head  # type: ignore[attr-defined]
    return model.eval(), {"steps": steps_done, "seconds": round(time.perf_counter() - t0, 3),
                          "last": last}
