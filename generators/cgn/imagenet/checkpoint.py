"""ImageNet CGN weights on disk: our own files and the official ``cgn.pth``, strict keys.

Our file (:func:`save_cgn_imagenet`) is one torch file holding the model's options (the
BigGAN config, the U^2-Net kind, the pre-mask and noise settings) as JSON and its state
dict; :func:`load_cgn_imagenet` rebuilds the architecture from the options alone (no
pretrained download) and loads the weights with a strict key and shape check.

The official ImageNet CGN (autonomousvision/counterfactual_generative_networks,
``imagenet/weights/cgn.pth``) is the plain ``state_dict()`` of its ``CGN`` module,
perhaps saved from ``nn.DataParallel`` (``module.`` prefixes, which the official loader
strips). Its keys lie under the module's five children:

``biggan_GT.*``, ``f_shape.*``, ``f_text.*``, ``f_bg.*``
    four BigGAN-deep-256 generators in pytorch-pretrained-biggan's layout
    (``embeddings.weight``, ``generator.gen_z.weight_orig``, ``generator.layers.<i>...``,
    the stored BatchNorm statistics ``running_means`` / ``running_vars``);
``u2net.*``
    the full U^2-Net (``stage1.rebnconvin.conv_s1.weight`` ...).

:class:`~generators.cgn.imagenet.model.CGNImageNet` has the same children under the same
names, so :func:`load_official_cgn_imagenet` builds one and loads the file into it with
:func:`causalkit.weights.check_state_dict`: a missing, unexpected or mis-shaped tensor is
an error that lists each (the official loader of the BigGAN weights uses
``strict=False`` and would ignore them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from causalkit.errors import CausalKitError
from causalkit.io import load_torch, save_torch
from causalkit.weights import check_state_dict
from generators.cgn.imagenet.model import BIGGAN_DEEP_256, CGNImageNet

__all__ = ["save_cgn_imagenet", "load_cgn_imagenet", "load_official_cgn_imagenet",
           "build_architecture", "FORMAT", "OFFICIAL_CHILDREN"]

FORMAT = "causalkit-cgn-imagenet"
#: the children of the official ``CGN`` module, i.e. the first parts of its keys
OFFICIAL_CHILDREN = ("biggan_GT", "f_shape", "f_text", "f_bg", "u2net")


def build_architecture(*, biggan_config: dict[str, Any], u2net_kind: str,
                       u2net_batch_norm: bool = True, premask_channels: int = 3,
                       u2net_input: str = "official",
                       noise: str = "shared", truncation: float = 1.0,
                       meta: bool = False) -> CGNImageNet:
    """A CGN with the given architecture and unset weights (to load a state dict into).

    ``u2net_batch_norm=False`` is the U^2-Net with batch norm folded into its convolutions
    (as read from an ONNX export). ``meta=True`` puts the BigGANs on the meta device
    (shapes without memory): enough to check a state dict's keys and shapes before
    building the real model.
    """
    from generators.biggan import BigGANGenerator, build_biggan
    from generators.u2net import build_u2net

    if u2net_kind not in ("u2net", "u2netp"):
        raise CausalKitError(f"unknown U^2-Net kind {u2net_kind!r}; use 'u2net' or 'u2netp'")
    if meta:
        with torch.device("meta"):
            biggan = build_biggan(biggan_config)
    else:
        biggan = BigGANGenerator(build_biggan(biggan_config), device="cpu").module
    return CGNImageNet(biggan, build_u2net(u2net_kind, seed=0, batch_norm=u2net_batch_norm),
                       premask_channels=premask_channels, u2net_input=u2net_input,
                       noise=noise, truncation=truncation)


def save_cgn_imagenet(cgn: CGNImageNet, path: str | os.PathLike) -> Path:
    """Write ``cgn``'s options and weights to one torch file, atomically."""
    options = cgn.options()
    if options["u2net_kind"] is None:
        raise CausalKitError("the CGN's U^2-Net does not say its kind ('u2net' or 'u2netp'); "
                             "build it with generators.u2net")
    state = {k: v.detach().cpu() for k, v in cgn.state_dict().items()}
    return save_torch(path, {"format": FORMAT, "options": json.dumps(options, sort_keys=True),
                             "state_dict": state})


def _device(cgn: CGNImageNet, device: str | torch.device | None) -> CGNImageNet:
    from generators.base import default_device

    return cgn.to(device if device is not None else default_device())


def load_cgn_imagenet(path: str | os.PathLike, *, device: str | torch.device | None = None
                      ) -> CGNImageNet:
    """Read a file of :func:`save_cgn_imagenet` (strict keys); in eval mode on ``device``.

    Raises
    ------
    CausalKitError
        The file is no CGN file of this format (an official ``cgn.pth`` is read by
        :func:`load_official_cgn_imagenet`), or its weights do not fit its options.
    """
    blob = load_torch(path, what="ImageNet CGN file")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        keys = sorted(blob)[:3] if isinstance(blob, dict) else type(blob).__name__
        hint = (" it looks like the official cgn.pth: use load_official_cgn_imagenet"
                if isinstance(blob, dict) and any(str(k).startswith(("f_shape.", "module."))
                                                  for k in blob) else "")
        raise CausalKitError(f"{path} is not an ImageNet CGN file written by "
                             f"save_cgn_imagenet (found {keys});{hint or ' use a file it wrote'}")
    options = json.loads(blob["options"])
    check_state_dict(build_architecture(**options, meta=True), blob["state_dict"],
                     source=str(path), what="its saved options",
                     hint="The file is damaged or was edited; save the model again.")
    cgn = build_architecture(**options)
    cgn.load_state_dict(blob["state_dict"], strict=True)
    return _device(cgn, device)


def load_official_cgn_imagenet(path: str | os.PathLike, *,
                               biggan_config: dict[str, Any] | None = None,
                               u2net_kind: str = "u2net",
                               device: str | torch.device | None = None,
                               **options: Any) -> CGNImageNet:
    """Build a :class:`CGNImageNet` and load the official ``cgn.pth`` into it, strictly.

    Parameters
    ----------
    path : path
        The official checkpoint (a state dict, ``module.`` prefixes allowed).
    biggan_config : dict, optional
        The BigGAN architecture (default :data:`~generators.cgn.imagenet.model.BIGGAN_DEEP_256`,
        the official one).
    u2net_kind : {"u2net", "u2netp"}
        The U^2-Net architecture (the official one is the full ``u2net``).
    device : str or torch.device, optional
        Where the model goes (default CUDA when available).
    **options
        ``premask_channels``, ``u2net_input``, ``noise``, ``truncation`` of
        :class:`CGNImageNet` (the official model uses the defaults).

    Raises
    ------
    CausalKitError, WeightsMismatchError
        The file is no state dict, or its keys and shapes differ from the official
        layout (every offender is listed).
    """
    state = load_torch(path, what="official ImageNet CGN checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CausalKitError(f"{path} is not a state dict of tensors; the official "
                             "ImageNet CGN checkpoint is imagenet/weights/cgn.pth")
    state = {(k[len("module."):] if k.startswith("module.") else k): v
             for k, v in state.items()}
    arch = dict(biggan_config=dict(biggan_config or BIGGAN_DEEP_256), u2net_kind=u2net_kind,
                **options)
    check_state_dict(build_architecture(**arch, meta=True), state, source=str(path),
                     what="the official ImageNet CGN layout",
                     hint="Check biggan_config (the official CGN uses BigGAN-deep-256) and "
                     "u2net_kind (the official CGN uses the full 'u2net').")
    cgn = build_architecture(**arch)
    cgn.load_state_dict(state, strict=True)
    return _device(cgn, device)
