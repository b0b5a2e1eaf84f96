"""The papers' causal graphs (and a small discrete SCM), by name.

A registry in the style of DomainBed: every entry is a small builder function with a
one-line description and its source, so adding a graph is a local change that the
existing tests then cover (they iterate over :data:`GRAPHS`).

>>> from causalkit.library import get_graph, list_graphs
>>> "genint" in list_graphs()
True
>>> g = get_graph("genint")
>>> g.nodes_with_role("nuisance"), sorted(g.latent)
(['Z'], ['C'])
>>> get_graph("genint-intervened").parents("Z")
[]

**The graphs.**

``genint``, ``genint-intervened``, ``genint-partial``
    Mao et al., "Generative Interventions for Causal Learning", CVPR 2021, Figure 4
    (a)-(c). A latent confounder ``C`` causes the nuisances ``Z`` (viewpoint,
    background, ...) and the label ``Y``; ``Z`` and the object features ``F`` render
    the image ``X``, and the label is read off the image (``X -> Y``), so
    ``P(Y | do(X))`` is what a classifier should learn. The spurious route is the
    backdoor path ``X <- Z <- C -> Y``. (b) is the perfect intervention ``do(Z)``:
    ``C -> Z`` is cut. (c) intervenes on a subset: ``Z`` is split into ``Z1``
    (intervened, ``C -> Z1`` cut) and ``Z2`` (not intervened, ``C -> Z2`` kept).
    ``genint-split`` is the observational graph behind (c), with ``Z1`` and ``Z2`` both
    still confounded.
``cgn-mnist``
    Sauer & Geiger, "Counterfactual Generative Networks", ICLR 2021, Appendix B (MNIST):
    ``M := f_shape(Y1, U1)``, ``F := f_text(Y2, U2)``, ``B := f_bg(Y3, U3)``,
    ``X := C(M, F, B) = M * F + (1 - M) * B``; one noise per mechanism.
``cgn-imagenet``
    The same paper, ImageNet: the three mechanisms are BigGAN copies that share one
    noise vector ``U``, and the shape mechanism has two stages: ``f_shape`` produces a
    pre-mask ``Mp`` and a fixed, pre-trained U2-Net turns it into the mask ``M``. This
    follows the authors' ``imagenet/models/cgn.py`` (``premask = f_shape(u, y1)``,
    ``mask = u2net(premask)``, ``foreground = f_text(u, y2)``, ``background = f_bg(u,
    y3)``), which is our reading of Appendix B. The frozen BigGAN that provides the
    reconstruction target during training is not part of the generative model.
``frontdoor``, ``mediator``, ``m-bias``, ``collider``
    Textbook graphs for the documentation and tests.

Noise nodes of the CGN graphs are *not* latent: a generative model samples its noise and
can record it, which is what makes its counterfactuals computable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from causalkit.errors import CausalKitError, GraphError
from causalkit.graph import CausalGraph

__all__ = ["LibraryEntry", "GRAPHS", "SCMS", "get_graph", "list_graphs", "register_graph",
           "get_scm", "list_scms", "register_scm"]


@dataclass(frozen=True)
class LibraryEntry:
    """A named builder with a description and the source it follows."""

    name: str
    build: Callable[[], Any]
    description: str
    source: str = ""


_GRAPHS: dict[str, LibraryEntry] = {}
_SCMS: dict[str, LibraryEntry] = {}

#: Read-only view ``name -> LibraryEntry`` of the built-in graphs.
GRAPHS: Mapping[str, LibraryEntry] = MappingProxyType(_GRAPHS)
#: Read-only view ``name -> LibraryEntry`` of the built-in discrete SCMs.
SCMS: Mapping[str, LibraryEntry] = MappingProxyType(_SCMS)


def _registrar(table: dict[str, LibraryEntry], kind: str, error: type[CausalKitError],
               name: str, description: str, source: str):
    def deco(build: Callable[[], Any]) -> Callable[[], Any]:
        if name in table:
            raise error(f"{kind} named {name!r} is already registered; pick another name")
        table[name] = LibraryEntry(name, build, description, source)
        return build

    return deco


def register_graph(name: str, description: str, source: str = ""):
    """Decorator adding a graph builder ``() -> CausalGraph`` to :data:`GRAPHS`."""
    return _registrar(_GRAPHS, "a graph", GraphError, name, description, source)


def register_scm(name: str, description: str, source: str = ""):
    """Decorator adding a discrete SCM builder to :data:`SCMS`."""
    return _registrar(_SCMS, "an SCM", CausalKitError, name, description, source)


def list_graphs() -> list[str]:
    """Names of the built-in graphs, sorted."""
    return sorted(_GRAPHS)


def get_graph(name: str) -> CausalGraph:
    """The built-in graph called ``name`` (see :func:`list_graphs`).

    Raises
    ------
    GraphError
        For an unknown name; the message lists the known ones.
    """
    if name not in _GRAPHS:
        raise GraphError(f"no built-in graph named {name!r}; choose one of "
                         f"{', '.join(list_graphs())}")
    return _GRAPHS[name].build()


def list_scms() -> list[str]:
    """Names of the built-in discrete SCMs, sorted."""
    return sorted(_SCMS)


def get_scm(name: str):
    """The built-in :class:`~causalkit.scm.DiscreteSCM` called ``name``.

    Raises
    ------
    CausalKitError
        For an unknown name; the message lists the known ones.
    """
    if name not in _SCMS:
        raise CausalKitError(f"no built-in SCM named {name!r}; choose one of "
                             f"{', '.join(list_scms())}")
    return _SCMS[name].build()


# ------------------------------------------------------------------ GenInt (Figure 4)
_GENINT_ROLES = {"C": "confounder", "Z": "nuisance", "Z1": "nuisance", "Z2": "nuisance",
                 "F": "object", "X": "image", "Y": "label"}
_GENINT_SOURCE = "Mao et al., Generative Interventions for Causal Learning, CVPR 2021, Fig. 4"


def _genint_graph(nuisances: list[str]) -> CausalGraph:
    edges = [("C", z) for z in nuisances] + [("C", "Y")]
    edges += [(z, "X") for z in nuisances] + [("F", "X"), ("X", "Y")]
    nodes = ["C", *nuisances, "F", "X", "Y"]
    return CausalGraph(edges, roles={v: _GENINT_ROLES[v] for v in nodes}, latent={"C"},
                       nodes=nodes)


@register_graph("genint", "GenInt Fig. 4(a): observational; latent C confounds nuisances Z "
                "and label Y", _GENINT_SOURCE)
def genint() -> CausalGraph:
    """Figure 4(a): ``C -> Z``, ``C -> Y``, ``Z -> X``, ``F -> X``, ``X -> Y``; C latent."""
    return _genint_graph(["Z"])


@register_graph("genint-intervened", "GenInt Fig. 4(b): perfect intervention do(Z) cuts "
                "C -> Z", _GENINT_SOURCE)
def genint_intervened() -> CausalGraph:
    """Figure 4(b): :func:`genint` under ``do(Z)``."""
    return genint().do("Z")


@register_graph("genint-split", "GenInt Fig. 4(a) with Z split into Z1, Z2 (both "
                "confounded)", _GENINT_SOURCE)
def genint_split() -> CausalGraph:
    """The observational graph of Figure 4(c), before the intervention on ``Z1``."""
    return _genint_graph(["Z1", "Z2"])


@register_graph("genint-partial", "GenInt Fig. 4(c): intervention on Z1 only; Z2 stays "
                "confounded", _GENINT_SOURCE)
def genint_partial() -> CausalGraph:
    """Figure 4(c): :func:`genint_split` under ``do(Z1)``."""
    return genint_split().do("Z1")


# ------------------------------------------------------------------ CGN (Appendix B)
_CGN_SOURCE = "Sauer & Geiger, Counterfactual Generative Networks, ICLR 2021, App. B"


@register_graph("cgn-mnist", "CGN on MNIST: labels Y1..Y3 and noises U1..U3 drive shape M, "
                "texture F, background B; X composes them", _CGN_SOURCE)
def cgn_mnist() -> CausalGraph:
    """``M := f_shape(Y1, U1)``, ``F := f_text(Y2, U2)``, ``B := f_bg(Y3, U3)``,
    ``X := M * F + (1 - M) * B``."""
    edges = [("Y1", "M"), ("U1", "M"), ("Y2", "F"), ("U2", "F"), ("Y3", "B"), ("U3", "B"),
             ("M", "X"), ("F", "X"), ("B", "X")]
    roles = {"Y1": "label", "Y2": "label", "Y3": "label", "U1": "noise", "U2": "noise",
             "U3": "noise", "M": "mechanism", "F": "mechanism", "B": "mechanism",
             "X": "image"}
    return CausalGraph(edges, roles=roles, nodes=list(roles))


@register_graph("cgn-imagenet", "CGN on ImageNet: BigGAN mechanisms share noise U; shape is "
                "f_shape -> pre-mask Mp -> U2-Net -> mask M", _CGN_SOURCE)
def cgn_imagenet() -> CausalGraph:
    """``Mp := f_shape(Y1, U)``, ``M := u2net(Mp)``, ``F := f_text(Y2, U)``,
    ``B := f_bg(Y3, U)``, ``X := M * F + (1 - M) * B``."""
    edges = [("Y1", "Mp"), ("U", "Mp"), ("Mp", "M"), ("Y2", "F"), ("U", "F"), ("Y3", "B"),
             ("U", "B"), ("M", "X"), ("F", "X"), ("B", "X")]
    roles = {"Y1": "label", "Y2": "label", "Y3": "label", "U": "noise", "Mp": "mechanism",
             "M": "mechanism", "F": "mechanism", "B": "mechanism", "X": "image"}
    return CausalGraph(edges, roles=roles, nodes=list(roles))


# ------------------------------------------------------------------ textbook graphs
_PEARL = "Pearl, Causality (2nd ed., 2009), ch. 3"


@register_graph("frontdoor", "Front-door graph: latent U confounds X and Y; X -> M -> Y "
                "(no backdoor set)", _PEARL)
def frontdoor() -> CausalGraph:
    """``U -> X``, ``U -> Y``, ``X -> M -> Y`` with ``U`` latent."""
    return CausalGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")],
                       roles={"U": "confounder", "X": "exposure", "M": "mediator",
                              "Y": "outcome"}, latent={"U"})


@register_graph("mediator", "Confounded mediator: adjust for C, never for the mediator M",
                _PEARL)
def mediator() -> CausalGraph:
    """``C -> X``, ``C -> Y``, ``X -> M -> Y``."""
    return CausalGraph([("C", "X"), ("C", "Y"), ("X", "M"), ("M", "Y")],
                       roles={"C": "confounder", "X": "exposure", "M": "mediator",
                              "Y": "outcome"})


@register_graph("m-bias", "M-bias: adjusting for the pre-treatment collider M alone opens "
                "X <- A -> M <- B -> Y", "Greenland, Pearl & Robins 1999")
def m_bias() -> CausalGraph:
    """``A -> X``, ``A -> M``, ``B -> M``, ``B -> Y``, ``X -> Y``."""
    return CausalGraph([("A", "X"), ("A", "M"), ("B", "M"), ("B", "Y"), ("X", "Y")],
                       roles={"X": "exposure", "Y": "outcome", "M": "collider", "A": "confounder",
                              "B": "confounder"})


@register_graph("collider", "Collider: X -> K <- Y; X and Y are independent until K is "
                "conditioned on", _PEARL)
def collider() -> CausalGraph:
    """``X -> K <- Y``."""
    return CausalGraph([("X", "K"), ("Y", "K")],
                       roles={"X": "exposure", "Y": "outcome", "K": "collider"})


# ------------------------------------------------------------------ discrete SCMs
@register_scm("genint-example", "Binary SCM on genint-split: strong latent confounding of "
              "Z1, Z2 and Y; bounds on P(Y | do(X)) tighten under do(Z1)", _GENINT_SOURCE)
def genint_example():
    """A hand-set binary :class:`~causalkit.scm.DiscreteSCM` on ``genint-split``.

    ``C`` is rare (``P(C=1) = 0.3``) and drives ``Z1``, ``Z2`` and ``Y``; the image is
    likelier to be ``X = 1`` when the nuisances are ``1`` and the object is present
    (``F = 1``), so intervening on ``Z1`` uniformly raises ``P(X = 1)`` and narrows the
    bound. The label follows the image, and more so when ``C = 1``.
    """
    import numpy as np

    from causalkit.scm import DiscreteSCM

    def bern(p):
        return [1.0 - p, p]

    cpts = {
        "C": np.array(bern(0.3)),
        "Z1": np.array([bern(0.1), bern(0.9)]),           # P(Z1 | C)
        "Z2": np.array([bern(0.2), bern(0.7)]),           # P(Z2 | C)
        "F": np.array(bern(0.5)),                         # P(F)
        # P(Y | C, X): the label mostly follows the image; C pushes it towards 1.
        "Y": np.array([[bern(0.1), bern(0.6)], [bern(0.5), bern(0.95)]]),
        # P(X | Z1, Z2, F): axes in parent order (Z1, Z2, F).
        "X": np.array([[[bern(0.05), bern(0.4)], [bern(0.2), bern(0.6)]],
                       [[bern(0.3), bern(0.75)], [bern(0.45), bern(0.95)]]]),
    }
    graph = genint_split()
    assert graph.parents("X") == ["Z1", "Z2", "F"] and graph.parents("Y") == ["C", "X"]
    return DiscreteSCM(graph, dict.fromkeys(graph.nodes, 2), cpts)


@register_scm("genint-pitfall", "Deterministic SCM on genint-split where conditioning on a "
              "nuisance, P(y,x|z), excludes P(y|do(x)) and do(z) does not", _GENINT_SOURCE)
def genint_pitfall():
    """``C ~ Bern(1/2)``, ``Z1 := C``, ``X := Z1``, ``Y := C``; ``Z2`` and ``F`` are coin flips.

    ``P(Y=1 | do(X=1)) = 1/2`` because the label ignores the image. Conditioning on
    ``Z1 = 1`` selects ``C = 1`` and gives the "interval" ``[1, 1]``, which excludes the
    truth; intervening ``do(Z1 = 1)`` gives ``[1/2, 1/2]``, which is exact.
    """
    import numpy as np

    from causalkit.scm import DiscreteSCM

    eye, half = np.eye(2), np.array([0.5, 0.5])
    cpts = {
        "C": half, "Z2": np.array([half, half]), "F": half,
        "Z1": eye,                                                    # P(Z1 | C)
        "X": np.broadcast_to(eye[:, None, None, :], (2, 2, 2, 2)),    # P(X | Z1, Z2, F)
        "Y": np.broadcast_to(eye[:, None, :], (2, 2, 2)),             # P(Y | C, X)
    }
    graph = genint_split()
    return DiscreteSCM(graph, dict.fromkeys(graph.nodes, 2), cpts)
