"""Numeric precision of training and inference: float32, or bfloat16 autocast.

``"fp32"`` computes in float32 throughout. ``"bf16"`` runs forward passes under
:func:`torch.autocast` with ``torch.bfloat16`` on the CPU as on CUDA: convolutions and
matrix products take bfloat16 inputs, while parameters, optimiser states and the ops
autocast keeps in float32 (reductions, losses) stay in float32. bfloat16 has float32's
range, so unlike float16 it needs no gradient scaling. On CPUs with AMX or AVX-512 BF16
(Intel Sapphire Rapids and later) convolutions run about twice as fast; elsewhere they
may run slower. Results differ from float32 ones, so a run records its precision and
resumes only under the same one; the same seed gives the same output on one machine.
"""

from __future__ import annotations

import contextlib

import torch

from causalkit.errors import CausalKitError

__all__ = ["PRECISIONS", "check_precision", "autocast", "bf16_is_native"]

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise."""
    if precision not in PRECISIONS:
        raise CausalKitError(f"unknown precision {precision!r}; choose one of "
                             f"{list(PRECISIONS)} (bf16: bfloat16 autocast)")
    return precision


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """The context for forward passes at ``precision`` on ``device``'s type: a
    :func:`torch.autocast` to bfloat16 for ``"bf16"``, nothing for ``"fp32"``."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def bf16_is_native(device: torch.device | str) -> bool:
    """Whether ``device`` has bfloat16 arithmetic in hardware: a CUDA GPU of compute
    capability 8 or later, or a CPU on which oneDNN runs bfloat16 kernels (AVX-512
    BF16 or AMX). Elsewhere ``"bf16"`` still works but may run slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:  # oneDNN's own check; a private op, so absent ones count as no
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
