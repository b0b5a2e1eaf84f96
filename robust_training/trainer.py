"""Pooled training data and the classifier entry point of the CGN pipeline.

:class:`TrainData` gathers the sources of one run (real images, CGN samples,
counterfactuals, IRM environments) as uint8 images with three labels each, a
real/generated flag and an environment index; :class:`ShuffledData` serves it in
seeded epochs; :func:`train_classifier` optimises any registered objective on it with
:func:`robust_training.engine.fit`, the one training loop of the project;
:func:`accuracy` scores a model on uint8 images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from causalkit.errors import CausalKitError
from robust_training.engine import FitConfig, check_schedule, fit
from robust_training.streams import STREAM_IDS, to_float

__all__ = ["TrainData", "ShuffledData", "train_classifier", "accuracy", "predict",
           "random_translate", "check_options"]


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


def check_options(schedule: str, shift: int) -> None:
    """Raise :class:`CausalKitError` for an unknown ``schedule`` or a negative ``shift``."""
    check_schedule(schedule)
    _check_shift(shift)


def _check_shift(shift: int) -> None:
    if shift < 0:
        raise CausalKitError(f"shift must be >= 0 pixels, got {shift}")


def _translation_offsets(n: int, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    # the one draw of random_translate; ShuffledData replays it to skip steps
    return torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)


def random_translate(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x`` by up to ``max_shift`` pixels in each direction, filling
    with the image's own border (replicate padding), so no new edge appears."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = torch.nn.functional.pad(x, [max_shift] * 4, mode="replicate")
    dy, dx = _translation_offsets(n, max_shift, gen).tolist()
    return torch.stack([pad[i, :, a:a + h, b:b + w]
                        for i, (a, b) in enumerate(zip(dy, dx, strict=True))])


class ShuffledData:
    """A :class:`TrainData` as a batch source for :func:`robust_training.engine.fit`.

    Each epoch is a fresh permutation (the last partial batch is dropped), drawn from one
    generator seeded with ``seed``; the random translations come from a second one
    (``seed + 1``), so the batch order does not depend on ``shift``. Both streams are
    replayed on demand, which makes :meth:`batch` a pure function of ``step``: a resumed
    run sees the batches of an uninterrupted one, and DDP ranks slice the same global
    batch.
    """

    def __init__(self, data: TrainData, batch_size: int, seed: int = 0, shift: int = 0) -> None:
        _check_shift(shift)
        self.data, self.batch_size, self.seed, self.shift = data, batch_size, seed, shift
        self.per_epoch = max(1, len(data) // batch_size)
        self._perm_gen, self._epoch, self._perm = None, -1, None
        self._aug_gen, self._aug_step = None, 0

    def steps_per_epoch(self) -> int:
        """Steps per pass over the data."""
        return self.per_epoch

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm_gen is None or epoch < self._epoch:
            self._perm_gen = torch.Generator().manual_seed(self.seed)
            self._epoch = -1
        while self._epoch < epoch:
            self._perm = torch.randperm(len(self.data), generator=self._perm_gen)
            self._epoch += 1
        return self._perm

    def _translate(self, x: torch.Tensor, step: int) -> torch.Tensor:
        if self.shift <= 0:
            return x
        if self._aug_gen is None or step < self._aug_step:
            self._aug_gen, self._aug_step = torch.Generator().manual_seed(self.seed + 1), 0
        while self._aug_step < step:  # the draws of the steps skipped (a resume)
            _translation_offsets(len(x), self.shift, self._aug_gen)
            self._aug_step += 1
        self._aug_step += 1
        return random_translate(x, self.shift, self._aug_gen)

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The (rank's slice of the) batch of ``step``: keys x, y, real, env, stream."""
        epoch, pos = divmod(step, self.per_epoch)
        idx = self._permutation(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]
        d = self.data
        x = self._translate(to_float(d.images[idx]), step)
        real = d.real[idx]
        batch = {"x": x, "y": d.labels[idx], "real": real, "env": d.env[idx],
                 "stream": torch.where(real, STREAM_IDS["real"], STREAM_IDS["cf"]).long()}
        return {k: v[rank::world].to(device) for k, v in batch.items()}


def train_classifier(objective: str, data: TrainData, *, epochs: float = 3,
                     steps: int | None = None, batch_size: int = 128, lr: float = 2e-3,
                     schedule: str = "constant", shift: int = 0, model: str = "cnn",
                     optimizer: str = "adam", seed: int = 0, precision: str = "fp32",
                     hparams: dict[str, Any] | None = None,
                     out: str | os.PathLike | None = None,
                     device: str | torch.device | None = None, progress: bool = True,
                     ) -> tuple[nn.Module, dict[str, Any]]:
    """Train a fresh model with ``objective`` on ``data`` (seeded batches).

    The loop is :func:`robust_training.engine.fit` on a :class:`ShuffledData`, so a run
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
        ``"constant"``, ``"cosine"`` or ``"step"`` (:func:`~robust_training.engine.scheduled_lr`).
    optimizer : str
        ``"adam"`` or ``"adadelta"`` (:data:`~robust_training.engine.OPTIMIZERS`).
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
        The model (eval mode) and :func:`~robust_training.engine.fit`'s summary.
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
    return fit(ShuffledData(data, batch_size, seed=seed, shift=shift), config, out,
               device=device, progress=progress)


@torch.no_grad()
def predict(model: nn.Module, images, head: str | None = "default",
            batch: int = 1000) -> np.ndarray:
    """Predicted classes for uint8 images; ``head="default"`` uses the objective's head,
    ``None`` the mean of all heads' logits."""
    if head == "default":
        head = getattr(model, "predict_head", None) or model.head_names[0]
    model.eval()
    x = torch.as_tensor(np.asarray(images))
    device = next(model.parameters()).device
    out = [model.logits(to_float(x[i:i + batch]).to(device), head).argmax(1).cpu()
           for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def accuracy(model: nn.Module, images, labels, head: str | None = "default") -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    pred = predict(model, images, head)
    return float(np.mean(pred == np.asarray(labels)))
