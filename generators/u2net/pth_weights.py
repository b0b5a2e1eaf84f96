"""Load the authors' U^2-Net state dicts (``u2net.pth``, ``u2netp.pth``) strictly.

The files of xuebinqin/U-2-Net are plain ``torch.save(net.state_dict())`` dicts with
the keys of :class:`~generators.u2net.model.U2Net` (the module names are the
authors'). They are read through :func:`causalkit.io.load_torch` (``weights_only=True``)
and checked key by key and shape by shape with
:func:`causalkit.weights.check_state_dict`; the one tolerance is BatchNorm's
``num_batches_tracked`` counters, which the torch of 2020 did not always write and
which play no part in evaluation: when *all* of them are absent they are set to zero.
A state dict without any batch-norm tensors is read as the folded layout
(``batch_norm=False``, e.g. one saved from :meth:`U2Net.fold_batch_norm`). The kind is
read from the width of ``stage1.rebnconv1`` (32 for ``u2net``, 16 for ``u2netp``) when
not given. A ``module.`` prefix (a model saved inside ``DataParallel``) is removed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from causalkit.errors import CausalKitError, DataError
from causalkit.io import load_torch
from causalkit.weights import as_state_dict, check_state_dict
from generators.u2net.model import KINDS, U2Net

__all__ = ["load_u2net_pth", "kind_of_state_dict"]

_PROBE = "stage1.rebnconv1.conv_s1.weight"
_WIDTH_KIND = {32: "u2net", 16: "u2netp"}


def kind_of_state_dict(state: dict[str, torch.Tensor], *, source: str) -> str:
    """``"u2net"`` or ``"u2netp"``, from the inner width of the first stage."""
    if _PROBE not in state:
        raise DataError(f"{source} is no U^2-Net state dict (it has no {_PROBE!r}); pass "
                        "the authors' u2net.pth / u2netp.pth")
    width = int(state[_PROBE].shape[0])
    if width not in _WIDTH_KIND:
        raise DataError(f"{source}: {_PROBE} has {width} filters, neither u2net's 32 nor "
                        "u2netp's 16; pass the authors' u2net.pth / u2netp.pth")
    return _WIDTH_KIND[width]


def load_u2net_pth(path: str | os.PathLike, *, kind: str | None = None) -> U2Net:
    """A :class:`U2Net` (eval mode) with the weights of the state-dict file ``path``."""
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise CausalKitError(f"unknown U^2-Net kind {kind!r}; use one of {list(KINDS)}")
    state = as_state_dict(load_torch(path, what="U^2-Net weights file"), source=str(path))
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    found = kind_of_state_dict(state, source=str(path))
    if kind is not None and kind != found:
        raise DataError(f"{path} holds a {found} but kind={kind!r} was asked for; pass "
                        f"kind={found!r} or the {kind} weights")
    batch_norm = any(".bn_s1." in k for k in state)
    model = U2Net(found, batch_norm=batch_norm)
    expected = model.state_dict()
    counters = [k for k in expected if k.endswith("num_batches_tracked")]
    if counters and not any(k in state for k in counters):
        state.update({k: torch.zeros((), dtype=torch.long) for k in counters})
    check_state_dict(model, state, source=str(path),
                     what=f"the authors' {found} layout" + ("" if batch_norm else " (folded)"),
                     hint="pass the authors' u2net.pth / u2netp.pth, unmodified")
    model.load_state_dict(state, strict=True)
    return model.eval()
