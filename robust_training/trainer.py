"""A small, seeded trainer for the MNIST-variant classifiers.

:class:`TrainData` gathers the sources of one run (real images, CGN samples,
counterfactuals, IRM environments) as uint8 images with three labels each, a
real/generated flag and an environment index; :func:`train_classifier` optimises any
registered objective on it; :func:`accuracy` scores a model on uint8 images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from causalkit.errors import CausalKitError
from robust_training.models import MultiHeadCNN, build_model
from robust_training.objectives import Objective, get_objective

__all__ = ["TrainData", "train_classifier", "accuracy", "predict", "SCHEDULES", "scheduled_lr",
           "random_translate", "check_options"]


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(127.5).sub(1.0)


@dataclass
class TrainData:
    """Training images (uint8 N x 3 x H x W) with labels (N, 3), ``real`` and ``env``."""

    images: torch.Tensor
    labels: torch.Tensor
    real: torch.Tensor
    env: torch.Tensor

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise CausalKitError(f"images must be uint8 (N, C, H, W), got "
                                 f"{self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (n, 3) or len(self.real) != n or len(self.env) != n:
            raise CausalKitError(f"{n} images need labels (N, 3), real (N,) and env (N,); got "
                                 f"{tuple(self.labels.shape)}, {len(self.real)}, {len(self.env)}")

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def real_images(cls, images, labels, env: int = 0) -> TrainData:
        """Real images: all three labels are the digit label."""
        x = torch.as_tensor(np.asarray(images))
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        return cls(x, y[:, None].repeat(1, 3), torch.ones(len(y), dtype=torch.bool),
                   torch.full((len(y),), env, dtype=torch.long))

    @classmethod
    def generated(cls, images, shape, texture, background, env: int = 0) -> TrainData:
        """Generated images with their three mechanism labels."""
        y = torch.as_tensor(np.stack([shape, texture, background], 1), dtype=torch.long)
        return cls(torch.as_tensor(np.asarray(images)), y,
                   torch.zeros(len(y), dtype=torch.bool),
                   torch.full((len(y),), env, dtype=torch.long))

    @staticmethod
    def concat(*parts: TrainData) -> TrainData:
        """All parts in one set."""
        return TrainData(*(torch.cat([getattr(p, f) for p in parts])
                           for f in ("images", "labels", "real", "env")))


#: Learning-rate schedules of :func:`train_classifier`.
SCHEDULES = ("constant", "cosine")


def scheduled_lr(lr: float, step: int, steps: int, schedule: str = "constant") -> float:
    """The learning rate at ``step`` of ``steps``: ``lr`` throughout (``"constant"``), or
    half a cosine wave from ``lr`` at step 0 towards 0 at the end (``"cosine"``)."""
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * step / steps))
    check_options(schedule, 0)  # anything but "constant" is an error
    return lr


def check_options(schedule: str, shift: int) -> None:
    """Raise :class:`CausalKitError` for an unknown ``schedule`` or a negative ``shift``."""
    if schedule not in SCHEDULES:
        raise CausalKitError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")
    if shift < 0:
        raise CausalKitError(f"shift must be >= 0 pixels, got {shift}")


def random_translate(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x`` by up to ``max_shift`` pixels in each direction, filling
    with the image's own border (replicate padding), so no new edge appears."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = torch.nn.functional.pad(x, [max_shift] * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen).tolist()
    return torch.stack([pad[i, :, a:a + h, b:b + w]
                        for i, (a, b) in enumerate(zip(dy, dx, strict=True))])


def train_classifier(objective: str | Objective, data: TrainData, *, epochs: float = 3,
                     steps: int | None = None, batch_size: int = 128, lr: float = 2e-3,
                     schedule: str = "constant", shift: int = 0, model: str = "cnn",
                     seed: int = 0,
                     device: str | torch.device | None = None, progress: bool = True,
                     ) -> tuple[MultiHeadCNN, list[dict]]:
    """Train a fresh model with ``objective`` on ``data`` (Adam, seeded batches).

    Parameters
    ----------
    objective : str or Objective
        A name in :data:`robust_training.objectives.OBJECTIVES` or an instance.
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
        ``"constant"`` learning rate, or ``"cosine"`` decay from ``lr`` to 0 over the run.
    shift : int
        Random translation of every training image by up to ``shift`` pixels (0: none).
    model : str
        ``"cnn"`` (the paper's), ``"cnn-bn"`` or a ResNet name
        (:func:`robust_training.models.build_model`).
    device : optional
        Defaults to CUDA when available.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    (MultiHeadCNN, list of dict)
        The model (eval mode) and a log record per 50 steps.
    """
    from tqdm import tqdm

    check_options(schedule, shift)
    obj = get_objective(objective) if isinstance(objective, str) else objective
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(model, obj.heads, seed=seed).to(device)
    model.predict_head = obj.predict_head  # type: ignore[attr-defined]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data)
    if steps is None:
        steps = max(1, int(round(epochs * n / batch_size)))
    elif steps < 1:
        raise CausalKitError(f"steps must be >= 1, got {steps}")
    per_epoch = max(1, n // batch_size)
    gen = torch.Generator().manual_seed(seed)
    aug = torch.Generator().manual_seed(seed + 1)  # own stream: batch order ignores shift
    history: list[dict] = []
    model.train()
    perm = torch.randperm(n, generator=gen)
    for step in tqdm(range(steps), desc=f"train {obj.name}", disable=not progress):
        pos = step % per_epoch
        if pos == 0 and step:
            perm = torch.randperm(n, generator=gen)
        idx = perm[pos * batch_size:(pos + 1) * batch_size]
        x = random_translate(_to_float(data.images[idx]), shift, aug)
        batch = {"x": x.to(device), "y": data.labels[idx].to(device),
                 "real": data.real[idx].to(device), "env": data.env[idx].to(device)}
        if obj.resets_optimizer(step):
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(lr, step, steps, schedule)
        loss, logs = obj.loss(model, batch, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            history.append({"step": step, "loss": loss.item(), **logs})
    return model.eval(), history


@torch.no_grad()
def predict(model: MultiHeadCNN, images, head: str | None = "default",
            batch: int = 1000) -> np.ndarray:
    """Predicted classes for uint8 images; ``head="default"`` uses the objective's head,
    ``None`` the mean of all heads' logits."""
    if head == "default":
        head = getattr(model, "predict_head", None) or model.head_names[0]
    model.eval()
    x = torch.as_tensor(np.asarray(images))
    device = next(model.parameters()).device
    out = [model.logits(_to_float(x[i:i + batch]).to(device), head).argmax(1).cpu()
           for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def accuracy(model: MultiHeadCNN, images, labels, head: str | None = "default") -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    pred = predict(model, images, head)
    return float(np.mean(pred == np.asarray(labels)))
