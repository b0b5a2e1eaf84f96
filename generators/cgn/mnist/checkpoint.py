"""Import the official MNIST CGN checkpoints with a strict key check.

The official ``ckp.pth`` files are plain state_dicts (keys under ``label_emb``,
``f_shape``, ``f_text1``, ``f_text2``), some saved from CUDA tensors; they load on any
device with ``weights_only=True`` and ``map_location``. Unlike the official code, a
missing, unexpected or mis-shaped key is an error that lists every offender
(:func:`causalkit.weights.check_state_dict`, a
:class:`~causalkit.errors.WeightsMismatchError`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from causalkit.errors import CausalKitError
from causalkit.io import load_torch
from causalkit.weights import check_state_dict
from generators.cgn.mnist.model import MnistCGN

__all__ = ["load_official", "load_generator", "OFFICIAL_VARIANTS"]

#: variant name -> folder name under ``cgn_official/``
OFFICIAL_VARIANTS = {
    "colored": "colored_mnist",
    "double-colored": "double_colored_mnist",
    "wildlife": "wildlife_mnist",
}


def _resolve(path_or_variant: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    text = str(path_or_variant)
    if text in OFFICIAL_VARIANTS:
        base = Path(root) if root is not None else Path("..") / "shared" / "data" / "cgn_official"
        return base / OFFICIAL_VARIANTS[text] / "ckp.pth"
    return Path(path_or_variant)


def load_official(path_or_variant: str | os.PathLike, *, root: str | os.PathLike | None = None,
                  device: str | torch.device = "cpu") -> MnistCGN:
    """Build a :class:`MnistCGN` and load an official checkpoint into it, strictly.

    Parameters
    ----------
    path_or_variant : path or {"colored", "double-colored", "wildlife"}
        A ``ckp.pth`` file, or a variant name looked up as
        ``<root>/<variant>_mnist/ckp.pth``.
    root : path, optional
        The ``cgn_official`` folder (default ``../shared/data/cgn_official``).
    device : str or torch.device
        Where the model lives afterwards.

    Returns
    -------
    MnistCGN
        In eval mode (batch-norm running statistics), on ``device``.

    Raises
    ------
    CausalKitError
        If the file is missing or not a state_dict; its
        :class:`~causalkit.errors.WeightsMismatchError` if any key is missing, unexpected
        or of the wrong shape (all of them are listed).
    """
    path = _resolve(path_or_variant, root)
    if not path.is_file():
        raise CausalKitError(f"no CGN checkpoint at {path}; pass the path of an official "
                             f"ckp.pth or one of {sorted(OFFICIAL_VARIANTS)} with root=")
    state = load_torch(path, what="CGN weights")
    if isinstance(state, dict) and "generator" in state and isinstance(state["generator"], dict):
        state = state["generator"]  # our own training checkpoints nest the generator
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CausalKitError(f"{path} is not a state_dict of tensors; expected the official "
                             "ckp.pth (keys label_emb.*, f_shape.*, f_text1.*, f_text2.*)")
    model = MnistCGN()
    check_state_dict(model, state, source=str(path), what="the MNIST CGN",
                     hint="Pass an official ckp.pth or a generator.pt written by train_cgn.")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> MnistCGN:
    """Load a generator written by our training (``generator.pt``, ``checkpoint.pt``) or
    an official ``ckp.pth``, of any width: ``ngf`` is read from the weights, then the
    keys are checked strictly, as in :func:`load_official`."""
    path = Path(path)
    if not path.is_file():
        raise CausalKitError(f"no CGN generator at {path}; pass a generator.pt, "
                             "checkpoint.pt or official ckp.pth")
    state = load_torch(path, what="CGN weights")
    if isinstance(state, dict) and isinstance(state.get("generator"), dict):
        state = state["generator"]
    weight = state.get("f_shape.0.weight") if isinstance(state, dict) else None
    if not isinstance(weight, torch.Tensor):
        raise CausalKitError(f"{path} holds no CGN state_dict (no f_shape.0.weight)")
    model = MnistCGN(ngf=weight.shape[0] // (2 * 8 * 8))
    check_state_dict(model, state, source=str(path), what="the MNIST CGN",
                     hint="Pass an official ckp.pth or a generator.pt written by train_cgn.")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
