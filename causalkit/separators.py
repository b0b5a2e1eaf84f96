"""Backdoor adjustment sets in polynomial time: one minimal set, one minimum-cost set, and
a lazy enumeration of all minimal sets.

A set ``Z`` is a *backdoor set* for ``(X, Y)`` when it holds no latent node and no
descendant of ``X`` and d-separates ``X`` from ``Y`` in ``G_X`` (the graph without the
outgoing edges of ``X``). Three facts turn the search into graph cuts (van der Zander,
Liśkiewicz and Textor, "Separators and adjustment sets in causal graphs", AIJ 2019):

1. Let ``A = An(X ∪ Y)`` in ``G_X`` and ``R`` the nodes that may be adjusted for. A
   backdoor set exists if and only if ``R ∩ A`` is one. Every minimal set lies in ``A``.
2. Inside ``A``, d-separation is vertex separation in the *moral graph* of ``G_X[A]``
   (parents of a common child joined, directions dropped; Lauritzen et al. 1990).
3. A separator ``Z ⊆ R`` shrinks to a *minimal* one in two linear passes: keep the nodes
   of ``Z`` reachable from ``X`` without passing through ``Z``, then those of the rest
   reachable from ``Y`` the same way (``FindMinSep``). A separator of least total cost
   is a minimum vertex cut between ``X`` and ``Y`` in the moral graph, found by max-flow
   on the graph with every node split in two (``FindMinCostSep``).

So :func:`minimal_backdoor_set` costs ``O(n + m)`` and :func:`minimum_cost_backdoor_set`
one max-flow, however many minimal sets there are: a graph with ``k`` parallel
confounded paths has ``2**k`` of them. :func:`iter_minimal_backdoor_sets` lists them
lazily with polynomial delay (Berry, Bordat and Cogis 1999: every minimal separator is
reached from the one closest to ``X`` by moving one of its vertices to ``X``'s side), so
a caller can stop after the first few.

    >>> from causalkit.graph import CausalGraph
    >>> g = CausalGraph([("A", "X"), ("A", "C"), ("B", "C"), ("B", "Y"), ("C", "X"),
    ...                  ("C", "Y"), ("X", "Y")])
    >>> sorted(minimal_backdoor_set(g, {"X"}, {"Y"}))
    ['A', 'C']
    >>> [sorted(z) for z in iter_minimal_backdoor_sets(g, {"X"}, {"Y"})]
    [['A', 'C'], ['B', 'C']]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx

#: A :class:`causalkit.graph.CausalGraph` (not imported: the graph module imports this one).
CausalGraph = Any

__all__ = ["minimal_backdoor_set", "minimum_cost_backdoor_set", "iter_minimal_backdoor_sets",
           "moral_ancestral"]


def _ancestral(g: CausalGraph, xs: set[str], ys: set[str]) -> set[str]:
    """``An(X ∪ Y)`` in the graph without the outgoing edges of ``X`` (X, Y included)."""
    pred = g._g.pred
    seen = set(xs) | set(ys)
    stack = list(seen)
    while stack:
        v = stack.pop()
        for p in pred[v]:
            if p not in seen and p not in xs:  # edges out of X are cut
                seen.add(p)
                stack.append(p)
    return seen


def moral_ancestral(g: CausalGraph, xs: set[str], ys: set[str]
                    ) -> tuple[dict[str, set[str]], set[str]]:
    """The moral graph of ``G_X[An(X ∪ Y)]`` as an adjacency dict, and that node set."""
    anc = _ancestral(g, xs, ys)
    pred = g._g.pred
    adj: dict[str, set[str]] = {v: set() for v in anc}
    for v in anc:
        if v in xs:
            ps = [p for p in pred[v] if p in anc]
        else:
            ps = [p for p in pred[v] if p in anc and p not in xs]
        for p in ps:
            adj[v].add(p)
            adj[p].add(v)
        for i, a in enumerate(ps):
            for b in ps[i + 1:]:
                adj[a].add(b)
                adj[b].add(a)
    return adj, anc


def _allowed(g: CausalGraph, xs: set[str], ys: set[str], excluded: set[str],
             within: set[str]) -> set[str]:
    desc: set[str] = set()
    succ = g._g.succ
    stack = list(xs)
    while stack:
        for c in succ[stack.pop()]:
            if c not in desc:
                desc.add(c)
                stack.append(c)
    return {v for v in within
            if v not in g.latent and v not in desc and v not in excluded
            and v not in xs and v not in ys}


def _reach(adj: Mapping[str, set[str]], start: set[str], blocked: set[str]) -> set[str]:
    """Nodes reachable from ``start``; nodes of ``blocked`` are reached but not passed."""
    seen = set(start)
    queue = deque(start)
    while queue:
        v = queue.popleft()
        for w in adj[v]:
            if w not in seen:
                seen.add(w)
                if w not in blocked:
                    queue.append(w)
    return seen


def minimal_backdoor_set(g: CausalGraph, xs: set[str], ys: set[str],
                         excluded: set[str] = frozenset()) -> frozenset[str] | None:
    """One minimal backdoor set for ``(xs, ys)``, or ``None`` when none exists.

    ``O(n + m)``: the largest candidate ``R ∩ A`` is tested and then shrunk by two
    reachability passes in the moral graph.
    """
    adj, anc = moral_ancestral(g, xs, ys)
    z0 = _allowed(g, xs, ys, excluded, anc)
    from_x = _reach(adj, xs, z0 | ys)
    if from_x & ys:
        return None
    z1 = from_x & z0
    from_y = _reach(adj, ys, z1)
    return frozenset(from_y & z1)


def minimum_cost_backdoor_set(g: CausalGraph, xs: set[str], ys: set[str],
                              excluded: set[str] = frozenset(), *,
                              cost: Mapping[str, float] | None = None
                              ) -> frozenset[str] | None:
    """A backdoor set of least total ``cost`` (default: 1 per node, so a smallest set), or
    ``None`` when none exists.

    Ties are broken towards nodes that come earlier in the graph's node order (among
    sets of equal cost, the one with the smallest sum of node positions), so the answer
    is deterministic. One max-flow on the split moral graph.
    """
    adj, anc = moral_ancestral(g, xs, ys)
    allowed = _allowed(g, xs, ys, excluded, anc)
    from_x = _reach(adj, xs, allowed | ys)
    if from_x & ys:
        return None
    # Only X's connected component matters; the rest is never on a cut.
    relevant = _reach(adj, xs, set())
    candidates = sorted(allowed & relevant, key=g._index.__getitem__)
    if not candidates:
        return frozenset()
    rank = {v: i + 1 for i, v in enumerate(candidates)}
    scale = sum(rank.values()) + 1
    costs = {}
    for v in candidates:
        c = 1.0 if cost is None else float(cost.get(v, 1.0))
        if c < 0:
            from causalkit.errors import GraphError
            raise GraphError(f"cost of {v!r} is {c}; costs must be non-negative")
        costs[v] = c
    integral = all(float(c).is_integer() for c in costs.values())
    h = nx.DiGraph()
    source, sink = ("s",), ("t",)
    for v in relevant | xs | ys:
        if v in rank:
            cap = (int(costs[v]) * scale + rank[v]) if integral else \
                costs[v] * scale + rank[v]
            h.add_edge((v, 0), (v, 1), capacity=cap)
        else:
            h.add_edge((v, 0), (v, 1))  # no capacity attribute: infinite
    for v in relevant | xs | ys:
        for w in adj[v]:
            if w in relevant or w in xs or w in ys:
                h.add_edge((v, 1), (w, 0))
    for x in xs:
        h.add_edge(source, (x, 0))
    for y in ys:
        h.add_edge((y, 1), sink)
    _, (side, _) = nx.minimum_cut(h, source, sink)
    return frozenset(v for v in candidates if (v, 0) in side and (v, 1) not in side)


def iter_minimal_backdoor_sets(g: CausalGraph, xs: set[str], ys: set[str],
                               excluded: set[str] = frozenset()) -> Iterator[frozenset[str]]:
    """Every minimal backdoor set, lazily, each after polynomial work.

    Yields nothing when no backdoor set exists and just ``frozenset()`` when none is
    needed. Stop iterating (``itertools.islice``) to cap the work.
    """
    adj, anc = moral_ancestral(g, xs, ys)
    forbidden = (anc - _allowed(g, xs, ys, excluded, anc)) - xs - ys
    # Merge X into "s" and Y into "t"; fresh objects cannot clash with node names.
    s, t = object(), object()
    h = nx.Graph()
    rename: dict[str, object] = {v: s for v in xs} | {v: t for v in ys}
    h.add_nodes_from(rename.get(v, v) for v in anc)
    for u in anc:
        for v in adj[u]:
            a, b = rename.get(u, u), rename.get(v, v)
            if a is not b:
                h.add_edge(a, b)
    # Eliminate nodes that may not be adjusted for: paths through them stay open.
    for v in forbidden:
        nbrs = list(h.neighbors(v))
        h.remove_node(v)
        h.add_edges_from((a, b) for i, a in enumerate(nbrs) for b in nbrs[i + 1:])
    if not nx.has_path(h, s, t):
        yield frozenset()
        return
    if h.has_edge(s, t):
        return

    def close_separator(side: set) -> frozenset | None:
        closed = set(side)
        for v in side:
            closed.update(h.neighbors(v))
        if t in closed:
            return None
        comp = _reach(h.adj, {t}, closed)
        comp -= closed
        sep: set = set()
        for v in comp:
            sep.update(w for w in h.neighbors(v) if w not in comp)
        return frozenset(sep)

    start = close_separator({s})
    assert start is not None  # s and t are not adjacent
    seen = {start}
    stack = [start]
    yield start
    while stack:
        sep = stack.pop()
        side = _reach(h.adj, {s}, set(sep)) - sep
        for v in sep:
            nxt = close_separator(side | {v})
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
                yield nxt
