"""Training of the ImageNet CGN: the official recipe, resumable, logged, seeded.

The authors train without data: every iteration draws a noise vector ``u`` and one class
``y``, feeds both to the three mechanisms and to the frozen BigGAN, and reconstructs the
BigGAN's image from the composite (:mod:`generators.cgn.imagenet.losses`). Gradients of
``batch_acc`` iterations are summed (not averaged, as officially; Adam is nearly
invariant to the scale) before each of the three Adam optimisers steps: one optimiser
step is an *episode*. The official run is 300 episodes of 4,000 iterations at batch 1.

:func:`train_cgn_imagenet` writes under its run folder ``out``:

* ``checkpoint.pt`` -- the three mechanisms' weights (with their spectral-norm vectors),
  the optimisers, the gradients accumulated so far in the episode, the fp16 gradient
  scaler and the iteration, every ``checkpoint_every`` iterations, atomically. The
  frozen BigGAN and U^2-Net are not stored; their digest is, and a resume with other
  frozen weights is refused. A call on the same ``out`` resumes, and a run killed with
  ``kill -9`` and resumed ends with the bytes of an uninterrupted run: each iteration's
  noise, classes and patch draws come from a generator seeded by ``(seed, iteration)``.
* ``log.jsonl`` -- one line per ``log_every`` iterations: iteration, episode, every loss,
  their sum, the mean mask and the fraction of mask pixels above 0.5 (and the
  Inception score at sample iterations when a classifier is given);
* ``samples/iter_XXXXXXX.png`` -- every ``sample_every`` iterations (and at the first):
  one row per class of ``sample_classes`` from a fixed noise vector: pre-mask, mask,
  foreground, background, composite, and the BigGAN's image;
* ``cgn.pt`` -- the trained CGN at the end
  (:func:`~generators.cgn.imagenet.checkpoint.load_cgn_imagenet`).

Precision: ``"fp32"``; ``"bf16"`` (bfloat16 autocast, CPU or CUDA, no scaler); ``"fp16"``
(float16 autocast with a gradient scaler, CUDA only).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from causalkit import resume
from causalkit.errors import CausalKitError
from causalkit.io import load_torch
from causalkit.logs import append_record, cut_log
from generators.base import check_truncation, truncated_normal
from generators.cgn.imagenet.checkpoint import save_cgn_imagenet
from generators.cgn.imagenet.losses import LOSS_NAMES, LossWeights, cgn_losses
from generators.cgn.imagenet.model import MECHANISMS, CGNImageNet

__all__ = ["CGNImageNetTrainConfig", "TrainResult", "train_cgn_imagenet", "inception_score",
           "iteration_generator", "OFFICIAL_SAMPLE_CLASSES", "PRECISIONS", "FREE_FIELDS"]

#: the classes of the official sample sheets (``imagenet/train_cgn.py``)
OFFICIAL_SAMPLE_CLASSES = (15, 251, 330, 382, 385, 483, 559, 751, 938, 947, 999)
PRECISIONS = ("fp32", "bf16", "fp16")
#: settings that may change when a run resumes (its length and its logging)
FREE_FIELDS = ("episodes", "log_every", "sample_every", "checkpoint_every")


@dataclass(frozen=True)
class CGNImageNetTrainConfig:
    """Settings of a training run; the defaults are the official ones.

    Attributes
    ----------
    episodes : int
        Optimiser steps (official: 300).
    batch_acc : int
        Iterations whose gradients each step sums (official: 4,000).
    batch_size : int
        Images per iteration (official: 1).
    truncation : float
        Of the noise and the BigGANs (official: 1.0).
    lr_shape, lr_texture, lr_background : float
        Adam learning rates (official: 8e-6, 3e-5, 1e-5).
    betas : (float, float)
        Adam's betas (official: torch's defaults, (0.9, 0.999)).
    losses : LossWeights
        Loss weights and L_text's patch sampling (official values).
    classes : tuple of int, optional
        Train on these classes only (default all).
    precision : {"fp32", "bf16", "fp16"}
        See the module docstring.
    seed : int
        Seed of the noise, class and patch draws and of the fixed sample noise.
    checkpoint_every, log_every, sample_every : int
        Intervals in iterations (the official code saves every 4,000).
    sample_classes : tuple of int
        The rows of the sample sheets (official: 11 classes; they must exist).
    """

    episodes: int = 300
    batch_acc: int = 4000
    batch_size: int = 1
    truncation: float = 1.0
    lr_shape: float = 8e-6
    lr_texture: float = 3e-5
    lr_background: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    losses: LossWeights = field(default_factory=LossWeights)
    classes: tuple[int, ...] | None = None
    precision: str = "fp32"
    seed: int = 0
    checkpoint_every: int = 4000
    log_every: int = 1
    sample_every: int = 4000
    sample_classes: tuple[int, ...] = OFFICIAL_SAMPLE_CLASSES

    def __post_init__(self) -> None:
        for name in ("episodes", "batch_acc", "batch_size", "checkpoint_every", "log_every",
                     "sample_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CausalKitError(f"{name} must be a positive integer, got {value!r}")
        check_truncation(self.truncation)
        for name in ("lr_shape", "lr_texture", "lr_background"):
            if not getattr(self, name) > 0:
                raise CausalKitError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.precision not in PRECISIONS:
            raise CausalKitError(f"unknown precision {self.precision!r}; choose one of "
                                 f"{list(PRECISIONS)}")
        if isinstance(self.losses, dict):
            object.__setattr__(self, "losses", LossWeights(**self.losses))
        if not self.sample_classes:
            raise CausalKitError("sample_classes must name at least one class")

    @property
    def iterations(self) -> int:
        """Iterations of the whole run: ``episodes * batch_acc``."""
        return self.episodes * self.batch_acc

    def learning_rates(self) -> dict[str, float]:
        """Mechanism name -> its Adam learning rate."""
        return {"shape": self.lr_shape, "texture": self.lr_texture,
                "background": self.lr_background}


@dataclass
class TrainResult:
    """What a run leaves: the trained CGN, its folder and how long this call took."""

    cgn: CGNImageNet
    out: Path
    iterations: int
    seconds: float
    model_path: Path


def iteration_generator(seed: int, iteration: int, *, stream: int = 0) -> torch.Generator:
    """The CPU generator of one iteration's draws: a function of ``(seed, iteration)``
    (``stream=1`` is the fixed sample noise's)."""
    state = np.random.SeedSequence([seed, stream, iteration]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def inception_score(logits: torch.Tensor) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` of classifier logits (N, K), ``p(y)`` their mean."""
    p = torch.softmax(logits.double(), dim=1)
    marginal = p.mean(dim=0, keepdim=True)
    kl = (p * (torch.log(p.clamp_min(1e-30)) - torch.log(marginal.clamp_min(1e-30)))).sum(1)
    return float(torch.exp(kl.mean()))


def _frozen_digest(cgn: CGNImageNet) -> str:
    h = hashlib.sha256()
    for part in (cgn.biggan_GT, cgn.u2net):
        for name, t in part.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _check(cgn: CGNImageNet, config: CGNImageNetTrainConfig, device: torch.device) -> None:
    k = cgn.num_classes
    bad = [c for c in (*config.sample_classes, *(config.classes or ())) if not 0 <= c < k]
    if bad:
        raise CausalKitError(f"classes {bad} do not exist in a {k}-class BigGAN; set "
                             f"sample_classes (and classes) to ids below {k}")
    if config.precision == "fp16" and device.type != "cuda":
        raise CausalKitError("precision 'fp16' needs CUDA; use 'bf16' or 'fp32' on the CPU")


def _draw(cgn: CGNImageNet, config: CGNImageNetTrainConfig, gen: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    u = truncated_normal(config.batch_size, cgn.dim_z, config.truncation, generator=gen)
    pool = (torch.arange(cgn.num_classes) if config.classes is None
            else torch.as_tensor(config.classes))
    y = pool[torch.randint(len(pool), (config.batch_size,), generator=gen)]
    return u.to(cgn.device), y.to(cgn.device)


@torch.no_grad()
def _sample_sheet(cgn: CGNImageNet, u_fixed: torch.Tensor, config: CGNImageNetTrainConfig,
                  path: Path, classifier: nn.Module | None) -> float | None:
    from generators.images import save_grid

    was_training = cgn.training
    cgn.eval()
    try:
        rows, images = [], []
        for y in config.sample_classes:
            yy = torch.tensor([y], device=cgn.device)
            out = cgn(u_fixed, yy, truncation=config.truncation)
            x_gt = cgn.ground_truth(u_fixed, yy, config.truncation)
            pre = out.premask.expand(-1, 3, -1, -1)
            mask = out.mask.expand(-1, 3, -1, -1) * 2 - 1
            rows += [pre, mask, out.foreground, out.background, out.image, x_gt]
            images.append(out.image)
        save_grid(torch.cat(rows).float().cpu(), path, nrow=6)
        if classifier is None:
            return None
        x = (torch.cat(images) + 1) / 2
        return inception_score(classifier(x).float())
    finally:
        cgn.train(was_training)


def train_cgn_imagenet(cgn: CGNImageNet, config: CGNImageNetTrainConfig,
                       out: str | os.PathLike, *, features: nn.Module | None = None,
                       classifier: nn.Module | None = None,
                       fixed_noise: torch.Tensor | str | os.PathLike | None = None,
                       progress: bool = True,
                       callback: Callable[[int], None] | None = None) -> TrainResult:
    """Train (or resume training) ``cgn`` with the official recipe.

    Parameters
    ----------
    cgn : CGNImageNet
        The model, on the device to train on (its mechanisms are trained in place).
    config : CGNImageNetTrainConfig
        The run's settings; a resumed run must have the same, except
        :data:`FREE_FIELDS`.
    out : path
        Run folder (module docstring).
    features : nn.Module, optional
        The perceptual feature extractor (``[0, 1]`` images -> list of feature maps, one
        per weight of ``config.losses.perc`` and ``.text``); default
        :func:`generators.perceptual.perceptual_features` with no spec (its fallback,
        with a warning). The official one is VGG16 (``"vgg16:PATH"``).
    classifier : nn.Module, optional
        Maps ``[0, 1]`` images to logits; logs the Inception score of each sample sheet.
    fixed_noise : tensor (1, dim_z) or path, optional
        The sample sheets' noise (the official ``u_fixed.pth``); default drawn from the
        seed.
    progress : bool
        Show a progress bar.
    callback : callable, optional
        Called with the number of finished iterations after each iteration (tests use it
        to kill the process at a given step).
    """
    from causalkit.progress import postfix
    from causalkit.progress import progress as progress_bar

    if not isinstance(cgn, CGNImageNet):
        raise CausalKitError(f"train_cgn_imagenet trains a CGNImageNet, got "
                             f"{type(cgn).__name__}")
    device = cgn.device
    _check(cgn, config, device)
    if features is None:
        from generators.perceptual import perceptual_features

        features = perceptual_features(None)
    features = features.to(device).eval().requires_grad_(False)
    if classifier is not None:
        classifier = classifier.to(device).eval()
    if fixed_noise is None:
        u_fixed = truncated_normal(1, cgn.dim_z, config.truncation,
                                   generator=iteration_generator(config.seed, 0, stream=1))
    elif isinstance(fixed_noise, torch.Tensor):
        u_fixed = fixed_noise
    else:
        u_fixed = load_torch(fixed_noise, what="fixed noise file")
    if not isinstance(u_fixed, torch.Tensor) or tuple(u_fixed.shape) != (1, cgn.dim_z):
        raise CausalKitError(f"the fixed noise must be a (1, {cgn.dim_z}) tensor, got "
                             f"{getattr(u_fixed, 'shape', type(u_fixed).__name__)}")
    u_fixed = u_fixed.float().to(device)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    ckpt_path, log_path = out / "checkpoint.pt", out / "log.jsonl"
    run_config = {**asdict(config), "frozen_sha256": _frozen_digest(cgn),
                  "premask_channels": cgn.premask_channels, "u2net_input": cgn.u2net_input}
    opts = {name: torch.optim.Adam(cgn.mechanism(name).parameters(), lr=lr,
                                   betas=tuple(config.betas))
            for name, lr in config.learning_rates().items()}
    scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
    state = resume.load_checkpoint(ckpt_path, config=run_config, what="other settings",
                                   free=FREE_FIELDS, keys=("iteration", "mechanisms"),
                                   hint="episodes and the logging intervals may change")
    start = 0
    if state is not None:
        start = int(state["iteration"])
        for name, attr in MECHANISMS.items():
            getattr(cgn, attr).load_state_dict(state["mechanisms"][name])
            opts[name].load_state_dict(state["optimizers"][name])
        grads = state.get("grads")
        if grads:
            params = [p for name in MECHANISMS for p in cgn.mechanism(name).parameters()]
            for p, g in zip(params, grads, strict=True):
                p.grad = None if g is None else g.to(device)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
    cut_log(log_path, start, key="iteration")

    def save_checkpoint(it: int) -> None:
        params = [p for name in MECHANISMS for p in cgn.mechanism(name).parameters()]
        mid_episode = it % config.batch_acc != 0
        resume.save_checkpoint(ckpt_path, {
            "config": run_config, "iteration": it,
            "mechanisms": {name: {k: v.detach().cpu() for k, v in
                                  getattr(cgn, attr).state_dict().items()}
                           for name, attr in MECHANISMS.items()},
            "optimizers": {name: opt.state_dict() for name, opt in opts.items()},
            "grads": ([None if p.grad is None else p.grad.detach().cpu() for p in params]
                      if mid_episode else []),
            "scaler": scaler.state_dict() if scaler is not None else {},
        })

    total = config.iterations
    t0 = time.perf_counter()
    cgn.train()
    bar = progress_bar(range(start, total), enabled=progress, desc="CGN ImageNet",
                       total=total, initial=start)
    with open(log_path, "a", encoding="utf-8") as log:
        for i in bar:
            gen = iteration_generator(config.seed, i)
            u, y = _draw(cgn, config, gen)
            with _autocast(device, config.precision):
                x_gt = cgn.ground_truth(u, y, config.truncation)
                o = cgn(u, y, truncation=config.truncation)
                x_gen = o.image
                bg_saliency = cgn.saliency(o.background)
                losses = cgn_losses(features=features, x_gen=x_gen.float(),
                                    x_gt=x_gt.float(), mask=o.mask.float(),
                                    foreground=o.foreground.float(),
                                    bg_saliency=bg_saliency.float(),
                                    weights=config.losses, generator=gen)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise CausalKitError(f"the loss became {float(loss)} at iteration {i}; lower "
                                     "the learning rates or use precision 'fp32'")
            (scaler.scale(loss) if scaler is not None else loss).backward()
            done = i + 1
            if done % config.batch_acc == 0:
                for opt in opts.values():
                    if scaler is not None:
                        scaler.step(opt)
                    else:
                        opt.step()
                    opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.update()
            score = None
            if i % config.sample_every == 0:
                score = _sample_sheet(cgn, u_fixed, config, out / "samples" /
                                      f"iter_{i:07d}.png", classifier)
            if done % config.log_every == 0 or score is not None:
                mask = o.mask.detach().float()
                record = {"iteration": done, "episode": done // config.batch_acc,
                          **{k: float(losses[k].detach()) for k in LOSS_NAMES},
                          "loss": float(loss.detach()),
                          "mask_mean": float(mask.mean()),
                          "mask_above_half": float((mask > 0.5).float().mean())}
                if score is not None:
                    record["inception_score"] = score
                append_record(log, record)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(postfix(loss=record["loss"], mask=record["mask_mean"]))
            if done % config.checkpoint_every == 0 or done == total:
                log.flush()
                save_checkpoint(done)
            if callback is not None:
                callback(done)
    model_path = save_cgn_imagenet(cgn, out / "cgn.pt")
    return TrainResult(cgn=cgn, out=out, iterations=total - start,
                       seconds=time.perf_counter() - t0, model_path=model_path)

