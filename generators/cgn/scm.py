"""Any CGN as a structural causal model, built from its declaration.

A CGN that implements the :class:`~generators.cgn.protocol.CGN` protocol says which
label, noise and mechanism nodes it has; :func:`cgn_scm` turns that declaration into a
:class:`~causalkit.scm.StructuralCausalModel` with nothing of its own added:

* label nodes and root noise nodes are roots whose value is their draw;
* each mechanism node evaluates its callable on its parents (and its own exogenous
  input, when the noise layout has one for it -- MNIST's texture shift), in chunks of
  ``batch_size`` so that memory stays bounded;
* the image node composes (mask, foreground, background).

For the MNIST CGN the graph is the ``cgn-mnist`` graph of :mod:`causalkit.library`::

    Y1, Y2, Y3  labels of shape, texture, background   (roots)
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
Labels and noise are what the declared samplers return (numpy arrays for MNIST);
images are what the mechanisms return (CPU torch tensors for MNIST).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from causalkit.graph import CausalGraph
from causalkit.scm import StructuralCausalModel
from generators.cgn.protocol import CGN, check_cgn

__all__ = ["cgn_scm", "cgn_graph", "batched"]


def cgn_graph(cgn: CGN) -> CausalGraph:
    """The causal graph a CGN declares, with node roles label / noise / mechanism / image.

    Nodes come in declaration order: labels, root noise, mechanisms, the image; edges run
    from each mechanism's parents to it, then from the composed nodes to the image. For
    :class:`~generators.cgn.mnist.model.MnistCGN` this is the library's ``cgn-mnist``.
    """
    check_cgn(cgn)
    mechanisms, composer = cgn.mechanism_nodes, cgn.composer
    roles = {v: "label" for v in cgn.label_nodes}
    roles.update({v: "noise" for v in cgn.noise_nodes if v not in mechanisms})
    roles.update({v: "mechanism" for v in mechanisms})
    roles[composer.node] = "image"
    edges = [(p, v) for v, m in mechanisms.items() for p in m.parents]
    edges += [(p, composer.node) for p in composer.parents]
    return CausalGraph(edges, roles=roles, nodes=list(roles))


def _cat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if type(first).__module__.startswith("torch"):
        import torch

        return torch.cat(parts)
    return np.concatenate(parts)


def batched(fn: Callable[[Mapping[str, Any], Any], Any],
            batch_size: int) -> Callable[[Mapping[str, Any], Any], Any]:
    """``fn(parents, u)`` evaluated on chunks of at most ``batch_size`` samples.

    Every parent's values and ``u`` are sliced along their first axis, and the chunks'
    outputs are concatenated (torch tensors or numpy arrays).
    """

    def mechanism(parents: Mapping[str, Any], u: Any) -> Any:
        sizes = [len(v) for v in parents.values()] + ([] if u is None else [len(u)])
        n = sizes[0] if sizes else 0
        parts = []
        for i in range(0, n, batch_size):
            s = slice(i, min(i + batch_size, n))
            parts.append(fn({p: v[s] for p, v in parents.items()}, None if u is None else u[s]))
        return _cat(parts) if parts else fn(parents, u)

    return mechanism


def _root(parents: Mapping[str, Any], u: Any) -> Any:
    return u


def cgn_scm(cgn: CGN, *, batch_size: int = 500,
            noise: Mapping[str, Callable[[int, np.random.Generator], Any]] | None = None
            ) -> StructuralCausalModel:
    """Wrap a (trained) CGN as a :class:`~causalkit.scm.StructuralCausalModel`.

    Parameters
    ----------
    cgn : CGN
        Anything that implements :class:`~generators.cgn.protocol.CGN`. A torch module is
        put in eval mode (batch-norm running statistics).
    batch_size : int
        Mechanisms evaluate their networks in chunks of this size (bounded memory).
    noise : mapping, optional
        Replacement priors ``node -> sampler(n, rng)`` for some exogenous inputs, e.g.
        ``{"F": no_shift, "B": no_shift}`` (:func:`~generators.cgn.mnist.model.no_shift`)
        to turn off MNIST's patch shuffling.

    Returns
    -------
    StructuralCausalModel
        Over :func:`cgn_graph`; a noise entry for every label node and exogenous input.

    Examples
    --------
    >>> from generators.cgn.mnist import MnistCGN
    >>> scm = cgn_scm(MnistCGN(ngf=8))
    >>> scm.sample(2, seed=0)["X"].shape
    torch.Size([2, 3, 32, 32])
    """
    graph = cgn_graph(cgn)
    if batch_size < 1:
        raise CausalKitError(f"batch_size must be >= 1, got {batch_size}")
    if hasattr(cgn, "eval") and callable(cgn.eval):
        cgn.eval()
    samplers = {v: e.sampler for v, e in cgn.label_nodes.items()}
    samplers.update({v: e.sampler for v, e in cgn.noise_nodes.items()})
    unknown = sorted(set(noise or {}) - set(samplers))
    if unknown:
        raise CausalKitError(f"no exogenous input {unknown} to replace; the CGN draws "
                             f"{list(samplers)}")
    samplers.update(noise or {})
    composer = cgn.composer

    def image(parents: Mapping[str, Any], u: Any) -> Any:
        return composer.fn(*(parents[p] for p in composer.parents))

    mechanisms: dict[str, Any] = {v: _root for v in graph.nodes
                                  if graph.role(v) in ("label", "noise")}
    mechanisms.update({v: batched(m.fn, batch_size) for v, m in cgn.mechanism_nodes.items()})
    mechanisms[composer.node] = image
    return StructuralCausalModel(graph, mechanisms, samplers)
