"""The batched half of the ImageNet training augmentation, seeded row by row.

torchvision's ImageNet training transform is a random resized crop, a horizontal flip
and, in some recipes, a colour jitter, then the conversion to floats. The crop needs the
whole decoded image, whose size differs from image to image, so it runs where the image
is decoded (:func:`robust_training.imagenet_data.random_resized_crop`, in DataLoader
workers). What follows works on equal-sized crops and can run on a whole batch at once,
on the training device: this module.

Every random choice is drawn per row, before the batch is formed, by
:func:`draw_row_params` from the row's own generator (the caller seeds it from
``(seed, stream, step, row)``). Applying them (:func:`apply_batch`) draws nothing, so a
batch augmented on the GPU equals the batch augmented row by row in the workers, and
DDP rank ``r`` of ``w`` augments its rows exactly as one process would.

* **Flip**: probability 1/2, a pure index operation, exact on every device.
* **Colour jitter** (off by default, as in torchvision's reference ImageNet recipe):
  brightness, contrast and saturation factors drawn uniformly from ``[1 - j, 1 + j]``,
  applied in that fixed order with torchvision's formulas (brightness multiplies,
  contrast blends with the grey mean, saturation with the grey image, each clamped to
  ``[0, 1]``). The formulas run through kornia (``kornia.enhance``'s batched, per-row
  factor versions) and, when kornia is missing, through torchvision one row at a time;
  the two differ by the grey weights (0.299 vs 0.2989 red) below 1e-3.
* **Normalisation**: uint8 to float in ``[-1, 1]`` (``x / 127.5 - 1``).

Crops travel from the workers to the device as uint8, a quarter of the bytes of floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from causalkit.errors import CausalKitError

__all__ = ["JITTER_BACKENDS", "apply_batch", "check_jitter", "draw_row_params",
           "jitter_backend"]

JITTER_BACKENDS = ("auto", "kornia", "torchvision")


def check_jitter(jitter: float | Sequence[float]) -> tuple[float, float, float]:
    """``(brightness, contrast, saturation)`` strengths, each in ``[0, 1]``."""
    values = (jitter,) * 3 if isinstance(jitter, int | float) else tuple(jitter)
    if len(values) != 3 or any(isinstance(v, bool) or not isinstance(v, int | float)
                               or not 0 <= v <= 1 for v in values):
        raise CausalKitError(f"jitter must be a number in [0, 1] or three of them "
                             f"(brightness, contrast, saturation), got {jitter!r}")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def draw_row_params(rng: np.random.Generator, jitter: tuple[float, float, float], *,
                    flip: bool = True) -> tuple[bool, np.ndarray | None]:
    """One row's flip and jitter factors, drawn from ``rng`` after its crop.

    The flip is one ``rng.random()`` (as :func:`random_resized_crop` draws it); the three
    factors follow only when some strength is positive, so a run without jitter draws
    exactly what it always drew.
    """
    flipped = bool(flip and rng.random() < 0.5)
    if not any(jitter):
        return flipped, None
    factors = np.array([rng.uniform(max(0.0, 1 - j), 1 + j) for j in jitter], np.float32)
    return flipped, factors


def jitter_backend(name: str = "auto") -> str:
    """The library that applies colour jitter: kornia, else torchvision (``auto``)."""
    if name not in JITTER_BACKENDS:
        raise CausalKitError(f"unknown jitter backend {name!r}; use one of {JITTER_BACKENDS}")
    for candidate in (("kornia", "torchvision") if name == "auto" else (name,)):
        try:
            __import__(candidate)
            if candidate == "torchvision":
                import torchvision.transforms.v2.functional  # noqa: F401
        except Exception:  # torchvision's C++ ops may fail on import
            continue
        return candidate
    raise CausalKitError("colour jitter needs kornia (pip install kornia) or a working "
                         "torchvision; install one or pass jitter=0")


def _jitter(x: torch.Tensor, factors: torch.Tensor, backend: str) -> torch.Tensor:
    if backend == "kornia":
        from kornia.enhance import (
            adjust_brightness_accumulative,
            adjust_contrast_with_mean_subtraction,
            adjust_saturation_with_gray_subtraction,
        )

        x = adjust_brightness_accumulative(x, factors[:, 0])
        x = adjust_contrast_with_mean_subtraction(x, factors[:, 1])
        return adjust_saturation_with_gray_subtraction(x, factors[:, 2])
    from torchvision.transforms.v2 import functional as tvf

    rows = []
    for row, (b, c, s) in zip(x, factors.tolist(), strict=True):
        row = tvf.adjust_brightness(row, b)
        row = tvf.adjust_contrast(row, c)
        rows.append(tvf.adjust_saturation(row, s))
    return torch.stack(rows)


def apply_batch(x: torch.Tensor, flip: torch.Tensor | None = None,
                factors: torch.Tensor | None = None, *, backend: str = "auto") -> torch.Tensor:
    """uint8 crops ``(B, 3, H, W)`` -> float ``[-1, 1]``, flipped and jittered per row.

    ``flip`` is bool ``(B,)`` (``None``: the rows are flipped already); ``factors`` float
    ``(B, 3)`` (brightness, contrast, saturation) or ``None`` for no jitter. Runs on
    ``x``'s device, in place after the one float copy.
    """
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise CausalKitError(f"apply_batch takes uint8 (B, 3, H, W) crops, got {x.dtype} "
                             f"{tuple(x.shape)}")
    if flip is not None:
        x = torch.where(flip.to(x.device, torch.bool).view(-1, 1, 1, 1), x.flip(-1), x)
    out = x.float()
    if factors is None:
        return out.div_(127.5).sub_(1.0)
    out = _jitter(out.div_(255.0), factors.to(x.device, torch.float32), jitter_backend(backend))
    return out.mul_(2.0).sub_(1.0)
