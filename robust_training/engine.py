"""The training loop of the project: devices, AMP, torchrun DDP, resume; and scoring.

:func:`fit` optimises a registered objective (:mod:`robust_training.objectives`, plus
those of :mod:`robust_training.objectives_genint`) on a
:class:`~robust_training.streams.MultiStream` or a
:class:`~robust_training.streams.PooledStream` (:func:`train_classifier` is ``fit`` on a
fresh model and a pooled :class:`~robust_training.streams.TrainData`):

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
  :class:`~robust_training.streams.PooledStream` (one pooled set, the CGN pipeline).
* **Output.** ``model.pt`` (state dict) and ``model.json`` (how to rebuild it), loadable
  with :func:`load_model`.
* **Epochs.** With ``steps_per_epoch`` (given, or the source's ``steps_per_epoch()``),
  ``on_epoch(epoch, model)`` runs on rank 0 after each epoch and its dict goes to
  ``log.jsonl`` as ``{"epoch": e, "step": s, ...}`` -- how a pipeline scores OOD
  benchmarks per epoch. The record is written before that step's checkpoint, so a run
  killed in between logs the epoch again after the resume and a resumed log holds each
  epoch once.
* **ImageNet.** ``stem="imagenet"`` builds a ResNet with torchvision's stem and the
  ImageNet normalisation inside (:class:`~robust_training.imagenet_classifier.ImageNetHeads`)
  with ``n_classes`` outputs; ``pretrained`` starts it from a torchvision-format
  checkpoint (:func:`~robust_training.resnet.init_from_torchvision`).

The optimisers and schedules include those of GenInt's ImageNet training
(``training/main_consise_combine.py`` and ``training/mix_up.py`` of
cvlab-columbia/GenInt, with the commands of its ``training/README.md``):

* SGD with momentum 0.9 and weight decay 1e-4 (the scripts' defaults); from scratch at
  lr 0.1 for 90 epochs, times 0.1 every 30 epochs (``adjust_learning_rate``): here
  ``optimizer="sgd", schedule="multistep", milestones=[30, 60], milestone_unit="epoch",
  gamma=0.1``. ResNet-18 GenInt trains so from scratch (``-b 256 --batch_size_2 64
  --lambda_1 0.05``), each epoch cut at 1,000,000 real images (``--datanum``; not for
  ResNet-152).
* Fine-tuning (``--finetune``, ``adjust_finetune_learning_rate``): a constant lr, times
  0.1 only after epoch 120 (ResNet-152: after ``--decrease``, default 100), which the
  ResNet-152 runs (8 to 40 epochs) never reach. ResNet-152 GenInt fine-tunes the
  ImageNet-pretrained model with Adam at lr 1e-5 for 8 epochs (``-b 256 --batch_size_2
  64 --lambda_1 0.05 --adam``; the released model's name says ``lam02``); GenInt with
  transfer fine-tunes with SGD at lr 1e-3 for 40 epochs from a model first trained
  with the transfer stream (``-b 192 --batch_size_2 64 --batch_size_3 64 --lambda_1 0.2
  --lambda_2 0.2``; in that script's ``train_3`` the second loader, weighted by
  ``lambda_1``, is the transferred set and the third, whose loss gets ``+ lambda_2``,
  the interventional one); mixup fine-tunes with SGD at lr 1e-3 for 30 epochs
  (``mix_up.py``, Beta(0.4, 0.4)).
* No warm-up in the official scripts; ``warmup_steps`` is the usual linear warm-up of
  large-batch multi-GPU training (Goyal et al., 2017), off by default.

Scoring: :func:`evaluate` (accuracy and cross-entropy), :func:`accuracy` (its accuracy)
and :func:`predict` (the classes) run a trained model on uint8 images in batches.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import robust_training.objectives_genint  # noqa: F401 - registers GenInt & baselines
from causalkit.devices import resolve_device
from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write_text, read_json, save_torch
from causalkit.logs import append_record, cut_log
from causalkit.precision import autocast as precision_autocast
from causalkit.precision import check_precision
from causalkit.resume import load_checkpoint, save_checkpoint
from causalkit.weights import load_weights
from generators.base import default_device
from generators.images import to_float
from robust_training.models import build_model
from robust_training.objectives import Objective, get_objective
from robust_training.streams import MultiStream, PooledStream, TrainData, check_shift

__all__ = ["FitConfig", "fit", "train_classifier", "load_model", "save_model", "evaluate",
           "accuracy", "predict", "init_distributed", "dist_info", "SCHEDULES",
           "check_schedule", "check_options", "scheduled_lr", "OPTIMIZERS", "check_optimizer",
           "milestone_steps", "build_fit_model", "STEMS", "MILESTONE_UNITS"]

#: Learning-rate schedules of :class:`FitConfig`.
SCHEDULES = ("constant", "cosine", "step", "multistep")
#: Optimisers of :class:`FitConfig`: Adam (ours), Adadelta, which the official CGN
#: MNIST classifier uses (lr 1.0 with the ``"step"`` schedule), or SGD with momentum
#: (``momentum``, ``nesterov``), which GenInt's ImageNet training uses.
OPTIMIZERS = {"adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta,
              "sgd": torch.optim.SGD}
#: What a ``"multistep"`` milestone counts: a fraction of the run's steps, or epochs.
MILESTONE_UNITS = ("fraction", "epoch")
#: Model inputs: ``"small"`` (32x32: the CNNs, and ResNets with a 3x3 stride-1 stem) or
#: ``"imagenet"`` (torchvision's ResNet stem and the ImageNet normalisation inside).
STEMS = ("small", "imagenet")


def check_schedule(schedule: str) -> None:
    """Raise :class:`CausalKitError` unless ``schedule`` is one of :data:`SCHEDULES`."""
    if schedule not in SCHEDULES:
        raise CausalKitError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")


def check_options(schedule: str, shift: int) -> None:
    """Raise :class:`CausalKitError` for an unknown ``schedule`` or a negative ``shift``
    (the options of :func:`train_classifier`)."""
    check_schedule(schedule)
    check_shift(shift)


def scheduled_lr(lr: float, step: int, steps: int, schedule: str = "constant", *,
                 milestones: tuple[int, ...] = (), gamma: float = 0.1,
                 warmup_steps: int = 0) -> float:
    """The learning rate at ``step`` of ``steps``: ``lr`` throughout (``"constant"``),
    half a cosine wave from ``lr`` at step 0 towards 0 at the end (``"cosine"``),
    ``lr`` times 0.7 after each tenth of the run (``"step"``: the official CGN MNIST
    classifier's ``StepLR(gamma=0.7)`` over its 10 epochs), or ``lr`` times ``gamma``
    for each of the ``milestones`` (steps) reached (``"multistep"``: GenInt's ImageNet
    schedule, times 0.1 at epochs 30 and 60; :func:`milestone_steps`).

    With ``warmup_steps``, the first steps scale that rate linearly, by ``(step + 1) /
    warmup_steps``.

    >>> [scheduled_lr(0.1, s, 90, "multistep", milestones=(30, 60)) for s in (29, 30, 60)]
    [0.1, 0.010000000000000002, 0.0010000000000000002]
    >>> scheduled_lr(0.1, 0, 90, warmup_steps=4)
    0.025
    """
    check_schedule(schedule)
    if schedule == "cosine":
        rate = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
    elif schedule == "step":
        rate = lr * 0.7 ** (10 * step // steps)
    elif schedule == "multistep":
        rate = lr * gamma ** sum(step >= m for m in milestones)
    else:
        rate = lr
    if step < warmup_steps:
        rate *= (step + 1) / warmup_steps
    return rate


def milestone_steps(config: FitConfig, steps_per_epoch: int | None = None) -> tuple[int, ...]:
    """``config.milestones`` as step numbers: fractions of ``config.steps``, or epochs of
    ``steps_per_epoch`` steps (which must then be given)."""
    if config.milestone_unit == "epoch":
        if steps_per_epoch is None:
            raise CausalKitError("milestones in epochs need the steps per epoch; pass "
                                 "fit(..., steps_per_epoch=N) or a source with "
                                 "steps_per_epoch(), or give milestones as fractions")
        return tuple(int(round(m * steps_per_epoch)) for m in config.milestones)
    return tuple(int(round(m * config.steps)) for m in config.milestones)


def check_optimizer(name: str) -> None:
    """Raise :class:`CausalKitError` unless ``name`` is one of :data:`OPTIMIZERS`."""
    if name not in OPTIMIZERS:
        raise CausalKitError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


def _optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    extra: dict[str, Any] = ({"momentum": config.momentum, "nesterov": config.nesterov}
                             if config.optimizer == "sgd" else {})
    return OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr,
                                        weight_decay=config.weight_decay, **extra)


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CausalKitError(f"FitConfig.{name} must be an int >= {minimum}, got {value!r}")


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
        ``"adam"``, ``"adadelta"`` or ``"sgd"`` (:data:`OPTIMIZERS`).
    momentum, nesterov
        SGD's momentum (0.9: GenInt's and torchvision's ImageNet recipe) and Nesterov
        momentum; other optimisers ignore them.
    schedule
        ``"constant"`` learning rate, ``"cosine"`` decay towards 0 over the run,
        ``"step"`` (times 0.7 per tenth of the run) or ``"multistep"`` (times ``gamma``
        at each of ``milestones``); see :func:`scheduled_lr`.
    milestones, milestone_unit, gamma
        The ``"multistep"`` decays: ascending milestones as fractions of the run
        (``"fraction"``, each in (0, 1)) or in epochs (``"epoch"``, which needs the
        steps per epoch: :func:`fit`'s ``steps_per_epoch``); the factor per milestone.
    warmup_steps
        Linear warm-up of the learning rate over the first steps (0: none).
    seed
        Seeds the model's initialisation (the streams carry their own seed).
    model
        ``"cnn"`` (the MNIST CNN), one of its variants (``"cnn-bn"``, ``"cnn-cn"``:
        :data:`robust_training.models.MODELS`) or a ResNet name (``"resnet18"`` ...).
    width
        First-stage width of a ResNet (64 as torchvision; smaller for CPU runs).
    n_classes
        Classes per head (10 for the MNIST variants, 1000 for ImageNet).
    stem
        ``"small"`` (32x32 inputs) or ``"imagenet"`` (a ResNet with torchvision's stem
        and the ImageNet normalisation inside; :data:`STEMS`).
    pretrained, pretrained_fc
        A torchvision-format ResNet checkpoint to fine-tune from (strict keys, loaded
        before the first step; a resume reads its own checkpoint instead), and what
        happens to its ``fc``: ``"keep"`` copies it into the heads (the class counts
        must match), ``"new"`` trains new heads.
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
    momentum: float = 0.9
    nesterov: bool = False
    milestones: list[float] = field(default_factory=list)
    milestone_unit: str = "fraction"
    gamma: float = 0.1
    warmup_steps: int = 0
    n_classes: int = 10
    stem: str = "small"
    pretrained: str | None = None
    pretrained_fc: str = "keep"

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
        self._check_sgd_and_schedule()
        self._check_model()

    def _check_sgd_and_schedule(self) -> None:
        if not 0 <= self.momentum < 1:
            raise CausalKitError(f"FitConfig.momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise CausalKitError("nesterov needs optimizer 'sgd' with a momentum above 0")
        if self.milestone_unit not in MILESTONE_UNITS:
            raise CausalKitError(f"unknown milestone unit {self.milestone_unit!r}; choose one "
                                 f"of {list(MILESTONE_UNITS)}")
        try:
            self.milestones = [float(m) for m in self.milestones]
        except (TypeError, ValueError):
            raise CausalKitError(f"FitConfig.milestones must be numbers, got "
                                 f"{self.milestones!r}") from None
        ms = self.milestones
        if self.schedule == "multistep" and not ms:
            raise CausalKitError("schedule 'multistep' needs milestones (e.g. 30,60 epochs "
                                 "or 0.33,0.67 of the run)")
        if ms and self.schedule != "multistep":
            raise CausalKitError(f"milestones apply to schedule 'multistep', not "
                                 f"{self.schedule!r}")
        if any(b <= a for a, b in zip(ms, ms[1:], strict=False)) or any(
                not math.isfinite(m) or m <= 0 for m in ms):
            raise CausalKitError(f"milestones must be positive and ascending, got {ms}")
        if self.milestone_unit == "fraction" and any(m >= 1 for m in ms):
            raise CausalKitError(f"milestones as fractions of the run lie in (0, 1), got {ms}"
                                 "; for epochs set milestone_unit 'epoch'")
        if not self.gamma > 0:
            raise CausalKitError(f"FitConfig.gamma must be positive, got {self.gamma}")
        _positive_int("warmup_steps", self.warmup_steps, minimum=0)

    def _check_model(self) -> None:
        from robust_training.resnet import PRETRAINED_FC, RESNETS

        _positive_int("n_classes", self.n_classes, minimum=2)
        if self.stem not in STEMS:
            raise CausalKitError(f"unknown stem {self.stem!r}; choose one of {list(STEMS)}")
        if self.stem == "imagenet" and self.model not in RESNETS:
            raise CausalKitError(f"stem 'imagenet' needs a ResNet model, got {self.model!r}; "
                                 f"choose one of {sorted(RESNETS)}")
        if self.pretrained is not None:
            if self.model not in RESNETS:
                raise CausalKitError(f"pretrained torchvision weights need a ResNet model, "
                                     f"got {self.model!r}")
            self.pretrained = str(self.pretrained)
        if self.pretrained_fc not in PRETRAINED_FC:
            raise CausalKitError(f"unknown pretrained_fc {self.pretrained_fc!r}; choose one "
                                 f"of {list(PRETRAINED_FC)}")


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
        device = default_device()
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
def build_fit_model(name: str, heads: tuple[str, ...], *, seed: int = 0, width: int = 64,
                    n_classes: int = 10, stem: str = "small") -> nn.Module:
    """The model :func:`fit` trains for ``FitConfig(model=name, stem=stem, ...)``:
    :func:`robust_training.models.build_model` for ``stem="small"``, a multi-head
    ImageNet ResNet (:func:`~robust_training.imagenet_classifier.build_imagenet_classifier`,
    inputs in ``[-1, 1]``, normalised inside) for ``stem="imagenet"``."""
    if stem == "imagenet":
        from robust_training.imagenet_classifier import build_imagenet_classifier

        return build_imagenet_classifier(name, heads=tuple(heads), n_classes=n_classes,
                                         width=width, seed=seed)
    return build_model(name, tuple(heads), seed=seed, width=width, n_classes=n_classes)


def save_model(model: nn.Module, folder: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write ``model.pt`` and ``model.json`` (``model``, ``width``, ``heads``,
    ``predict_head`` and anything else in ``meta``) atomically."""
    folder = Path(folder)
    save_torch(folder / "model.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()})
    atomic_write_text(folder / "model.json", json.dumps(meta, indent=2) + "\n")
    return folder


def load_model(folder: str | os.PathLike, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`fit` (strict keys, ``weights_only``)."""
    folder = Path(folder)
    device = resolve_device(device)
    if not (folder / "model.json").is_file() or not (folder / "model.pt").is_file():
        raise DataError(f"{folder} is not a trained-model folder (model.json + model.pt); "
                        "train one with `causalkit train --out DIR`")
    fix = "retrain into a new --out folder, or restore the model.json the run wrote"
    meta = read_json(folder / "model.json", what="model description", keys=("model", "heads"),
                     fix=fix)
    heads, width = meta["heads"], meta.get("width", 64)
    n_classes, stem = meta.get("n_classes", 10), meta.get("stem", "small")
    if (not isinstance(meta["model"], str) or not isinstance(heads, list) or not heads
            or not all(isinstance(h, str) for h in heads)
            or not isinstance(width, int) or isinstance(width, bool) or width < 1
            or not isinstance(n_classes, int) or isinstance(n_classes, bool)
            or n_classes < 2 or stem not in STEMS):
        raise DataError(f"model description {folder / 'model.json'} is malformed (needs a "
                        "model name, a list of head names, a positive integer width and "
                        f"n_classes >= 2, a stem of {list(STEMS)}); " + fix)
    try:
        model = build_fit_model(meta["model"], tuple(heads), width=width,
                                n_classes=n_classes, stem=stem)
    except CausalKitError as exc:
        raise DataError(f"model description {folder / 'model.json'}: {exc}") from None
    load_weights(model, folder / "model.pt", what=f"the {meta['model']} model of model.json",
                 hint="Keep model.pt with the model.json it was written with, or retrain "
                 "into a new --out folder.")
    model.predict_head = meta.get("predict_head")  # type: ignore[attr-defined]
    return model.to(device).eval()


def _batched_logits(model: nn.Module, x: torch.Tensor, head: str | None,
                    batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    # (first row, float logits on the model's device) per batch of uint8 images x, in
    # eval mode; head "default": the objective's head, None: the mean of all heads
    if head == "default":
        head = getattr(model, "predict_head", None) or model.head_names[0]
    model.eval()
    dev = next(model.parameters()).device
    for i in range(0, len(x), batch_size):
        yield i, model.logits(to_float(x[i:i + batch_size]).to(dev), head).float()


@torch.no_grad()
def predict(model: nn.Module, images, head: str | None = "default",
            batch_size: int = 1000) -> np.ndarray:
    """Predicted classes (int64) for uint8 ``images``; ``head="default"`` uses the
    objective's head, ``None`` the mean of all heads' logits."""
    x = torch.as_tensor(np.asarray(images))
    out = [logits.argmax(1).cpu() for _, logits in _batched_logits(model, x, head, batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def evaluate(model: nn.Module, images, labels, *, head: str | None = "default",
             batch_size: int = 1000) -> dict[str, float]:
    """Accuracy (and mean cross-entropy) of ``model`` on uint8 ``images``; ``head`` as in
    :func:`predict`."""
    x = torch.as_tensor(np.asarray(images))
    y = torch.as_tensor(np.asarray(labels)).long()
    correct, ce = 0, 0.0
    for i, logits in _batched_logits(model, x, head, batch_size):
        yy = y[i:i + batch_size].to(logits.device)
        correct += int((logits.argmax(1) == yy).sum())
        ce += float(nn.functional.cross_entropy(logits, yy, reduction="sum"))
    return {"accuracy": correct / max(len(x), 1), "ce": ce / max(len(x), 1), "n": len(x)}


def accuracy(model: nn.Module, images, labels, head: str | None = "default") -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``
    (:func:`evaluate`'s accuracy)."""
    return evaluate(model, images, labels, head=head)["accuracy"]


# -- the loop -----------------------------------------------------------------------------
def fit(streams: MultiStream | Any, config: FitConfig, out: str | os.PathLike | None = None, *,
        device: torch.device | str | None = None, progress: bool = True,
        model: nn.Module | None = None, stop_after: int | None = None,
        on_epoch: Callable[[int, nn.Module], dict[str, Any] | None] | None = None,
        steps_per_epoch: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train with ``config.objective`` on ``streams``; resume from ``out`` when possible.

    Parameters
    ----------
    streams
        The data: a :class:`~robust_training.streams.MultiStream` (every step sees one
        batch of each stream), a :class:`~robust_training.streams.PooledStream` or any
        object with the same ``batch`` method.
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
    on_epoch
        ``on_epoch(epoch, model)`` after each epoch (1, 2, ...) on rank 0, with the
        unwrapped model in eval mode (back in train mode afterwards); a dict it returns
        is logged as ``{"epoch": epoch, "step": step, **result}``. The epoch's record
        and a checkpoint follow at once, so a resume neither repeats nor skips an
        epoch's record. Under DDP the other ranks wait for rank 0 at the next step's
        gradient exchange, so an evaluation must finish within the process group's
        timeout (``nccl``: 10 minutes unless ``TORCH_NCCL_...`` settings say otherwise).
    steps_per_epoch
        Steps of one epoch (default: the source's ``steps_per_epoch()`` when it has
        one); needed by ``on_epoch`` and by milestones in epochs.

    Returns
    -------
    (nn.Module, dict)
        The unwrapped model in eval mode and ``{"steps", "seconds", "last"}``.
    """
    from causalkit.progress import progress as progress_bar

    obj: Objective = get_objective(config.objective, **config.hparams)
    if steps_per_epoch is None and callable(getattr(streams, "steps_per_epoch", None)):
        steps_per_epoch = streams.steps_per_epoch()  # None: the source does not say
    if steps_per_epoch is not None:
        _positive_int("steps_per_epoch", steps_per_epoch)
    elif on_epoch is not None:
        raise CausalKitError("on_epoch needs the steps per epoch; pass steps_per_epoch= or "
                             "a source with steps_per_epoch()")
    milestones = milestone_steps(config, steps_per_epoch)
    device = init_distributed(device)
    rank, world = dist_info()
    if model is None:
        model = build_fit_model(config.model, obj.heads, seed=config.seed, width=config.width,
                                n_classes=config.n_classes, stem=config.stem)
    use_amp = bool(config.amp and device.type == "cuda" and config.precision == "fp32")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    out_dir = Path(out) if out is not None else None
    start = 0
    ckpt = out_dir / "checkpoint.pt" if out_dir is not None else None
    cfg_json = json.dumps(asdict(config), sort_keys=True)
    # a field added after the checkpoint was written counts as its default
    st = (load_checkpoint(ckpt, config=cfg_json, what="other settings",
                          defaults=asdict(FitConfig()),
                          keys=("model", "optimizer", "scaler", "step"))
          if ckpt is not None else None)
    if st is None and config.pretrained is not None:
        from robust_training.resnet import init_from_torchvision

        init_from_torchvision(model, config.pretrained, fc=config.pretrained_fc)
    model = model.to(device)
    opt = _optimizer(model, config)
    if st is not None:
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
        # the log ends where the checkpoint does: no step twice, no torn line
        cut_log(out_dir / "log.jsonl", start)
    log_fh = open(out_dir / "log.jsonl", "a") if (out_dir is not None and main) else None
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    t0, last = time.perf_counter(), {}
    bar = progress_bar(range(start, end), initial=start, total=config.steps,
                       enabled=progress and main, desc=f"train {obj.name}")
    autocast = (torch.autocast("cuda", dtype=torch.float16) if use_amp
                else precision_autocast(device, config.precision))

    def save_ckpt(step: int) -> None:
        if ckpt is None or not main:
            return
        save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scaler": scaler.state_dict(), "step": step,
                               "config": cfg_json})

    def end_epoch(done: int) -> None:
        if on_epoch is None or not main:
            return
        model.eval()
        model.predict_head = obj.predict_head  # type: ignore[attr-defined]
        result = on_epoch(done // steps_per_epoch, model)
        model.train()
        if log_fh is not None:
            append_record(log_fh, {"epoch": done // steps_per_epoch, "step": done,
                                   **(result or {})})

    try:
        model.train()
        for step in bar:
            batch = streams.batch(step, rank=rank, world=world, device=device)
            if obj.resets_optimizer(step):
                opt = _optimizer(model, config)
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(config.lr, step, config.steps, config.schedule,
                                           milestones=milestones, gamma=config.gamma,
                                           warmup_steps=config.warmup_steps)
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
                append_record(log_fh, {"step": done, **last,
                                       "seconds": round(time.perf_counter() - t0, 3)})
                bar.set_postfix(loss=f"{last['loss']:.3f}")
            epoch_end = steps_per_epoch is not None and done % steps_per_epoch == 0
            if epoch_end:
                end_epoch(done)
            if done % config.checkpoint_every == 0 or done == end or (
                    epoch_end and on_epoch is not None):
                save_ckpt(done)
    finally:
        bar.close()
        if log_fh is not None:
            log_fh.close()
    steps_done = max(start, end)
    if out_dir is not None and main and steps_done >= config.steps:
        save_model(model, out_dir, {"model": config.model, "width": config.width,
                                    "n_classes": config.n_classes, "stem": config.stem,
                                    "heads": list(obj.heads), "predict_head": obj.predict_head,
                                    "objective": config.objective, "steps": steps_done,
                                    "fit_config": asdict(config)})
    model.predict_head = obj.predict_head  # type: ignore[attr-defined]
    return model.eval(), {"steps": steps_done, "seconds": round(time.perf_counter() - t0, 3),
                          "last": last}


def train_classifier(objective: str, data: TrainData, *, epochs: float = 3,
                     steps: int | None = None, batch_size: int = 128, lr: float = 2e-3,
                     schedule: str = "constant", shift: int = 0, model: str = "cnn",
                     optimizer: str = "adam", seed: int = 0, precision: str = "fp32",
                     hparams: dict[str, Any] | None = None,
                     out: str | os.PathLike | None = None,
                     device: str | torch.device | None = None, progress: bool = True,
                     ) -> tuple[nn.Module, dict[str, Any]]:
    """Train a fresh model with ``objective`` on ``data`` (seeded batches).

    The loop is :func:`fit` on a :class:`~robust_training.streams.PooledStream`, so a run
    with ``out`` checkpoints and resumes, and runs under torchrun and on CUDA with AMP.

    Parameters
    ----------
    objective : str
        A name in :data:`robust_training.objectives.OBJECTIVES`.
    data : TrainData
        The training set.
    epochs : float
        Passes over ``data`` (fractions allowed).
    steps : int, optional
        Number of optimisation steps; overrides ``epochs`` (equal budgets across
        methods whose data sets differ in size).
    batch_size, lr, seed : int, float, int
        Optimisation settings; same seed, same model.
    schedule : str
        ``"constant"``, ``"cosine"`` or ``"step"`` (:func:`scheduled_lr`).
    optimizer : str
        ``"adam"`` or ``"adadelta"`` (:data:`OPTIMIZERS`).
    shift : int
        Random translation of every training image by up to ``shift`` pixels (0: none).
    model : str
        ``"cnn"`` (the paper's), ``"cnn-bn"``, ``"cnn-cn"`` or a ResNet name
        (:func:`robust_training.models.build_model`).
    precision : str
        ``"fp32"``, or ``"bf16"``: forward passes under bfloat16 autocast
        (:mod:`causalkit.precision`).
    hparams : dict, optional
        The objective's hyper-parameters (e.g. ``{"aux_weight": 0.1}``).
    out : path, optional
        Run folder (checkpoint, log, model); ``None`` keeps everything in memory.
    device : optional
        Defaults to CUDA when available.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    (nn.Module, dict)
        The model (eval mode) and :func:`fit`'s summary.
    """
    if not isinstance(objective, str):
        raise CausalKitError(f"objective must be a registered name, got {objective!r}; "
                             "pass its settings as hparams=")
    check_options(schedule, shift)
    n = len(data)
    if steps is None:
        steps = max(1, int(round(epochs * n / batch_size)))
    elif steps < 1:
        raise CausalKitError(f"steps must be >= 1, got {steps}")
    config = FitConfig(objective=objective, steps=steps, lr=lr, schedule=schedule,
                       optimizer=optimizer, seed=seed, model=model, precision=precision,
                       hparams=dict(hparams or {}))
    return fit(PooledStream(data, batch_size, seed=seed, shift=shift), config, out,
               device=device, progress=progress)
