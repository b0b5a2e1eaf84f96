"""Identification beyond backdoor adjustment: the front-door criterion and the ID algorithm.

**Latent projection.** The algorithms here see only observed variables. A
:class:`~causalkit.graph.CausalGraph` with latent nodes is first projected onto an ADMG
(acyclic directed mixed graph, Verma 1993): ``A -> B`` when a directed path from ``A``
to ``B`` has only latent nodes inside it, and ``A <-> B`` when some latent node reaches
both along such paths. The projection preserves every d-separation among observed
nodes and every identification answer.

**Front door** (Pearl 1995). A set ``M`` of observed nodes satisfies the front-door
criterion relative to ``(X, Y)`` when (i) it intercepts every directed path from ``X``
to ``Y``, (ii) no backdoor path from ``X`` to ``M`` is open, and (iii) ``X`` blocks
every backdoor path from ``M`` to ``Y``. Then

.. math:: P(y \\mid do(x)) = \\sum_m P(m \\mid x) \\sum_{x'} P(y \\mid x', m) P(x').

:func:`front_door_set` finds the largest such set in polynomial time: start from the
nodes that satisfy (ii), repeatedly drop those that violate (iii) (dropping only ever
adds violations), then test (i) (Jeong, Tian and Bareinboim 2022).

**ID** (Shpitser and Pearl 2006, Algorithm 1). Seven lines decide any
``P(y | do(x))`` in a semi-Markovian model: restrict to ancestors of ``Y`` (line 2), add
to ``X`` what cannot reach ``Y`` once ``X`` is fixed (line 3), factor over the
c-components of ``G \\ X`` (line 4), and solve each factor by a product of conditionals
(line 6) or recurse into a larger c-component (line 7). When neither applies (line 5)
the algorithm has found a *hedge* -- two nested c-forests ``F' ⊂ F`` rooted in ``Y``'s
ancestors, with ``F`` meeting ``X`` -- and a hedge proves the effect is not
identifiable: two models agree on ``P(v)`` but not on ``P(y | do(x))``.

The results are :mod:`causalkit.expressions` objects; they print as text and LaTeX and
evaluate on a :class:`~causalkit.scm.DiscreteSCM`.

    >>> from causalkit.graph import CausalGraph
    >>> napkin = CausalGraph([("U1", "W"), ("U1", "X"), ("U2", "W"), ("U2", "Y"),
    ...                       ("W", "R"), ("R", "X"), ("X", "Y")], latent={"U1", "U2"})
    >>> print(identify_effect(napkin, {"X"}, {"Y"}))  # doctest: +NORMALIZE_WHITESPACE
    (sum_{W} P(W) P(X | W, R) P(Y | W, R, X)) /
    (sum_{Y', W} P(W) P(X | W, R) P(Y' | W, R, X))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from causalkit.expressions import Expression, Fraction, Prob, product, summation

#: A :class:`causalkit.graph.CausalGraph` (not imported: the graph module imports this one).
CausalGraph = Any

__all__ = ["ADMG", "Hedge", "NotIdentifiable", "project", "identify_effect", "front_door_set",
           "front_door_expression"]


@dataclass(frozen=True)
class ADMG:
    """Observed nodes (in topological order), directed parents and bidirected neighbours."""

    order: tuple[str, ...]
    parents: dict[str, frozenset[str]]
    spouses: dict[str, frozenset[str]]

    def bidirected(self) -> list[tuple[str, str]]:
        """Every ``A <-> B`` once, in topological order of ``A``."""
        pos = {v: i for i, v in enumerate(self.order)}
        return [(a, b) for a in self.order for b in sorted(self.spouses[a], key=pos.get)
                if pos[a] < pos[b]]


@dataclass(frozen=True)
class Hedge:
    """A hedge for ``P(y | do(x))``: c-forests ``F' ⊂ F`` with ``F`` meeting ``x``."""

    f: tuple[str, ...]
    f_prime: tuple[str, ...]

    def __str__(self) -> str:
        return "F = {" + ", ".join(self.f) + "}, F' = {" + ", ".join(self.f_prime) + "}"


class NotIdentifiable(Exception):
    """Raised by :func:`identify_effect` with the hedge that proves it."""

    def __init__(self, hedge: Hedge) -> None:
        super().__init__(f"not identifiable: hedge {hedge}")
        self.hedge = hedge


def project(g: CausalGraph) -> ADMG:
    """The latent projection of ``g`` onto its observed nodes (cached on the graph)."""
    cached = g._cache.get("admg")
    if cached is not None:
        return cached
    latent, succ = g.latent, g._g.succ
    order = tuple(v for v in g.topological_order() if v not in latent)

    def observed_reach(start: Iterable[str]) -> set[str]:
        out, seen, stack = set(), set(), list(start)
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in latent:
                stack.extend(succ[v])
            else:
                out.add(v)
        return out

    parents: dict[str, set[str]] = {v: set() for v in order}
    spouses: dict[str, set[str]] = {v: set() for v in order}
    for a in order:
        for b in observed_reach(succ[a]):
            parents[b].add(a)
    for u in latent:
        if any(p in latent for p in g._g.pred[u]):
            continue  # a latent with a latent parent reaches a subset of what it does
        reach = sorted(observed_reach([u]))
        for i, a in enumerate(reach):
            for b in reach[i + 1:]:
                spouses[a].add(b)
                spouses[b].add(a)
    admg = ADMG(order, {v: frozenset(s) for v, s in parents.items()},
                {v: frozenset(s) for v, s in spouses.items()})
    g._cache["admg"] = admg
    return admg


# ====================================================================== ID
@dataclass(frozen=True)
class _Dist:
    """The current distribution of the recursion: ``Prob(vars)`` when ``expr`` is None."""

    vars: frozenset[str]
    expr: Expression | None = None

    def marginal(self, keep: set[str], order: dict[str, int]) -> _Dist:
        if self.expr is None:
            return _Dist(frozenset(keep))
        drop = _sorted(self.vars - keep, order)
        return _Dist(frozenset(keep), summation(drop, self.expr))

    def joint(self, keep: set[str], order: dict[str, int]) -> Expression:
        """``sum_{vars - keep} P``."""
        if self.expr is None:
            return Prob(tuple(_sorted(keep, order)))
        return summation(_sorted(self.vars - keep, order), self.expr)

    def conditional(self, v: str, given: set[str], order: dict[str, int]) -> Expression:
        """``P(v | given)`` of this distribution."""
        if self.expr is None:
            return Prob((v,), tuple(_sorted(given, order)))
        num = summation(_sorted(self.vars - given - {v}, order), self.expr)
        if not given:
            return num
        return Fraction(num, summation(_sorted(self.vars - given, order), self.expr))


def _sorted(nodes: Iterable[str], order: dict[str, int]) -> list[str]:
    return sorted(nodes, key=order.__getitem__)


class _ID:
    def __init__(self, admg: ADMG) -> None:
        self.admg = admg
        self.pos = {v: i for i, v in enumerate(admg.order)}

    def ancestors(self, of: set[str], within: frozenset[str],
                  cut: frozenset[str] = frozenset()) -> set[str]:
        """Ancestors of ``of`` in G[within], incoming edges of ``cut`` removed."""
        seen, stack = set(of), list(of)
        parents = self.admg.parents
        while stack:
            v = stack.pop()
            if v in cut:
                continue
            for p in parents[v]:
                if p in within and p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    def c_components(self, within: frozenset[str]) -> list[frozenset[str]]:
        spouses, seen, comps = self.admg.spouses, set(), []
        for v in _sorted(within, self.pos):
            if v in seen:
                continue
            comp, stack = {v}, [v]
            while stack:
                for w in spouses[stack.pop()]:
                    if w in within and w not in comp:
                        comp.add(w)
                        stack.append(w)
            seen |= comp
            comps.append(frozenset(comp))
        return comps

    def run(self, y: frozenset[str], x: frozenset[str], p: _Dist,
            v: frozenset[str]) -> Expression:
        pos = self.pos
        if not x:  # line 1
            return p.joint(set(y), pos)
        anc = self.ancestors(set(y), v)
        if len(anc) < len(v):  # line 2
            keep = frozenset(anc)
            return self.run(y, x & keep, p.marginal(set(keep), pos), keep)
        w = (v - x) - self.ancestors(set(y), v, cut=x)
        if w:  # line 3
            return self.run(y, x | w, p, v)
        comps = self.c_components(v - x)
        if len(comps) > 1:  # line 4
            factors = [self.run(s, v - s, p, v) for s in comps]
            return summation(_sorted(v - y - x, pos), product(factors))
        s = comps[0]
        whole = self.c_components(v)
        if len(whole) == 1:  # line 5
            raise NotIdentifiable(Hedge(tuple(_sorted(v, pos)), tuple(_sorted(s, pos))))
        if s in whole:  # line 6
            return summation(_sorted(s - y, pos),
                             product(p.conditional(vi, self.before(vi, v), pos)
                                     for vi in _sorted(s, pos)))
        s_big = next(c for c in whole if s < c)  # line 7
        factors = [p.conditional(vi, self.before(vi, v), pos) for vi in _sorted(s_big, pos)]
        return self.run(y, x & s_big, _Dist(s_big, product(factors)), s_big)

    def before(self, vi: str, v: frozenset[str]) -> set[str]:
        k = self.pos[vi]
        return {u for u in v if self.pos[u] < k}


def identify_effect(g: CausalGraph, x: set[str], y: set[str]) -> Expression:
    """``P(y | do(x))`` as an expression in observational probabilities (the ID algorithm).

    ``x`` and ``y`` must be observed. Raises :class:`NotIdentifiable` (with the hedge)
    when the effect is not identifiable.
    """
    admg = project(g)
    solver = _ID(admg)
    return solver.run(frozenset(y), frozenset(x), _Dist(frozenset(admg.order)),
                      frozenset(admg.order))


# ====================================================================== front door
def front_door_set(g: CausalGraph, x: set[str], y: set[str],
                   excluded: set[str] = frozenset()) -> frozenset[str] | None:
    """A front-door set for ``(x, y)``, or ``None`` when there is none.

    The largest set is found first; when its part on directed paths from ``x`` to ``y``
    is a front-door set too, that smaller set is returned.
    """
    h = g._g
    candidates = [v for v in g.observed if v not in x and v not in y and v not in excluded]
    if not candidates:
        return None
    no_out_x = _without_outgoing(h, x)
    # (ii): no open backdoor path from X to m.
    reach = _d_connected(no_out_x, x, set())
    z = {m for m in candidates if m not in reach}
    # (iii): X blocks every backdoor path from Z to Y, in G without Z's outgoing edges.
    while z:
        cut = _without_outgoing(h, z)
        bad = {m for m in z if _d_connected(cut, {m}, set(x)) & y}
        if not bad:
            break
        z -= bad
    if not z or not _intercepts(h, x, y, z):
        return None
    on_paths = set()
    for a in x:
        on_paths |= nx.descendants(h, a)
    for b in y:
        on_paths &= nx.ancestors(h, b) | {b}
    small = z & on_paths
    if small and small != z and _intercepts(h, x, y, small) and not (
            _d_connected(_without_outgoing(h, small), small, set(x)) & y):
        return frozenset(small)
    return frozenset(z)


def _without_outgoing(h: nx.DiGraph, nodes: Iterable[str]) -> nx.DiGraph:
    cut = h.copy()
    cut.remove_edges_from([(u, c) for u in nodes for c in list(h.successors(u))])
    return cut


def _intercepts(h: nx.DiGraph, x: set[str], y: set[str], z: set[str]) -> bool:
    """(i): every directed path from X to Y meets Z."""
    rest = h.subgraph(set(h.nodes) - set(z))
    return not any(nx.descendants(rest, a) & y for a in x)


def front_door_expression(x: list[str], y: list[str], m: list[str]) -> Expression:
    """``sum_m P(m | x) sum_{x'} P(y | x', m) P(x')``."""
    inner = summation(x, product([Prob(tuple(y), tuple(x) + tuple(m)), Prob(tuple(x))]))
    return summation(m, product([Prob(tuple(m), tuple(x)), inner]))


def _d_connected(h: nx.DiGraph, source: set[str], given: set[str]) -> set[str]:
    """Nodes d-connected to ``source`` given ``given`` (Bayes-ball reachability)."""
    anc_given = set(given)
    stack = list(given)
    while stack:
        for p in h.pred[stack.pop()]:
            if p not in anc_given:
                anc_given.add(p)
                stack.append(p)
    # state: (node, arrived_from_child) -- True when we came up an edge into a parent.
    visited: set[tuple[str, bool]] = set()
    out: set[str] = set()
    stack2 = [(s, True) for s in source]
    while stack2:
        v, up = stack2.pop()
        if (v, up) in visited:
            continue
        visited.add((v, up))
        if v not in given:
            out.add(v)
        if up and v not in given:
            stack2.extend((p, True) for p in h.pred[v])
            stack2.extend((c, False) for c in h.succ[v])
        elif not up:
            if v not in given:
                stack2.extend((c, False) for c in h.succ[v])
            if v in anc_given:
                stack2.extend((p, True) for p in h.pred[v])
    return out - source
