"""The mechanism protocol: what a counterfactual generative network declares.

A counterfactual generative network (CGN; Sauer & Geiger, ICLR 2021) is a structural
causal model whose image is put together from independent mechanisms. Every CGN has the
same causal structure,

    Y1, Y2, Y3        label nodes: the class each mechanism draws (roots)
    U1, U2, ...       noise nodes: the mechanisms' exogenous inputs (roots)
    M := f_shape(Y1, U1, ...)   the mask
    F := f_text(Y2, U2, ...)    the foreground texture
    B := f_bg(Y3, U3, ...)      the background
    X := compose(M, F, B)       the image (:func:`~generators.cgn.composer.compose`)

but the number and shape of the noise nodes, the networks behind the mechanisms, the
image size and the number of classes differ from one CGN to the next: on MNIST each
mechanism has its own 32-dimensional noise and a random texture shift
(:class:`~generators.cgn.mnist.model.MnistCGN`), on ImageNet three BigGANs share one
noise vector and the mask passes through a U^2-Net (the ``cgn-imagenet`` graph of
:mod:`causalkit.library`). A CGN therefore *declares* its structure through the
:class:`CGN` protocol, and the code that turns any CGN into an SCM
(:func:`~generators.cgn.scm.cgn_scm`) or into counterfactual data sets
(:mod:`generators.cgn.counterfactuals`) is written once, against the declaration.

The declaration has four parts:

``label_nodes``
    label node -> :class:`Exogenous` (its prior). The first one's prior also draws the
    class of a non-counterfactual ("base") sample, which every label node then shares.
``noise_nodes``
    node -> :class:`Exogenous`, in the order in which they are drawn. A key that is not a
    mechanism node is a root noise node (``U1``); a key that *is* one is that
    mechanism's own exogenous input, passed as its ``u`` (the MNIST texture shift of
    ``F`` and ``B``).
``mechanism_nodes``
    node -> :class:`Mechanism`, in an order in which every mechanism comes after the
    mechanisms among its parents: its name (``"shape"``), its label node, its parents
    and the batched callable ``fn(parents, u)``.
``composer``
    :class:`Composer`: the image node and the (mask, foreground, background) nodes it
    composes.

The name <-> node <-> label mapping of the mechanisms follows from the declaration
(:func:`mechanism_labels`, :func:`label_nodes_by_name`); counterfactuals address
mechanisms by name (``randomise=("texture",)`` redraws the label of the mechanism named
``"texture"``).

Examples
--------
A toy CGN of 1-pixel images, to show the shape of a declaration:

>>> from generators.cgn.protocol import (CGN, Composer, Exogenous, Mechanism, check_cgn,
...                                       mechanism_labels)
>>> def label(n, rng):
...     return rng.integers(0, 2, n)
>>> def pixel(pa, u):                         # a 1 x 1 image of the label's brightness
...     y = next(v for k, v in pa.items() if k.startswith("Y"))
...     return (y * 1.0).reshape(-1, 1, 1, 1)
>>> class Toy:
...     label_nodes = {"Y1": Exogenous((), label), "Y2": Exogenous((), label),
...                    "Y3": Exogenous((), label)}
...     noise_nodes = {}
...     mechanism_nodes = {"M": Mechanism("shape", "Y1", ("Y1",), pixel),
...                        "F": Mechanism("texture", "Y2", ("Y2",), pixel),
...                        "B": Mechanism("background", "Y3", ("Y3",), pixel)}
...     composer = Composer("X", ("M", "F", "B"))
>>> isinstance(Toy(), CGN)
True
>>> check_cgn(Toy())
>>> mechanism_labels(Toy())
{'M': 'Y1', 'F': 'Y2', 'B': 'Y3'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from causalkit.errors import CausalKitError
from generators.cgn.composer import compose

__all__ = ["CGN", "Exogenous", "Mechanism", "Composer", "check_cgn", "mechanism_labels",
           "label_nodes_by_name", "mechanism_nodes_by_name", "ROLES"]

#: the roles of a CGN graph's nodes (as in :mod:`causalkit.library`)
ROLES = ("label", "noise", "mechanism", "image")

Sampler = Callable[[int, np.random.Generator], Any]


@dataclass(frozen=True)
class Exogenous:
    """An exogenous input of a CGN: ``sampler(n, rng)`` draws ``n`` values.

    Attributes
    ----------
    shape
        One sample's shape: ``()`` for a class label, ``(32,)`` for a noise vector,
        ``(2,)`` for a (dy, dx) shift. The sampler returns ``(n, *shape)``.
    sampler
        Draws from the prior with a :class:`numpy.random.Generator`, so that the same
        stream gives the same values.
    """

    shape: tuple[int, ...]
    sampler: Sampler

    def sample(self, n: int, rng: np.random.Generator) -> Any:
        """``n`` draws, checked against :attr:`shape`."""
        out = self.sampler(n, rng)
        got = tuple(getattr(out, "shape", ()))
        if got != (n, *self.shape):
            raise CausalKitError(f"sampler returned shape {got}, declared {(n, *self.shape)}; "
                                 "return (n, *shape) values or fix the declared shape")
        return out


@dataclass(frozen=True)
class Mechanism:
    """One mechanism of a CGN: ``node := fn(parents, u)``, batched.

    Attributes
    ----------
    name
        What counterfactuals call it: ``"shape"``, ``"texture"``, ``"background"``.
    label
        Its label node (``"Y1"``), or ``None`` for a mechanism without a class of its own
        (ImageNet's U^2-Net turning the pre-mask into the mask).
    parents
        Its parent nodes: label, noise and mechanism nodes.
    fn
        ``fn(parents, u)``: ``parents`` maps each parent to a batch of ``n`` values, ``u``
        is the node's own exogenous input (``noise_nodes[node]``) or ``None``; returns
        ``n`` values (for the composer's inputs: tensors ``(n, C, H, W)``).
    """

    name: str
    label: str | None
    parents: tuple[str, ...]
    fn: Callable[[Mapping[str, Any], Any], Any]


@dataclass(frozen=True)
class Composer:
    """The image node ``node := fn(mask, foreground, background)``.

    Attributes
    ----------
    node
        The image node (``"X"``).
    parents
        The (mask, foreground, background) mechanism nodes, in that order.
    fn
        The composer; the CGN's analytic ``m * f + (1 - m) * b`` by default.
    """

    node: str
    parents: tuple[str, str, str]
    fn: Callable[[Any, Any, Any], Any] = field(default_factory=lambda: compose)


@runtime_checkable
class CGN(Protocol):
    """The declaration a counterfactual generative network implements.

    See the module docstring for what each member means;
    :func:`check_cgn` says whether a declaration is consistent.
    """

    @property
    def label_nodes(self) -> Mapping[str, Exogenous]:
        """Label node -> its prior; the first one's prior draws a base sample's class."""

    @property
    def noise_nodes(self) -> Mapping[str, Exogenous]:
        """Noise node (or mechanism node with its own input) -> prior, in draw order."""

    @property
    def mechanism_nodes(self) -> Mapping[str, Mechanism]:
        """Mechanism node -> its mechanism, parents before children."""

    @property
    def composer(self) -> Composer:
        """The image node and the mechanism nodes it composes."""


def check_cgn(cgn: CGN) -> None:
    """Raise :class:`~causalkit.errors.CausalKitError` unless ``cgn``'s declaration holds.

    Checks that the members exist, that node names are unique across labels, root noise,
    mechanisms and the image, that mechanism names are unique, that every parent is
    declared (mechanisms before their children), that every mechanism's label is a label
    node among its parents, and that the composer composes three mechanism nodes.
    """
    if not isinstance(cgn, CGN):
        raise CausalKitError(f"{type(cgn).__name__} does not implement the CGN protocol; "
                             "give it label_nodes, noise_nodes, mechanism_nodes and composer")
    labels, noise = dict(cgn.label_nodes), dict(cgn.noise_nodes)
    mechanisms, composer = dict(cgn.mechanism_nodes), cgn.composer
    if not labels or not mechanisms:
        raise CausalKitError("a CGN declares at least one label node and one mechanism")
    roots = [v for v in noise if v not in mechanisms]
    groups = [list(labels), roots, list(mechanisms), [composer.node]]
    every = [v for g in groups for v in g]
    dup = sorted({v for v in every if every.count(v) > 1})
    if dup:
        raise CausalKitError(f"node(s) {dup} declared twice; label, noise, mechanism and image "
                             "nodes need distinct names")
    names = [m.name for m in mechanisms.values()]
    if len(set(names)) != len(names):
        raise CausalKitError(f"mechanism names {names} repeat; give each mechanism its own")
    known = set(labels) | set(roots)
    for node, m in mechanisms.items():
        late = [p for p in m.parents if p not in known]
        if late:
            raise CausalKitError(f"mechanism {node!r} has undeclared or later parent(s) "
                                 f"{late}; declare them before it")
        if m.label is not None and (m.label not in labels or m.label not in m.parents):
            raise CausalKitError(f"mechanism {node!r} names label {m.label!r}, which is not "
                                 "one of its parents among the label nodes")
        known.add(node)
    bad = [p for p in composer.parents if p not in mechanisms]
    if len(composer.parents) != 3 or bad:
        raise CausalKitError(f"the composer must compose three mechanism nodes (mask, "
                             f"foreground, background), got {list(composer.parents)}")


def mechanism_labels(cgn: CGN) -> dict[str, str]:
    """Mechanism node -> its label node, for the mechanisms that have one."""
    return {v: m.label for v, m in cgn.mechanism_nodes.items() if m.label is not None}


def label_nodes_by_name(cgn: CGN) -> dict[str, str]:
    """Mechanism name -> its label node (``{"shape": "Y1", ...}``), in declaration order."""
    return {m.name: m.label for m in cgn.mechanism_nodes.values() if m.label is not None}


def mechanism_nodes_by_name(cgn: CGN) -> dict[str, str]:
    """Mechanism name -> its node (``{"shape": "M", ...}``)."""
    return {m.name: v for v, m in cgn.mechanism_nodes.items()}
