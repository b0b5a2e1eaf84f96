"""Causal graphs: DAGs whose nodes carry a role and a latent flag.

A causal graph says which variable listens to which. In visual recognition the usual
suspects are a *confounder* C that ties a *nuisance* Z (background, viewpoint) to the
*label* Y, the *object* features F, and the *image* X that everything flows into::

    >>> from causalkit.graph import CausalGraph
    >>> g = CausalGraph(
    ...     [("C", "Z"), ("C", "Y"), ("Z", "X"), ("Y", "F"), ("F", "X")],
    ...     roles={"C": "confounder", "Z": "nuisance", "Y": "label",
    ...            "F": "object", "X": "image"},
    ...     latent={"C"},
    ... )
    >>> g.parents("X")
    ['Z', 'F']
    >>> g.nodes_with_role("nuisance")
    ['Z']

Roles are free strings (the ones above are the conventional vocabulary); a *latent* node
is one that no dataset records, so no estimator may condition on it.

**d-separation.** Two sets of nodes ``xs`` and ``ys`` are *d-separated* by ``given``
when every path between them is blocked: it passes through a non-collider (``-> v ->``
or ``<- v ->``) that is in ``given``, or through a collider (``-> v <-``) such that
neither ``v`` nor any of its descendants is in ``given``. d-separation in the graph
implies conditional independence in every distribution the graph generates, which is
what makes it useful:

    >>> g.d_separated("Z", "Y")          # open path Z <- C -> Y
    False
    >>> g.do("Z").d_separated("Z", "Y")  # after do(Z) the confounding path is cut
    True

**Backdoor adjustment.** A set ``Z`` satisfies Pearl's *backdoor criterion* relative to
``(X, Y)`` when (i) no node of ``Z`` is a descendant of ``X`` and (ii) ``Z`` blocks
every path between ``X`` and ``Y`` that starts with an arrow into ``X``. Condition (ii)
is the same as: ``X`` and ``Y`` are d-separated by ``Z`` in the graph with the outgoing
edges of ``X`` removed. A latent node can never be part of ``Z``, since one cannot
condition on what is not measured. When a backdoor set exists the causal effect is
identified by the adjustment formula

.. math:: P(y \\mid do(x)) = \\sum_z P(y \\mid x, z) P(z).

:meth:`CausalGraph.is_backdoor_set` checks the definition directly;
:meth:`CausalGraph.backdoor_sets` lists every *minimal* valid set and
:meth:`CausalGraph.identify` picks the smallest one and writes the formula:

    >>> g.backdoor_sets("Z", "X")
    [frozenset({'Y'}), frozenset({'F'})]
    >>> print(g.identify("Z", "X").formula)
    P(X | do(Z)) = sum_{Y} P(X | Z, Y) P(Y)

These validators are written here, on networkx, rather than borrowed: pgmpy 1.1's
``is_valid_backdoor_adjustment_set`` accepts mediators, colliders and latent nodes
(pgmpy issue 3553).

**Interoperability.** :meth:`CausalGraph.to_pgmpy` / :meth:`CausalGraph.from_pgmpy` (a
``pgmpy.base.DAG`` with ``latents`` and node roles), :meth:`CausalGraph.to_dagitty` /
:meth:`CausalGraph.from_dagitty` (dagitty's text format; roles travel as a
``role="..."`` node attribute, latents as ``[latent]``), and :meth:`CausalGraph.to_json`
/ :meth:`CausalGraph.from_json` (networkx node-link data with ``role`` and ``latent``
node attributes). :meth:`CausalGraph.save` and :func:`load` pick the format from the
file extension (``.json`` or ``.dagitty``) and write atomically.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from causalkit.errors import GraphError
from causalkit.io import atomic_write_text

__all__ = ["CausalGraph", "Identification", "load", "ROLES", "DAGITTY_MARKS"]

#: The conventional role vocabulary; any other string is accepted too.
ROLES = ("confounder", "nuisance", "mechanism", "object", "image", "label", "noise")

#: dagitty's own node marks. A role with one of these names is written as the bare mark.
DAGITTY_MARKS = ("exposure", "outcome", "adjusted", "selected")

# pgmpy keeps its own bookkeeping in node roles; they are not causalkit roles.
_PGMPY_RESERVED_ROLES = ("latents",)
_PGMPY_QUERY_ROLES = ("exposures", "outcomes")

_JSON_FORMAT = "causalkit.graph"
_JSON_VERSION = 1

Nodes = str | Iterable[str]


class CausalGraph:
    """A directed acyclic graph of named nodes, each with a role and a latent flag.

    The graph is a value: it is validated once, never changes, and compares equal to
    another graph with the same nodes, edges, roles and latent flags (node order is
    ignored). Operations such as :meth:`do` return new graphs.

    Parameters
    ----------
    edges : iterable of (str, str)
        Directed edges ``(parent, child)``.
    roles : mapping of str to str, optional
        Role of each node (``"confounder"``, ``"nuisance"``, ``"mechanism"``,
        ``"object"``, ``"image"``, ``"label"``, ``"noise"`` or any other string). Nodes
        without an entry have role ``None``.
    latent : iterable of str, optional
        Nodes that are not observed (no estimator may condition on them); a single
        name may be given as a string.
    nodes : iterable of str, optional
        Nodes listed first, in this order; use it for isolated nodes. Endpoints of
        ``edges`` not listed here are appended in order of appearance.

    Raises
    ------
    GraphError
        On a cycle (the cycle is named, e.g. ``A -> B -> A``), a self-loop, a
        duplicate node or edge, a non-string or empty node name, or a role or latent
        flag given for a node that is not in the graph.

    Examples
    --------
    >>> g = CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})
    >>> g.topological_order()
    ['U', 'X', 'Y']
    >>> g.is_latent("U"), g.role("X")
    (True, None)
    """

    __slots__ = ("_nodes", "_edges", "_roles", "_latent", "_g", "_index")

    def __init__(
        self,
        edges: Iterable[tuple[str, str]] = (),
        roles: Mapping[str, str | None] | None = None,
        latent: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
    ) -> None:
        order: dict[str, None] = {}
        for v in [] if nodes is None else _as_list(nodes, "nodes"):
            _check_name(v)
            if v in order:
                raise GraphError(f"duplicate node {v!r} in nodes; list each node once")
            order[v] = None
        edge_list: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for item in _as_list(edges, "edges"):
            if isinstance(item, (str, bytes)) or len(tuple(item)) != 2:
                raise GraphError(f"edge {item!r} is not a (parent, child) pair; "
                                 "write edges as [('A', 'B'), ...]")
            u, v = tuple(item)
            _check_name(u)
            _check_name(v)
            if u == v:
                raise GraphError(f"self-loop {u} -> {u}: a variable cannot cause itself; "
                                 "remove the edge")
            if (u, v) in seen:
                raise GraphError(f"duplicate edge {u} -> {v}; list each edge once")
            seen.add((u, v))
            edge_list.append((u, v))
            order.setdefault(u, None)
            order.setdefault(v, None)
        node_list = tuple(order)

        role_map: dict[str, str | None] = dict.fromkeys(node_list)
        for v, r in (roles or {}).items():
            if v not in order:
                raise GraphError(_unknown(v, node_list, "roles"))
            if r is not None and not isinstance(r, str):
                raise GraphError(f"role of {v!r} is {r!r}; roles are strings such as "
                                 "'confounder' or 'nuisance'")
            role_map[v] = r or None
        latent_set = frozenset([latent] if isinstance(latent, str)
                               else _as_list(latent or (), "latent"))
        for v in latent_set:
            if v not in order:
                raise GraphError(_unknown(v, node_list, "latent"))

        g = nx.DiGraph()
        for v in node_list:
            g.add_node(v, role=role_map[v], latent=v in latent_set)
        g.add_edges_from(edge_list)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            pass
        else:
            path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            raise GraphError(f"the graph has a cycle {path}; a causal graph must be "
                             "acyclic: remove or reverse one of these edges")

        self._nodes = node_list
        self._edges = tuple(edge_list)
        self._roles = role_map
        self._latent = latent_set
        self._g = g
        self._index = {v: i for i, v in enumerate(node_list)}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> CausalGraph:
        """Build a graph from a plain dictionary (as read from JSON or YAML).

        Parameters
        ----------
        spec : mapping
            ``{"nodes": {...}, "edges": [[parent, child], ...]}``. ``nodes`` is either a
            list of names or a mapping ``name -> {"role": str, "latent": bool}``. Every
            edge endpoint must be declared in ``nodes`` when ``nodes`` is given, so that
            a typo in an edge is an error rather than a new node.

        Returns
        -------
        CausalGraph

        Raises
        ------
        GraphError
            On unknown keys, an undeclared edge endpoint, or any invalid graph.

        Examples
        --------
        >>> CausalGraph.from_spec({
        ...     "nodes": {"C": {"role": "confounder", "latent": True},
        ...               "Z": {"role": "nuisance"}},
        ...     "edges": [["C", "Z"]]}).latent
        frozenset({'C'})
        """
        if not isinstance(spec, Mapping):
            raise GraphError("a graph spec is a mapping with keys 'nodes' and 'edges'")
        extra = set(spec) - {"nodes", "edges"}
        if extra:
            raise GraphError(f"unknown key(s) {sorted(extra)} in graph spec; "
                             "use 'nodes' and 'edges'")
        raw_nodes = spec.get("nodes")
        edges = [tuple(e) if isinstance(e, (list, tuple)) else e
                 for e in spec.get("edges", [])]
        roles: dict[str, str | None] = {}
        latent: set[str] = set()
        names: list[str] | None = None
        if isinstance(raw_nodes, Mapping):
            names = list(raw_nodes)
            for v, attrs in raw_nodes.items():
                attrs = attrs or {}
                if not isinstance(attrs, Mapping):
                    raise GraphError(f"node {v!r}: expected {{'role': ..., 'latent': ...}}, "
                                     f"got {attrs!r}")
                bad = set(attrs) - {"role", "latent"}
                if bad:
                    raise GraphError(f"node {v!r}: unknown attribute(s) {sorted(bad)}; "
                                     "use 'role' and 'latent'")
                roles[v] = attrs.get("role")
                if attrs.get("latent", False):
                    latent.add(v)
        elif raw_nodes is not None:
            names = _as_list(raw_nodes, "nodes")
        if names is not None:
            declared = set(names)
            for e in edges:
                if isinstance(e, tuple):
                    for v in e:
                        if isinstance(v, str) and v not in declared:
                            raise GraphError(
                                f"edge {e[0]} -> {e[1]} uses undeclared node {v!r}"
                                f"{_suggest(v, names)}; add it to 'nodes' or fix the edge")
        return cls(edges, roles=roles, latent=latent, nodes=names)

    def to_spec(self) -> dict[str, Any]:
        """The inverse of :meth:`from_spec`: a JSON-ready dictionary."""
        return {
            "nodes": {v: {"role": self._roles[v], "latent": v in self._latent}
                      for v in self._nodes},
            "edges": [[u, v] for u, v in self._edges],
        }

    # ------------------------------------------------------------------ structure
    @property
    def nodes(self) -> list[str]:
        """Node names in insertion order."""
        return list(self._nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Edges ``(parent, child)`` in insertion order."""
        return list(self._edges)

    @property
    def roles(self) -> dict[str, str | None]:
        """Mapping node -> role (``None`` where no role was given)."""
        return dict(self._roles)

    @property
    def latent(self) -> frozenset[str]:
        """The latent (unobserved) nodes."""
        return self._latent

    @property
    def observed(self) -> list[str]:
        """The nodes that are not latent, in node order."""
        return [v for v in self._nodes if v not in self._latent]

    @property
    def nx(self) -> nx.DiGraph:
        """A fresh :class:`networkx.DiGraph` copy with node attributes ``role``, ``latent``."""
        return self._g.copy()

    def __contains__(self, node: object) -> bool:
        return node in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def parents(self, node: str) -> list[str]:
        """Direct causes of ``node``, in node order."""
        return self._ordered(self._g.predecessors(self._check(node)))

    def children(self, node: str) -> list[str]:
        """Direct effects of ``node``, in node order."""
        return self._ordered(self._g.successors(self._check(node)))

    def ancestors(self, nodes: Nodes) -> frozenset[str]:
        """Nodes with a directed path into any of ``nodes`` (the nodes themselves excluded
        unless one is an ancestor of another)."""
        out: set[str] = set()
        for v in self._check_set(nodes, "nodes"):
            out |= nx.ancestors(self._g, v)
        return frozenset(out)

    def descendants(self, nodes: Nodes) -> frozenset[str]:
        """Nodes reachable by a directed path from any of ``nodes`` (see :meth:`ancestors`)."""
        out: set[str] = set()
        for v in self._check_set(nodes, "nodes"):
            out |= nx.descendants(self._g, v)
        return frozenset(out)

    def topological_order(self) -> list[str]:
        """Nodes with every parent before its children; ties broken by node order."""
        return list(nx.lexicographical_topological_sort(self._g, key=self._index.__getitem__))

    def role(self, node: str) -> str | None:
        """The role of ``node`` (``None`` if it has none)."""
        return self._roles[self._check(node)]

    def is_latent(self, node: str) -> bool:
        """Whether ``node`` is latent (unobserved)."""
        return self._check(node) in self._latent

    def nodes_with_role(self, role: str) -> list[str]:
        """Nodes whose role is ``role``, in node order."""
        return [v for v in self._nodes if self._roles[v] == role]

    # ------------------------------------------------------------------ surgery
    def do(self, *nodes: str | Iterable[str]) -> CausalGraph:
        """Graph surgery for the intervention ``do(nodes)``: remove their incoming edges.

        Roles and latent flags are kept. Names may be given one by one or as iterables:
        ``g.do("Z1", "Z2") == g.do(["Z1", "Z2"])``.

        Returns
        -------
        CausalGraph
            A new graph; ``self`` is unchanged.
        """
        targets: set[str] = set()
        for item in nodes:
            targets |= self._check_set(item, "do")
        return CausalGraph([(u, v) for u, v in self._edges if v not in targets],
                           roles=self._roles, latent=self._latent, nodes=self._nodes)

    def without_outgoing(self, *nodes: str | Iterable[str]) -> CausalGraph:
        """The graph with the outgoing edges of ``nodes`` removed (Pearl's G underbar X)."""
        sources: set[str] = set()
        for item in nodes:
            sources |= self._check_set(item, "nodes")
        return CausalGraph([(u, v) for u, v in self._edges if u not in sources],
                           roles=self._roles, latent=self._latent, nodes=self._nodes)

    # ------------------------------------------------------------------ d-separation
    def d_separated(self, xs: Nodes, ys: Nodes, given: Nodes = ()) -> bool:
        """Whether ``xs`` and ``ys`` are d-separated by ``given``.

        Parameters
        ----------
        xs, ys : str or iterable of str
            Two disjoint, non-empty node sets.
        given : str or iterable of str, optional
            The conditioning set, disjoint from ``xs`` and ``ys``. Latent nodes are
            allowed here (d-separation is a graph property).

        Returns
        -------
        bool

        Raises
        ------
        GraphError
            On unknown nodes, empty ``xs``/``ys``, or overlapping sets.

        Examples
        --------
        >>> chain = CausalGraph([("A", "B"), ("B", "C")])
        >>> chain.d_separated("A", "C"), chain.d_separated("A", "C", given="B")
        (False, True)
        """
        x, y, z = self._query_sets(xs, ys, given)
        return nx.is_d_separator(self._g, x, y, z)

    # ------------------------------------------------------------------ backdoor
    def is_backdoor_set(self, x: Nodes, y: Nodes, z: Nodes = ()) -> bool:
        """Whether ``z`` satisfies Pearl's backdoor criterion relative to ``(x, y)``.

        ``z`` is valid when it holds no latent node, no descendant of ``x``, and
        d-separates ``x`` from ``y`` in the graph with the outgoing edges of ``x``
        removed (so that it blocks exactly the paths that enter ``x`` by an arrowhead).

        Parameters
        ----------
        x, y : str or iterable of str
            Treatment(s) and outcome(s); disjoint and non-empty.
        z : str or iterable of str, optional
            Candidate adjustment set, disjoint from ``x`` and ``y``.

        Returns
        -------
        bool

        Examples
        --------
        >>> g = CausalGraph([("C", "X"), ("C", "Y"), ("X", "M"), ("M", "Y")])
        >>> g.is_backdoor_set("X", "Y", {"C"}), g.is_backdoor_set("X", "Y", {"C", "M"})
        (True, False)
        """
        xs, ys, zs = self._query_sets(x, y, z)
        if zs & self._latent:
            return False
        if zs & self.descendants(xs):
            return False
        g = self._g.copy()
        g.remove_edges_from([(u, v) for u in xs for v in list(g.successors(u))])
        return nx.is_d_separator(g, xs, ys, zs)

    def backdoor_sets(self, x: Nodes, y: Nodes, *, exclude: Nodes = ()) -> list[frozenset[str]]:
        """All minimal backdoor adjustment sets for the effect of ``x`` on ``y``.

        A valid set is minimal when no proper subset is valid. Latent nodes, descendants
        of ``x`` and the nodes in ``exclude`` are never used.

        Parameters
        ----------
        x, y : str or iterable of str
            Treatment(s) and outcome(s); disjoint and non-empty.
        exclude : str or iterable of str, optional
            Observed nodes that must not be adjusted for (for instance, ones too costly
            to measure).

        Returns
        -------
        list of frozenset of str
            Sorted by size, then by node order. ``[frozenset()]`` when no adjustment is
            needed; ``[]`` when no backdoor set exists.

        Notes
        -----
        Every minimal valid set lies inside ``An(x | y)``, the ancestors of ``x`` and
        ``y`` in the graph without ``x``'s outgoing edges (intersecting a separator with
        that set keeps it a separator; Tian, Paz and Pearl 1998). There, d-separation is
        vertex separation in the moral graph. Nodes that may not be adjusted for are
        eliminated (their neighbours joined into a clique), ``x`` and ``y`` are merged
        into single vertices ``s`` and ``t``, and the minimal ``s``-``t`` vertex
        separators are enumerated by the close-separator method of Berry, Bordat and
        Cogis (1999): start from the separator closest to ``s`` and grow the ``s``-side
        one vertex at a time. Each separator costs ``O(n * (n + m))`` to extend, so the
        total time is ``O(N * n * (n + m))`` for ``N`` minimal sets on a moral graph of
        ``n`` vertices and ``m`` edges -- polynomial delay, unlike enumerating all
        ``2**n`` subsets. ``N`` itself can grow exponentially in pathological graphs;
        for graphs of tens of nodes it is small.
        """
        xs, ys, _ = self._query_sets(x, y, ())
        excluded = self._check_set(exclude, "exclude")
        return _minimal_backdoor_sets(self, xs, ys, excluded)

    def identify(self, x: Nodes, y: Nodes, *, exclude: Nodes = (),
                 backdoor_only: bool = False) -> Identification:
        """Identify ``P(y | do(x))`` by backdoor adjustment.

        Parameters
        ----------
        x, y : str or iterable of str
            Treatment(s) and outcome(s).
        exclude : str or iterable of str, optional
            Observed nodes that must not be adjusted for.
        backdoor_only : bool, default False
            When ``x`` has no directed path to ``y``, ``do(x)`` cannot change ``y`` and
            ``P(y | do(x)) = P(y)`` (rule 3 of the do-calculus) even if no backdoor set
            exists. Set ``True`` to report only what the backdoor criterion proves.

        Returns
        -------
        Identification
            The verdict, the chosen adjustment set (the smallest minimal set, ties
            broken by node order), the formula as text, and a reason when not
            identifiable.

        Examples
        --------
        >>> g = CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})
        >>> result = g.identify("X", "Y")
        >>> result.identifiable
        False
        >>> print(result.reason)  # doctest: +NORMALIZE_WHITESPACE
        no backdoor adjustment set exists: the backdoor path X <- U -> Y stays open
        (latent: U)
        """
        xs, ys, _ = self._query_sets(x, y, ())
        excluded = self._check_set(exclude, "exclude")
        xo, yo = self._ordered(xs), self._ordered(ys)
        sets = _minimal_backdoor_sets(self, xs, ys, excluded)
        if sets:
            chosen = sets[0]
            return Identification(
                x=tuple(xo), y=tuple(yo), identifiable=True, method="backdoor",
                adjustment_set=tuple(self._ordered(chosen)),
                formula=_adjustment_formula(xo, yo, self._ordered(chosen)),
                all_sets=tuple(tuple(self._ordered(s)) for s in sets))
        if not backdoor_only and not (self.descendants(xs) & ys):
            return Identification(
                x=tuple(xo), y=tuple(yo), identifiable=True, method="no-causal-path",
                adjustment_set=None,
                formula=f"P({', '.join(yo)} | do({', '.join(xo)})) = P({', '.join(yo)})",
                reason=f"no directed path from {', '.join(xo)} to {', '.join(yo)}, so the "
                       "intervention leaves it unchanged (do-calculus rule 3); no backdoor "
                       "set exists")
        return Identification(x=tuple(xo), y=tuple(yo), identifiable=False, method=None,
                              adjustment_set=None, formula=None,
                              reason=_no_backdoor_reason(self, xs, ys, excluded))

    # ------------------------------------------------------------------ interop
    def to_pgmpy(self):
        """Convert to a ``pgmpy.base.DAG``: latents in ``latents``, roles as node roles.

        Returns
        -------
        pgmpy.base.DAG
            Node ``v`` with role ``r`` carries the pgmpy role ``r``
            (``dag.get_role(r)``); latent nodes are in ``dag.latents``.
        """
        from pgmpy.base import DAG

        for r in set(self._roles.values()) & set(_PGMPY_RESERVED_ROLES):
            raise GraphError(f"role {r!r} is reserved by pgmpy; rename it")
        dag = DAG(ebunch=list(self._edges))
        dag.add_nodes_from(self._nodes)
        if self._latent:
            dag.latents = set(self._latent)
        by_role: dict[str, list[str]] = {}
        for v in self._nodes:
            if self._roles[v] is not None:
                by_role.setdefault(self._roles[v], []).append(v)
        for r, vs in by_role.items():
            dag.with_role(role=r, variables=vs, inplace=True)
        return dag

    @classmethod
    def from_pgmpy(cls, dag) -> CausalGraph:
        """Build a graph from a pgmpy ``DAG`` (or any subclass, such as a Bayesian network).

        ``dag.latents`` become latent nodes. A node's pgmpy roles other than ``latents``
        become its role; pgmpy's query roles ``exposures``/``outcomes`` are used only when
        a node has no other role. More than one remaining role is an error.
        """
        nodes = [str(v) for v in dag.nodes()]
        roles: dict[str, str | None] = {}
        for v, data in dag.nodes(data=True):
            rs = set(data.get("roles", set())) - set(_PGMPY_RESERVED_ROLES)
            if len(rs) > 1:
                rs -= set(_PGMPY_QUERY_ROLES)
            if len(rs) > 1:
                raise GraphError(f"node {v!r} has several pgmpy roles {sorted(rs)}; a "
                                 "causalkit node has one role: remove the others first")
            roles[str(v)] = next(iter(rs)) if rs else None
        return cls([(str(u), str(v)) for u, v in dag.edges()], roles=roles,
                   latent={str(v) for v in getattr(dag, "latents", set())}, nodes=nodes)

    @classmethod
    def from_nx(cls, graph: nx.DiGraph) -> CausalGraph:
        """Build a graph from a networkx DiGraph with optional ``role``/``latent`` node
        attributes (the inverse of :attr:`nx`)."""
        if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
            raise GraphError("expected a networkx.DiGraph (not a multigraph or undirected)")
        return cls(list(graph.edges()),
                   roles={v: d.get("role") for v, d in graph.nodes(data=True)},
                   latent={v for v, d in graph.nodes(data=True) if d.get("latent")},
                   nodes=list(graph.nodes()))

    def to_dagitty(self) -> str:
        """dagitty text, one node statement per node and one line per edge.

        Latent nodes carry dagitty's ``latent`` mark. A role that is one of dagitty's
        marks (``exposure``, ``outcome``, ``adjusted``, ``selected``) is written as that
        mark; any other role as the attribute ``role="..."``, which dagitty keeps and
        ignores. :meth:`from_dagitty` reads both back, so roles and latents round-trip.

        Examples
        --------
        >>> g = CausalGraph([("C", "Z")], roles={"C": "confounder", "Z": "exposure"},
        ...                 latent={"C"})
        >>> print(g.to_dagitty())
        dag {
        C [latent,role="confounder"]
        Z [exposure]
        C -> Z
        }
        """
        lines = ["dag {"]
        for v in self._nodes:
            attrs = []
            if v in self._latent:
                attrs.append("latent")
            r = self._roles[v]
            if r in DAGITTY_MARKS:
                attrs.append(r)
            elif r is not None:
                attrs.append(f"role={_quote(r, always=True)}")
            lines.append(_quote(v) + (f" [{','.join(attrs)}]" if attrs else ""))
        lines += [f"{_quote(u)} -> {_quote(v)}" for u, v in self._edges]
        lines.append("}")
        return "\n".join(lines)

    @classmethod
    def from_dagitty(cls, text: str) -> CausalGraph:
        """Parse dagitty text (``dag { A [latent] A -> B <- C }``).

        Supported: node statements with attribute lists (``latent``, dagitty's marks,
        ``role="..."``; other attributes such as ``pos`` are ignored), edge chains with
        ``->`` and ``<-``, groups ``{A B} -> C``, and ``;`` or newlines as separators. A
        bidirected edge ``A <-> B`` becomes an explicit latent confounder ``U_A_B``
        (role ``confounder``). Undirected and partially directed edges are errors: a
        causal graph is a DAG.
        """
        return _parse_dagitty(text, cls)

    def to_json(self, *, indent: int | None = 2) -> str:
        """networkx node-link JSON with ``role`` and ``latent`` node attributes.

        The ``graph`` member records ``{"format": "causalkit.graph", "version": 1}``.
        """
        data = nx.node_link_data(self._g, edges="edges")
        data["graph"] = {"format": _JSON_FORMAT, "version": _JSON_VERSION}
        # networkx lists edges grouped by source; keep insertion order so files diff well.
        data["edges"] = [{"source": u, "target": v} for u, v in self._edges]
        return json.dumps(data, indent=indent)

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any]) -> CausalGraph:
        """Read :meth:`to_json` output (a string or the parsed dictionary).

        Plain networkx node-link data (``links`` or ``edges`` key) is accepted as well;
        a dictionary in the :meth:`from_spec` layout is passed on to it.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise GraphError(f"not valid JSON ({exc}); check the file") from None
        if not isinstance(data, Mapping):
            raise GraphError("graph JSON must be an object with 'nodes' and 'edges'")
        nodes, edges = data.get("nodes"), data.get("edges")
        if (isinstance(nodes, Mapping)
                or (isinstance(nodes, list) and nodes and all(isinstance(v, str) for v in nodes))
                or (isinstance(edges, list) and edges and isinstance(edges[0], list))):
            return cls.from_spec(data)
        if data.get("directed") is False or data.get("multigraph") is True:
            raise GraphError("graph JSON must describe a directed, non-multi graph")
        link_key = "edges" if "edges" in data else "links"
        try:
            names = [n["id"] for n in data.get("nodes", [])]
            roles = {n["id"]: n.get("role") for n in data.get("nodes", [])}
            latent = {n["id"] for n in data.get("nodes", []) if n.get("latent")}
            edges = [(e["source"], e["target"]) for e in data.get(link_key, [])]
        except (KeyError, TypeError) as exc:
            raise GraphError(f"malformed node-link JSON (missing {exc}); nodes need 'id', "
                             "edges need 'source' and 'target'") from None
        return cls(edges, roles=roles, latent=latent, nodes=names)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the graph atomically; the format follows the extension (.json, .dagitty)."""
        path = Path(path)
        fmt = _format_of(path)
        text = self.to_json() + "\n" if fmt == "json" else self.to_dagitty() + "\n"
        return atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CausalGraph:
        """Read a graph written by :meth:`save` (format by extension)."""
        return load(path)

    # ------------------------------------------------------------------ value semantics
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalGraph):
            return NotImplemented
        return (set(self._nodes) == set(other._nodes) and set(self._edges) == set(other._edges)
                and self._roles == other._roles and self._latent == other._latent)

    def __hash__(self) -> int:
        return hash((frozenset(self._nodes), frozenset(self._edges),
                     frozenset(self._roles.items()), self._latent))

    def __repr__(self) -> str:
        return (f"CausalGraph(nodes={len(self._nodes)}, edges={len(self._edges)}, "
                f"latent={sorted(self._latent)})")

    # ------------------------------------------------------------------ helpers
    def _check(self, node: str) -> str:
        if node not in self._index:
            raise GraphError(_unknown(node, self._nodes, "query"))
        return node

    def _check_set(self, nodes: Nodes, what: str) -> set[str]:
        items = [nodes] if isinstance(nodes, str) else _as_list(nodes, what)
        for v in items:
            if v not in self._index:
                raise GraphError(_unknown(v, self._nodes, what))
        return set(items)

    def _query_sets(self, x: Nodes, y: Nodes, z: Nodes) -> tuple[set[str], set[str], set[str]]:
        xs, ys, zs = self._check_set(x, "x"), self._check_set(y, "y"), self._check_set(z, "z")
        if not xs or not ys:
            raise GraphError("x and y must each name at least one node")
        for a, b, name in ((xs, ys, "x and y"), (xs, zs, "x and z"), (ys, zs, "y and z")):
            if a & b:
                raise GraphError(f"{name} overlap in {sorted(a & b)}; the sets must be "
                                 "disjoint")
        return xs, ys, zs

    def _ordered(self, nodes: Iterable[str]) -> list[str]:
        return sorted(nodes, key=self._index.__getitem__)


@dataclass(frozen=True)
class Identification:
    """The answer of :meth:`CausalGraph.identify`.

    Attributes
    ----------
    x, y : tuple of str
        The query ``P(y | do(x))``.
    identifiable : bool
        Whether the effect was identified.
    method : str or None
        ``"backdoor"`` (adjustment), ``"no-causal-path"`` (``x`` does not cause ``y``)
        or ``None``.
    adjustment_set : tuple of str or None
        The chosen backdoor set (empty tuple: no adjustment needed).
    formula : str or None
        The identifying formula as text.
    reason : str or None
        Why the effect is not identified by adjustment (or a note for
        ``"no-causal-path"``).
    all_sets : tuple of tuple of str
        Every minimal backdoor set, smallest first.
    """

    x: tuple[str, ...]
    y: tuple[str, ...]
    identifiable: bool
    method: str | None
    adjustment_set: tuple[str, ...] | None
    formula: str | None
    reason: str | None = None
    all_sets: tuple[tuple[str, ...], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"x": list(self.x), "y": list(self.y), "identifiable": self.identifiable,
                "method": self.method,
                "adjustment_set": None if self.adjustment_set is None
                else list(self.adjustment_set),
                "formula": self.formula, "reason": self.reason,
                "all_sets": [list(s) for s in self.all_sets]}

    def __str__(self) -> str:
        return self.formula if self.identifiable else f"not identifiable: {self.reason}"


def load(path: str | os.PathLike) -> CausalGraph:
    """Read a graph file: ``.json`` (node-link or spec layout) or ``.dagitty``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    GraphError
        On an unknown extension or an invalid graph.
    """
    path = Path(path)
    fmt = _format_of(path)
    text = path.read_text(encoding="utf-8")
    if fmt == "json":
        return CausalGraph.from_json(text)
    return CausalGraph.from_dagitty(text)


# ====================================================================== algorithms
def _minimal_backdoor_sets(g: CausalGraph, xs: set[str], ys: set[str],
                           excluded: set[str]) -> list[frozenset[str]]:
    """Minimal backdoor sets via minimal vertex separators of the moral ancestral graph."""
    cut = g._g.copy()
    cut.remove_edges_from([(u, v) for u in xs for v in list(cut.successors(u))])
    anc = set(xs) | set(ys)
    for v in list(anc):
        anc |= nx.ancestors(cut, v)
    moral = nx.moral_graph(cut.subgraph(anc))
    forbidden = (g.latent | g.descendants(xs) | excluded) - xs - ys
    # Merge x into "s" and y into "t". Fresh names avoid clashes with user nodes.
    s, t = object(), object()
    h = nx.Graph()
    rename = {v: s for v in xs} | {v: t for v in ys}
    h.add_nodes_from(rename.get(v, v) for v in moral.nodes)
    for u, v in moral.edges:
        a, b = rename.get(u, u), rename.get(v, v)
        if a is not b:
            h.add_edge(a, b)
    # Eliminate nodes that may not be adjusted for: paths through them stay open.
    for v in forbidden & set(h.nodes):
        nbrs = list(h.neighbors(v))
        h.remove_node(v)
        h.add_edges_from((a, b) for i, a in enumerate(nbrs) for b in nbrs[i + 1:])
    if not nx.has_path(h, s, t):
        return [frozenset()]
    if h.has_edge(s, t):
        return []
    found = _minimal_st_separators(h, s, t)
    return sorted(found, key=lambda z: (len(z), sorted(g._index[v] for v in z)))


def _minimal_st_separators(h: nx.Graph, s: object, t: object) -> set[frozenset[str]]:
    """All minimal s-t vertex separators of ``h`` (s, t non-adjacent and connected).

    For a connected vertex set A containing s with t outside N[A], the neighbourhood of
    t's component in h - N[A] is a minimal s-t separator *close to* A; every minimal
    separator arises from {s} by repeatedly adding one separator vertex to the s-side
    component (Berry, Bordat & Cogis 1999).
    """

    def close_separator(side: set) -> frozenset | None:
        closed = set(side)
        for v in side:
            closed.update(h.neighbors(v))
        if t in closed:
            return None
        rest = h.subgraph(set(h.nodes) - closed)
        comp = nx.node_connected_component(rest, t)
        sep = set()
        for v in comp:
            sep.update(w for w in h.neighbors(v) if w not in comp)
        return frozenset(sep)

    def s_component(sep: frozenset) -> set:
        return nx.node_connected_component(h.subgraph(set(h.nodes) - sep), s)

    start = close_separator({s})
    assert start is not None  # s and t are not adjacent
    seen = {start}
    stack = [start]
    while stack:
        sep = stack.pop()
        side = s_component(sep)
        for v in sep:
            nxt = close_separator(side | {v})
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _adjustment_formula(xs: list[str], ys: list[str], zs: list[str]) -> str:
    x, y = ", ".join(xs), ", ".join(ys)
    if not zs:
        return f"P({y} | do({x})) = P({y} | {x})"
    z = ", ".join(zs)
    return f"P({y} | do({x})) = sum_{{{z}}} P({y} | {x}, {z}) P({z})"


def _no_backdoor_reason(g: CausalGraph, xs: set[str], ys: set[str], excluded: set[str],
                        max_paths: int = 2000) -> str:
    """Name an open backdoor path that no allowed set can block, when one is found."""
    allowed = set(g.observed) - g.descendants(xs) - excluded - xs - ys
    cut = g._g.copy()
    cut.remove_edges_from([(u, v) for u in xs for v in list(cut.successors(u))])
    anc = set(xs) | set(ys)
    for v in list(anc):
        anc |= nx.ancestors(cut, v)
    zmax = allowed & anc  # a valid set exists iff this largest candidate is one
    z_anc = set(zmax)
    for v in zmax:
        z_anc |= nx.ancestors(cut, v)
    skeleton = cut.to_undirected(as_view=True)
    base = "no backdoor adjustment set exists"
    blockers = sorted((g.latent | g.descendants(xs) | excluded) - xs - ys, key=g._index.get)
    for x in g._ordered(xs):
        for y in g._ordered(ys):
            if not nx.has_path(skeleton, x, y):
                continue
            for k, path in enumerate(nx.shortest_simple_paths(skeleton, x, y)):
                if k >= max_paths:
                    break
                if _path_open(cut, path, zmax, z_anc):
                    arrows = [path[0]]
                    for a, b in zip(path, path[1:], strict=False):
                        arrows.append("->" if cut.has_edge(a, b) else "<-")
                        arrows.append(b)
                    inner = [v for v in path[1:-1] if v in blockers]
                    why = ""
                    if inner:
                        kinds = []
                        lat = [v for v in inner if v in g.latent]
                        desc = [v for v in inner if v in g.descendants(xs) and v not in lat]
                        exc = [v for v in inner if v in excluded and v not in lat + desc]
                        if lat:
                            kinds.append("latent: " + ", ".join(lat))
                        if desc:
                            kinds.append(f"descendant of {', '.join(g._ordered(xs))}: "
                                         + ", ".join(desc))
                        if exc:
                            kinds.append("excluded: " + ", ".join(exc))
                        why = f" ({'; '.join(kinds)})"
                    return f"{base}: the backdoor path {' '.join(arrows)} stays open{why}"
    return (f"{base}: every candidate set leaves {', '.join(g._ordered(xs))} and "
            f"{', '.join(g._ordered(ys))} d-connected through a path into "
            f"{', '.join(g._ordered(xs))}")


def _path_open(cut: nx.DiGraph, path: list[str], z: set[str], z_anc: set[str]) -> bool:
    for a, v, b in zip(path, path[1:], path[2:], strict=False):
        collider = cut.has_edge(a, v) and cut.has_edge(b, v)
        if collider and v not in z_anc:
            return False
        if not collider and v in z:
            return False
    return True


# ====================================================================== dagitty
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<arrow><->|->|<-|--|@->|<-@|@-@|@--|--@)
  | (?P<lbrace>\{) | (?P<rbrace>\}) | (?P<semi>;) | (?P<comma>,) | (?P<assign>=)
  | (?P<attrs>\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z0-9_.:+*/$%&|^~?!']+)
""", re.VERBOSE)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.]+")
_ATTR = re.compile(r'\s*([A-Za-z_][\w-]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')
_GRAPH_TYPES = ("dag", "graph", "digraph", "pdag", "mag", "pag")


def _quote(name: str, always: bool = False) -> str:
    if not always and _PLAIN_NAME.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise GraphError(f"dagitty: cannot parse {text[pos:pos + 20]!r} on line {line}; "
                             "expected a node name, an edge (->, <-) or an attribute list")
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup, m.group()))
        pos = m.end()
    return tokens


def _parse_attrs(raw: str) -> dict[str, str | None]:
    body, out, pos = raw[1:-1], {}, 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        m = _ATTR.match(body, pos)
        if m is None or m.end() == pos:
            raise GraphError(f"dagitty: cannot parse attribute list {raw!r}; write "
                             '[latent,role="confounder"]')
        value = m.group(2)
        out[m.group(1)] = None if value is None else _unquote(value.strip())
        pos = m.end()
    return out


def _parse_dagitty(text: str, cls: type[CausalGraph]) -> CausalGraph:
    if not isinstance(text, str):
        raise GraphError("dagitty input must be text")
    tokens = _tokenize(text)
    i = 0
    if tokens and tokens[0][0] == "name" and tokens[0][1].lower() in _GRAPH_TYPES:
        kind = tokens[0][1].lower()
        if kind not in ("dag", "digraph", "graph"):
            raise GraphError(f"dagitty: a {kind.upper()} is not a DAG; causalkit reads "
                             "'dag { ... }'")
        i = 1
    if i < len(tokens) and tokens[i][0] == "lbrace" and tokens[-1][0] == "rbrace":
        tokens = tokens[i + 1:-1]
    elif i:
        raise GraphError("dagitty: expected 'dag { ... }' with matching braces")

    order: dict[str, None] = {}
    node_attrs: dict[str, dict[str, str | None]] = {}
    edges: list[tuple[str, str]] = []
    roles: dict[str, str | None] = {}
    latent: set[str] = set()

    def operand(k: int) -> tuple[list[str], int]:
        kind, tok = tokens[k]
        if kind == "lbrace":
            names, k = [], k + 1
            while k < len(tokens) and tokens[k][0] != "rbrace":
                if tokens[k][0] in ("name", "quoted"):
                    names.append(_unquote(tokens[k][1]))
                    order.setdefault(names[-1], None)
                elif tokens[k][0] not in ("comma", "semi"):
                    raise GraphError(f"dagitty: unexpected {tokens[k][1]!r} in a group")
                k += 1
            if k == len(tokens):
                raise GraphError("dagitty: unclosed '{' group")
            return names, k + 1
        if kind not in ("name", "quoted"):
            raise GraphError(f"dagitty: unexpected {tok!r}; expected a node name")
        name = _unquote(tok)
        order.setdefault(name, None)
        k += 1
        if k < len(tokens) and tokens[k][0] == "attrs":
            node_attrs.setdefault(name, {}).update(_parse_attrs(tokens[k][1]))
            k += 1
        return [name], k

    k = 0
    while k < len(tokens):
        if tokens[k][0] in ("semi", "comma"):
            k += 1
            continue
        if k + 1 < len(tokens) and tokens[k + 1][0] == "assign":
            # A graph attribute such as bb="0,0,1,1" (dagitty.net writes one): ignored.
            if k + 2 >= len(tokens) or tokens[k + 2][0] not in ("name", "quoted"):
                raise GraphError(f"dagitty: {tokens[k][1]}= needs a value")
            k += 3
            continue
        left, k = operand(k)
        while k < len(tokens) and tokens[k][0] == "arrow":
            arrow = tokens[k][1]
            if k + 1 >= len(tokens):
                raise GraphError(f"dagitty: edge {arrow!r} has no right-hand side")
            right, k = operand(k + 1)
            for a in left:
                for b in right:
                    if arrow == "->":
                        edges.append((a, b))
                    elif arrow == "<-":
                        edges.append((b, a))
                    elif arrow == "<->":
                        u = "U_" + "_".join(sorted((a, b)))
                        order.setdefault(u, None)
                        latent.add(u)
                        roles[u] = "confounder"
                        edges += [(u, a), (u, b)]
                    else:
                        raise GraphError(f"dagitty: edge {a} {arrow} {b} is not directed; "
                                         "a causal graph needs -> or <- edges")
            left = right

    for v, attrs in node_attrs.items():
        if "latent" in attrs:
            latent.add(v)
        marks = [m for m in DAGITTY_MARKS if m in attrs]
        if "role" in attrs:
            roles[v] = attrs["role"]
        elif marks:
            roles[v] = marks[0]
    return cls(edges, roles=roles, latent=latent, nodes=list(order))


# ====================================================================== small helpers
def _as_list(items: Any, what: str) -> list:
    if isinstance(items, (str, bytes)):
        raise GraphError(f"{what} must be a list of names, not the string {items!r}")
    try:
        return list(items)
    except TypeError:
        raise GraphError(f"{what} must be iterable, got {items!r}") from None


def _check_name(v: Any) -> None:
    if not isinstance(v, str) or not v:
        raise GraphError(f"node names must be non-empty strings, got {v!r}")


def _suggest(v: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(v), [str(n) for n in names], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(v: Any, names: Iterable[str], where: str) -> str:
    names = list(names)
    return (f"unknown node {v!r} in {where}{_suggest(v, names)}; the graph's nodes are "
            f"{', '.join(names)}")


def _format_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext == ".json":
        return "json"
    if ext in (".dagitty", ".dag"):
        return "dagitty"
    raise GraphError(f"cannot tell the graph format of {str(path)!r}; use a .json or "
                     ".dagitty file")
