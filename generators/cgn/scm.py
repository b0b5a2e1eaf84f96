"""The CGN as a structural causal model over the library graph ``cgn-mnist``.

Nodes (Sauer & Geiger, App. B)::

    Y1, Y2, Y3  labels of shape, texture, background   (roots, uniform over classes)
    U1, U2, U3  noise vectors u ~ N(0, I_32)           (roots)
    M := f_shape(Y1, U1)      mask (N, 1, 32, 32)
    F := f_text1(Y2, U2)      foreground texture, shifted by F's own exogenous offset
    B := f_text2(Y3, U3)      background, shifted by B's own exogenous offset
    X := M * F + (1 - M) * B  the image, float in [-1, 1]

The random shift of the patch shuffling is F's and B's exogenous noise, so it is held
fixed in counterfactuals too. A counterfactual image is then

>>> scm = cgn_scm(cgn)                                      # doctest: +SKIP
>>> s = scm.sample(8, seed=0)                               # doctest: +SKIP
>>> cf = scm.counterfactual(s, do={"Y3": Do(4)})            # doctest: +SKIP

which keeps every mask and texture and puts all eight digits on background class 4.
Images are torch tensors; labels and noise are numpy arrays (the SCM layer's rngs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from causalkit.graph import CausalGraph
from causalkit.scm import StructuralCausalModel
from generators.cgn.model import MnistCGN, compose

__all__ = ["cgn_scm", "cgn_graph", "MECHANISM_LABELS"]

#: mechanism node -> its label node
MECHANISM_LABELS = {"M": "Y1", "F": "Y2", "B": "Y3"}


def cgn_graph() -> CausalGraph:
    """The ``cgn-mnist`` graph from :mod:`causalkit.library` (built here if absent)."""
    try:
        from causalkit.library import get_graph

        return get_graph("cgn-mnist")
    except (ImportError, KeyError, ValueError):  # library not available: same graph
        edges = [("Y1", "M"), ("U1", "M"), ("Y2", "F"), ("U2", "F"), ("Y3", "B"),
                 ("U3", "B"), ("M", "X"), ("F", "X"), ("B", "X")]
        return CausalGraph(edges)


def _batched(fn: Any, n: int, batch: int) -> torch.Tensor:
    return torch.cat([fn(slice(i, min(i + batch, n))) for i in range(0, n, batch)])


def cgn_scm(cgn: MnistCGN, *, shuffle: bool = True, batch_size: int = 500) -> StructuralCausalModel:
    """Wrap a (trained) CGN as a :class:`~causalkit.scm.StructuralCausalModel`.

    Parameters
    ----------
    cgn : MnistCGN
        The generator; it is used in eval mode, without gradients, on its device.
    shuffle : bool
        Draw a random cyclic shift of the textures (the patch shuffling) as F's and B's
        exogenous noise; otherwise the shift is 0.
    batch_size : int
        Mechanisms evaluate the network in chunks of this size (bounded memory).

    Returns
    -------
    StructuralCausalModel
        Nodes Y1..Y3, U1..U3, M, F, B, X; images are CPU float tensors in [-1, 1].
    """
    cgn.eval()
    k, d, size = cgn.n_classes, cgn.latent_dim, cgn.img_size
    dev = cgn.device

    def labels(n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, k, n)

    def gauss(n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, d)).astype(np.float32)

    def offsets(n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, size, (n, 2)) if shuffle else np.zeros((n, 2), np.int64)

    def t(a: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=dev)

    def root(pa: dict, u: np.ndarray) -> np.ndarray:
        return u

    def net(method: str, y: str, u: str):
        fn = getattr(cgn, method)

        @torch.no_grad()
        def mech(pa: dict, off: np.ndarray | None) -> torch.Tensor:
            ys, us = t(pa[y], torch.long), t(pa[u], torch.float32)
            n = len(ys)
            if off is None:
                return _batched(lambda s: fn(ys[s], us[s]).cpu(), n, batch_size)
            o = t(off, torch.long)
            return _batched(lambda s: fn(ys[s], us[s], o[s]).cpu(), n, batch_size)

        return mech

    def image(pa: dict, u: None) -> torch.Tensor:
        return compose(pa["M"], pa["F"], pa["B"])

    mechanisms = {"Y1": root, "Y2": root, "Y3": root, "U1": root, "U2": root, "U3": root,
                  "M": net("shape", "Y1", "U1"), "F": net("texture", "Y2", "U2"),
                  "B": net("background", "Y3", "U3"), "X": image}
    noise = {"Y1": labels, "Y2": labels, "Y3": labels, "U1": gauss, "U2": gauss, "U3": gauss,
             "F": offsets, "B": offsets}
    return StructuralCausalModel(cgn_graph(), mechanisms, noise)
