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
:meth:`CausalGraph.backdoor_sets` lists every *minimal* valid set (lazily with
:meth:`CausalGraph.iter_backdoor_sets`, which matters when there are ``2**k`` of them) and
:meth:`CausalGraph.identify` finds a smallest (or least-cost) one in polynomial time
(:mod:`causalkit.separators`) and writes the formula:

    >>> g.backdoor_sets("Z", "X")
    [frozenset({'Y'}), frozenset({'F'})]
    >>> print(g.identify("Z", "X").formula)
    P(X | do(Z)) = sum_{Y} P(X | Z, Y) P(Y)

When no backdoor set exists, :meth:`CausalGraph.identify` goes on to the front-door
criterion and the ID algorithm (:mod:`causalkit.id_algorithm`), and otherwise returns the
hedge that proves the effect is not identifiable together with the bounds that still
apply (:mod:`causalkit.bounds`). Its formula is an expression object
(:mod:`causalkit.expressions`) that prints as text or LaTeX and evaluates on a
distribution.

These validators are written here, on networkx, rather than borrowed: pgmpy 1.1's
``is_valid_backdoor_adjustment_set`` accepts mediators, colliders and latent nodes
(pgmpy issue 3553).

**Interoperability** (:mod:`causalkit.graph_formats`). :meth:`CausalGraph.to_pgmpy` /
:meth:`CausalGraph.from_pgmpy` (a ``pgmpy.base.DAG`` with ``latents`` and node roles),
:meth:`CausalGraph.to_dagitty` / :meth:`CausalGraph.from_dagitty` (dagitty's language,
read as dagitty reads it; roles travel as a ``role="..."`` node attribute, latents as
``[latent]``, layout positions as ``pos``), and :meth:`CausalGraph.to_json` /
:meth:`CausalGraph.from_json` (networkx node-link data with ``role`` and ``latent`` node
attributes). :meth:`CausalGraph.save` and :func:`load` pick the format from the file
extension (``.json`` or ``.dagitty``) and write atomically.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from causalkit.errors import CausalKitError, GraphError
from causalkit.expressions import Expression
from causalkit.graph_formats import DAGITTY_MARKS
from causalkit.id_algorithm import Hedge
from causalkit.io import atomic_write_text, read_text

__all__ = ["CausalGraph", "Identification", "load", "ROLES", "DAGITTY_MARKS"]

#: The conventional role vocabulary; any other string is accepted too.
ROLES = ("confounder", "nuisance", "mechanism", "object", "image", "label", "noise")


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

    __slots__ = ("_nodes", "_edges", "_roles", "_latent", "_g", "_index", "_positions",
                 "_cache")

    def __init__(
        self,
        edges: Iterable[tuple[str, str]] = (),
        roles: Mapping[str, str | None] | None = None,
        latent: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
        *,
        positions: Mapping[str, tuple[float, float]] | None = None,
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
        self._positions: dict[str, tuple[float, float]] = {}
        for v, xy in (positions or {}).items():
            if v not in order:
                raise GraphError(_unknown(v, node_list, "positions"))
            try:
                x, y = (float(c) for c in xy)
            except (TypeError, ValueError):
                raise GraphError(f"position of {v!r} is {xy!r}; write it as (x, y)") from None
            self._positions[v] = (x, y)
        self._cache: dict[str, Any] = {}

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
                           roles=self._roles, latent=self._latent, nodes=self._nodes,
                           positions=self._positions)

    def without_outgoing(self, *nodes: str | Iterable[str]) -> CausalGraph:
        """The graph with the outgoing edges of ``nodes`` removed (Pearl's G underbar X)."""
        sources: set[str] = set()
        for item in nodes:
            sources |= self._check_set(item, "nodes")
        return CausalGraph([(u, v) for u, v in self._edges if u not in sources],
                           roles=self._roles, latent=self._latent, nodes=self._nodes,
                           positions=self._positions)

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
        return not _d_connected(self._g, x, y, z)

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

    def backdoor_sets(self, x: Nodes, y: Nodes, *, exclude: Nodes = (),
                      limit: int = 10_000) -> list[frozenset[str]]:
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
        limit : int, default 10000
            The most sets to list. A graph with ``k`` parallel confounded paths has
            ``2**k`` minimal sets; past ``limit`` this raises instead of running for
            hours. :meth:`iter_backdoor_sets` streams them without a cap, and
            :meth:`identify` finds a smallest one in polynomial time.

        Returns
        -------
        list of frozenset of str
            Sorted by size, then by node order. ``[frozenset()]`` when no adjustment is
            needed; ``[]`` when no backdoor set exists.

        Raises
        ------
        GraphError
            When there are more than ``limit`` minimal sets.

        Notes
        -----
        Every minimal valid set lies inside ``An(x | y)``, the ancestors of ``x`` and
        ``y`` in the graph without ``x``'s outgoing edges; there, d-separation is vertex
        separation in the moral graph, and the minimal separators are enumerated with
        polynomial delay (see :mod:`causalkit.separators`).
        """
        import itertools

        from causalkit.separators import iter_minimal_backdoor_sets

        xs, ys, _ = self._query_sets(x, y, ())
        excluded = self._check_set(exclude, "exclude")
        found = list(itertools.islice(iter_minimal_backdoor_sets(self, xs, ys, excluded),
                                      limit + 1))
        if len(found) > limit:
            raise GraphError(f"more than {limit} minimal backdoor sets; raise limit=, stream "
                             "them with iter_backdoor_sets(), or let identify() pick a "
                             "smallest one")
        return sorted(found, key=lambda z: (len(z), sorted(self._index[v] for v in z)))

    def iter_backdoor_sets(self, x: Nodes, y: Nodes, *, exclude: Nodes = ()
                           ) -> Iterator[frozenset[str]]:
        """The minimal backdoor sets of :meth:`backdoor_sets`, lazily and unsorted, each
        after polynomial work; take as many as needed (``itertools.islice``)."""
        from causalkit.separators import iter_minimal_backdoor_sets

        xs, ys, _ = self._query_sets(x, y, ())
        return iter_minimal_backdoor_sets(self, xs, ys, self._check_set(exclude, "exclude"))

    def minimal_backdoor_set(self, x: Nodes, y: Nodes, *, exclude: Nodes = (),
                             cost: Mapping[str, float] | None = None
                             ) -> frozenset[str] | None:
        """A backdoor set of least total ``cost`` (default: a smallest set), or ``None``.

        Polynomial (one max-flow) however many minimal sets exist; nodes missing from
        ``cost`` cost 1. Ties go to nodes earlier in node order.
        """
        from causalkit.separators import minimum_cost_backdoor_set

        xs, ys, _ = self._query_sets(x, y, ())
        excluded = self._check_set(exclude, "exclude")
        if cost is not None:
            self._check_set(list(cost), "cost")
        return minimum_cost_backdoor_set(self, xs, ys, excluded, cost=cost)

    def identify(self, x: Nodes, y: Nodes, *, exclude: Nodes = (),
                 cost: Mapping[str, float] | None = None,
                 backdoor_only: bool = False) -> Identification:
        """Identify ``P(y | do(x))`` from the observational distribution.

        The methods are tried in this order; the first that applies answers:

        1. **backdoor**: a backdoor set of least ``cost`` (a smallest one by default),
           found in polynomial time, and ``sum_z P(y | x, z) P(z)``;
        2. **no-causal-path**: ``x`` has no directed path to ``y``, so
           ``P(y | do(x)) = P(y)`` (do-calculus rule 3);
        3. **front-door**: a front-door set ``M`` and
           ``sum_m P(m | x) sum_x' P(y | x', m) P(x')``;
        4. **id**: the general ID algorithm of Shpitser and Pearl (2006);
        5. otherwise **not identifiable**, with the hedge that proves it and the bounds
           that still apply (:mod:`causalkit.bounds`, ``causalkit bound``).

        Parameters
        ----------
        x, y : str or iterable of str
            Treatment(s) and outcome(s); observed, disjoint and non-empty.
        exclude : str or iterable of str, optional
            Observed nodes that must not appear in the formula (for instance, ones too
            costly to measure): every method treats them as unmeasured.
        cost : mapping of str to float, optional
            Cost of measuring each node (default 1): the backdoor set has least total
            cost.
        backdoor_only : bool, default False
            Report only what the backdoor criterion proves (skip steps 2 to 4).

        Returns
        -------
        Identification
            The verdict, the method, the expression (``.expression``: text, LaTeX,
            ``evaluate``), the formula as text, and a reason when not identifiable.

        Examples
        --------
        >>> g = CausalGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")], latent={"U"})
        >>> result = g.identify("X", "Y")
        >>> result.method
        'front-door'
        >>> print(result.formula)
        P(Y | do(X)) = sum_{M} P(M | X) [sum_{X'} P(Y | X', M) P(X')]
        """
        from causalkit import id_algorithm
        from causalkit.expressions import Prob, product, summation
        from causalkit.separators import minimum_cost_backdoor_set

        xs, ys, _ = self._query_sets(x, y, ())
        excluded = self._check_set(exclude, "exclude")
        if cost is not None:
            self._check_set(list(cost), "cost")
        xo, yo = self._ordered(xs), self._ordered(ys)
        lat = self._ordered((xs | ys) & self._latent)
        if lat:
            raise GraphError(f"cannot identify an effect of or on latent node(s) "
                             f"{', '.join(lat)}; query observed nodes")
        query = dict(x=tuple(xo), y=tuple(yo))
        chosen = minimum_cost_backdoor_set(self, xs, ys, excluded, cost=cost)
        if chosen is not None:
            zo = self._ordered(chosen)
            expr = (Prob(tuple(yo), tuple(xo)) if not zo else
                    summation(zo, product([Prob(tuple(yo), tuple(xo) + tuple(zo)),
                                           Prob(tuple(zo))])))
            return Identification(**query, identifiable=True, method="backdoor",
                                  adjustment_set=tuple(zo), expression=expr,
                                  all_sets=(tuple(zo),))
        if backdoor_only:
            return Identification(**query, identifiable=False, method=None,
                                  adjustment_set=None,
                                  reason=_no_backdoor_reason(self, xs, ys, excluded))
        if not (self.descendants(xs) & ys):
            return Identification(
                **query, identifiable=True, method="no-causal-path", adjustment_set=None,
                expression=Prob(tuple(yo)),
                reason=f"no directed path from {', '.join(xo)} to {', '.join(yo)}, so the "
                       "intervention leaves it unchanged (do-calculus rule 3); no backdoor "
                       "set exists")
        fd = id_algorithm.front_door_set(self, xs, ys, excluded)
        if fd is not None:
            mo = self._ordered(fd)
            return Identification(**query, identifiable=True, method="front-door",
                                  adjustment_set=None, front_door_set=tuple(mo),
                                  expression=id_algorithm.front_door_expression(xo, yo, mo))
        measured = self if not excluded else CausalGraph(
            self._edges, roles=self._roles, latent=self._latent | excluded, nodes=self._nodes)
        try:
            expr = id_algorithm.identify_effect(measured, xs, ys)
        except id_algorithm.NotIdentifiable as exc:
            hedge = exc.hedge
            reason = (f"{_no_backdoor_reason(self, xs, ys, excluded)}; no front-door set; "
                      f"the ID algorithm finds the hedge {hedge}, which proves that no "
                      "formula in P(v) exists")
            return Identification(**query, identifiable=False, method=None,
                                  adjustment_set=None, reason=reason, hedge=hedge,
                                  bounds=_bounds_that_apply(self, xo, yo))
        return Identification(**query, identifiable=True, method="id", adjustment_set=None,
                              expression=expr)

    # ------------------------------------------------------------------ interop
    @property
    def positions(self) -> dict[str, tuple[float, float]]:
        """Layout positions ``node -> (x, y)`` read from a file (dagitty's ``pos``); used
        for drawing and written back on a round trip, ignored by every analysis."""
        return dict(self._positions)

    def to_pgmpy(self):
        """Convert to a ``pgmpy.base.DAG`` (see :func:`causalkit.graph_formats.to_pgmpy`)."""
        from causalkit import graph_formats

        return graph_formats.to_pgmpy(self)

    @classmethod
    def from_pgmpy(cls, dag) -> CausalGraph:
        """Build a graph from a pgmpy ``DAG`` (see
        :func:`causalkit.graph_formats.from_pgmpy`)."""
        from causalkit import graph_formats

        return graph_formats.from_pgmpy(dag, cls)

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

        Latent nodes carry dagitty's ``latent`` mark. A role that is one of dagitty's marks
        (``exposure``, ``outcome``, ``adjusted``, ``selected``) is written as that mark;
        any other role as the attribute ``role="..."``, which dagitty keeps and ignores;
        positions as ``pos="x,y"``. :meth:`from_dagitty` reads all of it back.

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
        from causalkit import graph_formats

        return graph_formats.to_dagitty(self)

    @classmethod
    def from_dagitty(cls, text: str) -> CausalGraph:
        """Parse dagitty text (``dag { A [latent] A -> B <- C }``) as dagitty reads it.

        Named and ``strict`` graphs, nested groups, several statements on a line, all of
        dagitty's attribute aliases (``[l]``, ``[u]``, ``[e]``, ``[o]``, ...) and
        positions are read; ``A <-> B`` becomes a latent confounder whose name collides
        with no other node. See :mod:`causalkit.graph_formats` for the grammar and the
        refusals (each names its line and column).
        """
        from causalkit import graph_formats

        return graph_formats.from_dagitty(text, cls)

    def to_json(self, *, indent: int | None = 2) -> str:
        """networkx node-link JSON with ``role`` and ``latent`` node attributes.

        The ``graph`` member records ``{"format": "causalkit.graph", "version": 1}``.
        """
        from causalkit import graph_formats

        return graph_formats.to_json(self, indent=indent)

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any]) -> CausalGraph:
        """Read :meth:`to_json` output (a string or the parsed dictionary).

        Plain networkx node-link data (``links`` or ``edges`` key) is accepted as well;
        a dictionary in the :meth:`from_spec` layout is passed on to it.
        """
        from causalkit import graph_formats

        return graph_formats.from_json(data, cls)

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
        ``"backdoor"``, ``"no-causal-path"`` (``x`` does not cause ``y``),
        ``"front-door"``, ``"id"`` (the ID algorithm) or ``None``.
    adjustment_set : tuple of str or None
        The chosen backdoor set (empty tuple: no adjustment needed).
    expression : Expression or None
        The identifying formula as an object: ``.text()``, ``.latex()``,
        ``.evaluate(distribution, values)`` (see :mod:`causalkit.expressions`).
    reason : str or None
        Why the effect is not identified (or a note for ``"no-causal-path"``).
    all_sets : tuple of tuple of str
        The chosen backdoor set; every minimal one is listed by
        :meth:`CausalGraph.backdoor_sets`.
    front_door_set : tuple of str or None
        The mediators of a front-door answer.
    hedge : Hedge or None
        When not identifiable: the hedge (c-forests ``F' ⊂ F``) that proves it.
    bounds : tuple of str
        When not identifiable: the bounds on ``P(y | do(x))`` that still apply, as
        formulas; ``causalkit bound`` computes them from data.
    """

    x: tuple[str, ...]
    y: tuple[str, ...]
    identifiable: bool
    method: str | None
    adjustment_set: tuple[str, ...] | None
    formula: str | None = None
    reason: str | None = None
    all_sets: tuple[tuple[str, ...], ...] = field(default=())
    expression: Expression | None = None
    front_door_set: tuple[str, ...] | None = None
    hedge: Hedge | None = None
    bounds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.formula is None and self.expression is not None:
            text = f"{self.query()} = {self.expression.text()}"
            if self.free_extra:
                text += f" (for any value of {', '.join(self.free_extra)})"
            object.__setattr__(self, "formula", text)

    @property
    def free_extra(self) -> tuple[str, ...]:
        """Variables of the formula outside the query (the ID algorithm's line 3 adds them
        to ``do``): the formula holds for every value of them."""
        if self.expression is None:
            return ()
        return tuple(sorted(self.expression.free - set(self.x) - set(self.y)))

    def evaluate(self, distribution: Any, values: Mapping[str, int]) -> float:
        """``P(y | do(x))`` from the formula, ``values`` giving ``x`` and ``y`` (the extra
        variables of :attr:`free_extra` default to 0).

        Raises
        ------
        CausalKitError
            When the effect is not identifiable, a value is missing, or positivity fails.
        """
        if self.expression is None:
            raise CausalKitError(f"{self.query()} is not identifiable: {self.reason}")
        return self.expression.evaluate(distribution,
                                        {**dict.fromkeys(self.free_extra, 0), **values})

    def query(self, *, latex: bool = False) -> str:
        """``P(Y | do(X))`` as text (or LaTeX)."""
        y, x = ", ".join(self.y), ", ".join(self.x)
        if latex:
            from causalkit.expressions import Prob

            inner = Prob(self.y).latex()[2:-1]
            xs = Prob(self.x).latex()[2:-1]
            return rf"P({inner} \mid do({xs}))"
        return f"P({y} | do({x}))"

    def latex(self) -> str | None:
        """The formula in LaTeX (``None`` when not identifiable)."""
        if self.expression is None:
            return None
        tail = (rf" \quad \text{{(for any value of {', '.join(self.free_extra)})}}"
                if self.free_extra else "")
        return f"{self.query(latex=True)} = {self.expression.latex()}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"x": list(self.x), "y": list(self.y), "identifiable": self.identifiable,
                "method": self.method,
                "adjustment_set": None if self.adjustment_set is None
                else list(self.adjustment_set),
                "formula": self.formula, "latex": self.latex(), "reason": self.reason,
                "all_sets": [list(s) for s in self.all_sets],
                "front_door_set": None if self.front_door_set is None
                else list(self.front_door_set),
                "hedge": None if self.hedge is None
                else {"F": list(self.hedge.f), "F_prime": list(self.hedge.f_prime)},
                "bounds": list(self.bounds)}

    def __str__(self) -> str:
        return self.formula if self.identifiable else f"not identifiable: {self.reason}"


def load(path: str | os.PathLike) -> CausalGraph:
    """Read a graph file: ``.json`` (node-link or spec layout) or ``.dagitty``.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    DataError
        When the file is not text (binary data).
    GraphError
        On an unknown extension or an invalid graph (dagitty errors name line and
        column; an empty file is refused).
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise FileNotFoundError(f"no such graph file: {path}")
    text = read_text(path, what="graph file", fix="pass a .json or .dagitty graph")
    if fmt == "json":
        return CausalGraph.from_json(text)
    return CausalGraph.from_dagitty(text)


# ====================================================================== algorithms
def _closure(nbrs: Any, start: set[str]) -> set[str]:
    """``start`` and every node reached from it along ``nbrs`` (e.g. ``pred``: the
    ancestors)."""
    seen = set(start)
    stack = list(start)
    while stack:
        for n in nbrs[stack.pop()]:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return seen


def _d_connected(g: nx.DiGraph, xs: set[str], ys: set[str], zs: set[str]) -> bool:
    """Whether some path between ``xs`` and ``ys`` is active given ``zs`` (Bayes ball).

    Every active path can be found inside ``An(xs | ys | zs)``, so the ball never leaves
    that set: the cost is linear in its size, not in the graph's.
    """
    pred, succ = g.pred, g.succ
    anc = _closure(pred, set(xs) | set(ys) | set(zs))
    anc_z = _closure(pred, set(zs))
    # (node, up): up=True when the ball arrived from a child (or starts there).
    seen: set[tuple[str, bool]] = set()
    balls = [(x, True) for x in xs]
    while balls:
        v, up = balls.pop()
        if (v, up) in seen:
            continue
        seen.add((v, up))
        if v in ys:
            return True
        if v in zs:
            if not up:  # a collider in the conditioning set lets the ball bounce back up
                balls.extend((p, True) for p in pred[v])
            continue
        if up:
            balls.extend((p, True) for p in pred[v])
        balls.extend((c, False) for c in succ[v] if c in anc)
        if not up and v in anc_z:
            balls.extend((p, True) for p in pred[v])
    return False


def _bounds_that_apply(g: CausalGraph, xo: list[str], yo: list[str]) -> tuple[str, ...]:
    """The bounds of :mod:`causalkit.bounds` valid for a non-identifiable effect."""
    x, y = ", ".join(v.lower() for v in xo), ", ".join(v.lower() for v in yo)
    out = [f"natural: P({x}, {y}) <= P({y} | do({x})) <= P({x}, {y}) + 1 - P({x})"]
    # do(z) leaves P(y | do(x)) unchanged when every directed path from z to y meets x.
    rest = g._g.subgraph(set(g.nodes) - set(xo))
    nuisances = [z for z in g._ordered(g.ancestors(xo)) if z not in g.latent
                 and not (nx.descendants(rest, z) & set(yo))]
    if nuisances:
        out.append(f"do(z) for z in {{{', '.join(nuisances)}}}: P({x}, {y} | do(z)) <= "
                   f"P({y} | do({x})) <= P({x}, {y} | do(z)) + 1 - P({x} | do(z))")
    out.append("compute them from data with 'causalkit bound' (causalkit.bounds)")
    return tuple(out)


def _no_backdoor_reason(g: CausalGraph, xs: set[str], ys: set[str], excluded: set[str],
                        max_paths: int = 200) -> str:
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
