"""U^2-Net saliency in torch: the full ``u2net`` and the small ``u2netp``.

The CGN on ImageNet turns its shape mechanism's pre-mask into a mask with a frozen
U^2-Net, and penalises the U^2-Net's saliency of the background; both need the network
in torch, differentiable. This package holds it:

* :class:`U2Net` (:mod:`generators.u2net.model`): the network, with the authors' module
  names; ``U2Net(x)`` maps RGB in ``[0, 1]`` to saliency in ``[0, 1]`` at the same size;
* :func:`build_u2net`: a seeded random initialisation (tests, speed benchmarks);
* :func:`load_u2net`: weights from rembg's ``u2netp.onnx`` (batch norm folded;
  :mod:`generators.u2net.onnx_weights`) or the authors' ``u2net.pth`` / ``u2netp.pth``
  (:mod:`generators.u2net.pth_weights`), both strict;
* :func:`saliency`: resize to the 320 x 320 the network was trained at, run, resize
  back, all differentiable.

Example::

    from generators.u2net import load_u2net, saliency
    net = load_u2net("../shared/data/u2netp/u2netp.onnx")
    mask = saliency(net, images)          # images (B, 3, H, W) in [0, 1]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from causalkit.errors import CausalKitError
from generators.u2net.model import IMAGENET_MEAN, IMAGENET_STD, KINDS, U2Net, preprocess

__all__ = ["U2Net", "KINDS", "INPUT_SIZE", "IMAGENET_MEAN", "IMAGENET_STD", "preprocess",
           "build_u2net", "load_u2net", "saliency"]

#: the side length the authors train and test at (``RescaleT(320)``)
INPUT_SIZE = 320


def build_u2net(kind: str = "u2netp", *, seed: int = 0, batch_norm: bool = True) -> U2Net:
    """A randomly initialised :class:`U2Net` in eval mode; same ``seed``, same weights.

    The initialisation is torch's default for each layer, drawn from a private
    generator state (the global RNG is left as it was)."""
    if kind not in KINDS:
        raise CausalKitError(f"unknown U^2-Net kind {kind!r}; use one of {list(KINDS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = U2Net(kind, batch_norm=batch_norm)
    return model.eval()


def load_u2net(path: str | os.PathLike, *, kind: str | None = None) -> U2Net:
    """A :class:`U2Net` (eval mode) with the weights in ``path``.

    ``.onnx``: an exported model with batch norm folded into the convolutions (rembg's
    ``u2netp.onnx``), read with the ``onnx`` package into ``U2Net(kind,
    batch_norm=False)``. ``.pth`` / ``.pt``: a state dict in the authors' layout
    (``u2net.pth``, ``u2netp.pth``), read with ``weights_only=True`` and checked strictly.
    ``kind`` is inferred from the tensors when not given, and checked when given.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from generators.u2net.onnx_weights import load_u2net_onnx

        return load_u2net_onnx(path, kind=kind)
    if suffix in (".pth", ".pt"):
        from generators.u2net.pth_weights import load_u2net_pth

        return load_u2net_pth(path, kind=kind)
    raise CausalKitError(f"U^2-Net weights {path} end in {suffix or 'no suffix'!r}; pass a "
                         ".onnx export (u2netp.onnx) or a .pth state dict (u2net.pth)")


def saliency(model: U2Net, x: torch.Tensor, *, size: int | None = INPUT_SIZE,
             minmax: bool = False) -> torch.Tensor:
    """The saliency ``(B, 1, H, W)`` of images ``x`` (B, 3, H, W) in ``[0, 1]``.

    The images are resized to ``size x size`` (bilinear, antialiased when shrinking), run
    through ``model`` (which normalises them) and the map is resized back to ``H x W``
    (bilinear); ``size=None`` runs at the input size. ``minmax=True`` rescales each map
    to span ``[0, 1]``, as the authors' test script and rembg do before thresholding.
    Differentiable in ``x``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise CausalKitError(f"saliency wants images (B, 3, H, W), got {shape}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise CausalKitError(f"size must be an int of at least 8 (or None), got {size!r}")
    h, w = x.shape[-2:]
    inp = x
    if size is not None and (h, w) != (size, size):
        inp = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                            antialias=size < max(h, w))
    out = model(inp)
    if out.shape[-2:] != (h, w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    if minmax:
        lo = out.amin(dim=(1, 2, 3), keepdim=True)
        hi = out.amax(dim=(1, 2, 3), keepdim=True)
        out = (out - lo) / (hi - lo).clamp_min(1e-8)
    return out
