"""Reading and writing causal graphs: dagitty text, pgmpy DAGs and JSON.

**dagitty** (https://dagitty.net) describes a graph in a dot-like language. This module
reads it the way dagitty's own grammar does (``jslib/parser/GraphDotParser.pegjs`` in
jtextor/dagitty)::

    graph      := ['strict'] TYPE [id] '{' statement* '}'   |   statement*
    TYPE       := dag | digraph | graph | pdag | mag | pag     (any letter case)
    statement  := id '=' id                                     (graph option: bb="...")
                | operand (EDGE operand)+ [attributes]          (an edge chain)
                | id [attributes]                               (a node)
                | group
    operand    := id | group
    group      := '{' statement* '}'                            (nests; its nodes are every
                                                                 node named inside it)
    attributes := '[' (id ['=' id] [','])* ']'
    EDGE       := -> | <- | <-> | -- | @-> | <-@ | @-@ | @-- | --@
    id         := -?[0-9A-Za-z_.]+  |  "quoted" ["+" "more"]

As in dagitty, ``x {a b}`` is the node ``x`` followed by a group (a name before a brace
is not a group's name); graphviz's ``subgraph [name] {...}`` is read as a group.
Whitespace, newlines and ``;`` all separate statements, so ``a -> b; b -> c`` and one
statement per line read the same. Text without the ``dag { ... }`` wrapper is read as
the body of a ``dag``, as dagitty does. An edge between groups joins every node of the
left group to every node of the right one: ``x -> {a -> b}`` is ``x -> a``, ``x -> b``
and ``a -> b``.

Node attributes follow dagitty's aliases: ``latent`` / ``l`` / ``unobserved`` / ``u``
make a node latent; ``exposure`` / ``e`` / ``source``, ``outcome`` / ``o`` / ``target``,
``adjusted`` / ``a`` and ``selected`` / ``s`` set its role to the long name;
``role="..."`` (causalkit's own) sets any role; ``pos="x,y"`` is a layout position, kept
on the graph and written back by :func:`to_dagitty` but ignored by every analysis.

A :class:`~causalkit.graph.CausalGraph` is a DAG with latent nodes, so ``A <-> B``
becomes an explicit latent confounder ``U_A_B -> A``, ``U_A_B -> B`` (role
``confounder``). Its name never collides with a node of the text or with another
bidirected edge's: ``U_A_B_2``, ``U_A_B_3``, ... are tried in turn. Edges a DAG cannot
hold (``--`` undirected, and the partially directed ``@->``, ``<-@``, ``@-@``, ``@--``,
``--@``) are refused, as are ``mag``/``pag`` graphs and an empty text. Every refusal
names the line and column of the offending token.

**pgmpy** ``DAG`` objects keep latents in ``dag.latents`` and roles as pgmpy node roles;
**JSON** is networkx node-link data with ``role`` and ``latent`` node attributes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from causalkit.errors import GraphError

#: A :class:`causalkit.graph.CausalGraph` (not imported: the graph module imports this one).
CausalGraph = Any

__all__ = ["DAGITTY_MARKS", "from_dagitty", "to_dagitty", "from_pgmpy", "to_pgmpy",
           "from_json", "to_json"]

#: dagitty's own node marks. A role with one of these names is written as the bare mark.
DAGITTY_MARKS = ("exposure", "outcome", "adjusted", "selected")

_LATENT_ALIASES = ("latent", "l", "unobserved", "u")
_MARK_ALIASES = {"exposure": "exposure", "e": "exposure", "source": "exposure",
                 "outcome": "outcome", "o": "outcome", "target": "outcome",
                 "adjusted": "adjusted", "a": "adjusted",
                 "selected": "selected", "s": "selected"}
_GRAPH_TYPES = ("dag", "digraph", "graph", "pdag", "mag", "pag")
_DIRECTED = ("->", "<-", "<->")
_EDGE_WORDS = {"--": "undirected", "@->": "partially directed", "<-@": "partially directed",
               "@-@": "unspecified", "@--": "partially undirected",
               "--@": "partially undirected"}

# pgmpy keeps its own bookkeeping in node roles; they are not causalkit roles.
_PGMPY_RESERVED_ROLES = ("latents",)
_PGMPY_QUERY_ROLES = ("exposures", "outcomes")
_JSON_FORMAT = "causalkit.graph"
_JSON_VERSION = 1

_TOKEN = re.compile(r"""
    (?P<ws>[\s;]+)
  | (?P<edge><->|<-@|@->|@-@|@--|--@|->|--|<-)
  | (?P<lbrace>\{) | (?P<rbrace>\}) | (?P<lbrack>\[) | (?P<rbrack>\])
  | (?P<eq>=) | (?P<comma>,) | (?P<plus>\+)
  | (?P<string>"(?:[^"\\]|\\.|\\\n)*")
  | (?P<bare>-?[0-9A-Za-z_.]+)
""", re.VERBOSE)
_BARE = re.compile(r"-?[0-9A-Za-z_.]+")
_POS = re.compile(r"\s*(-?[0-9.]+(?:[eE]-?[0-9]+)?)\s*,\s*(-?[0-9.]+(?:[eE]-?[0-9]+)?)\s*")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    line: int
    col: int

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.col}"


def _fail(tok: _Tok | tuple[int, int], msg: str) -> GraphError:
    line, col = (tok.line, tok.col) if isinstance(tok, _Tok) else tok
    return GraphError(f"dagitty, line {line}, column {col}: {msg}")


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _fail((line, pos - line_start + 1),
                        f"unexpected {text[pos:pos + 12]!r}; expected a node name, an edge "
                        "(->, <-, <->), a group {...} or an attribute list [...]")
        if m.lastgroup != "ws":
            tokens.append(_Tok(m.lastgroup, m.group(), line, pos - line_start + 1))
        chunk = m.group()
        newlines = chunk.count("\n")
        if newlines:
            line += newlines
            line_start = pos + chunk.rfind("\n") + 1
        pos = m.end()
    tokens.append(_Tok("eof", "", line, pos - line_start + 1))
    return tokens


def _unquote(token: str) -> str:
    body = token[1:-1]
    body = re.sub(r"\\\r?\n", "", body)
    return body.replace('\\"', '"')


@dataclass
class _Parsed:
    order: dict[str, None]
    edges: list[tuple[str, str]]
    bidirected: list[tuple[str, str]]
    attrs: dict[str, dict[str, str | None]]
    bb: str | None = None


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.out = _Parsed({}, [], [], {})

    # -- token helpers
    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_id(self, k: int = 0) -> bool:
        return self.peek(k).kind in ("bare", "string")

    def ident(self) -> str:
        tok = self.take()
        if tok.kind == "bare":
            return tok.text
        if tok.kind != "string":
            raise _fail(tok, f"expected a name, found {tok.text or 'the end of the text'!r}")
        value = _unquote(tok.text)
        while self.peek().kind == "plus" and self.peek(1).kind == "string":
            self.take()
            value += _unquote(self.take().text)
        return value

    # -- grammar
    def graph(self) -> tuple[str, _Parsed]:
        first = self.peek()
        kind = "dag"
        if first.kind == "eof":
            raise _fail(first, "the text holds no graph; write e.g. 'dag { X -> Y }'")
        wrapped = (first.kind == "bare" and first.text.lower() == "strict") or (
            first.kind == "bare" and first.text.lower() in _GRAPH_TYPES
            and (self.peek(1).kind == "lbrace"
                 or (self.is_id(1) and self.peek(2).kind == "lbrace")))
        if wrapped:
            if first.text.lower() == "strict":
                self.take()
            tok = self.take()
            if tok.kind != "bare" or tok.text.lower() not in _GRAPH_TYPES:
                raise _fail(tok, f"expected a graph type ({', '.join(_GRAPH_TYPES)}) after "
                                 f"'strict', found {tok.text!r}")
            kind = tok.text.lower()
            if kind in ("mag", "pag"):
                raise _fail(tok, f"a {kind.upper()} is a class of graphs, not a causal DAG; "
                                 "convert it to a DAG (or an ADMG with <->) and write "
                                 "'dag { ... }'")
            if self.is_id():
                self.ident()  # the graph's name
            brace = self.take()
            if brace.kind != "lbrace":
                raise _fail(brace, f"expected '{{' to open the {kind}, found {brace.text!r}")
            self.statements(brace)
            close = self.take()
            if close.kind != "rbrace":
                raise _fail(close, f"unclosed '{{' opened at {brace.where}")
            rest = self.peek()
            if rest.kind != "eof":
                raise _fail(rest, f"unexpected {rest.text!r} after the graph's closing '}}'; "
                                  "a file holds one graph")
        else:
            self.statements(None)
            rest = self.peek()
            if rest.kind != "eof":
                raise _fail(rest, f"unmatched {rest.text!r}")
        if not self.out.order:
            raise _fail(first, "the graph has no nodes; write e.g. 'dag { X -> Y }'")
        return kind, self.out

    def statements(self, opened: _Tok | None) -> list[str]:
        """Statements up to a closing brace (not consumed); returns the nodes named."""
        named: dict[str, None] = {}
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                if opened is not None:
                    raise _fail(opened, "this '{' is never closed; add a matching '}'")
                return list(named)
            if tok.kind == "rbrace":
                if opened is None:
                    raise _fail(tok, "'}' without a matching '{'")
                return list(named)
            for v in self.statement():
                named.setdefault(v, None)

    def statement(self) -> list[str]:
        tok = self.peek()
        if self.is_id() and self.peek(1).kind == "eq":
            key = self.ident()
            self.take()
            if not self.is_id():
                raise _fail(self.peek(), f"{key}= needs a value, e.g. {key}=\"...\"")
            value = self.ident()
            if key == "bb":
                self.out.bb = value
            return []
        if tok.kind == "bare" and tok.text in ("graph", "node", "edge") and \
                self.peek(1).kind == "lbrack":
            self.take()
            attrs = self.attributes()
            if tok.text == "graph" and attrs.get("bb"):
                self.out.bb = attrs["bb"]
            return []
        if tok.kind == "bare" and tok.text == "subgraph" and (
                self.peek(1).kind == "lbrace" or
                (self.is_id(1) and self.peek(2).kind == "lbrace")):
            self.take()  # graphviz's "subgraph [name] {...}" is a group
            if self.is_id():
                self.ident()
        left, left_tok = self.operand()
        named = list(left)
        if self.peek().kind == "edge":
            while self.peek().kind == "edge":
                arrow = self.take()
                if arrow.text not in _DIRECTED:
                    raise _fail(arrow, f"the {_EDGE_WORDS[arrow.text]} edge {arrow.text!r} "
                                       "cannot be held by a causal DAG; write -> or <- "
                                       "(or <-> for a latent confounder)")
                if self.peek().kind not in ("bare", "string", "lbrace"):
                    raise _fail(self.peek(), f"the edge {arrow.text!r} at {arrow.where} "
                                             "needs a node or a group on its right")
                right, _ = self.operand()
                named += right
                for a in left:
                    for b in right:
                        self.add_edge(a, b, arrow)
                left = right
            if self.peek().kind == "lbrack":
                self.attributes()  # edge attributes (pos, label, beta): not analysed
            return named
        if left_tok.kind == "lbrace":
            if self.peek().kind == "lbrack":
                raise _fail(self.peek(), "dagitty has no attributes for a group; put them "
                                         "on its nodes, e.g. { a [latent] b }")
            return named
        name = left[0]
        if self.peek().kind == "lbrack":
            self.out.attrs.setdefault(name, {}).update(self.attributes())
        return named

    def operand(self) -> tuple[list[str], _Tok]:
        tok = self.peek()
        if tok.kind == "lbrace":
            brace = self.take()
            named = self.statements(brace)
            self.take()
            return named, brace
        if not self.is_id():
            what = tok.text or "the end of the text"
            raise _fail(tok, f"unexpected {what!r}; expected a node name or a group {{...}}")
        name_tok = tok
        name = self.ident()
        if name in ("graph", "node"):
            raise _fail(name_tok, f"a node cannot be named {name!r} in dagitty; rename it")
        self.out.order.setdefault(name, None)
        return [name], name_tok

    def attributes(self) -> dict[str, str | None]:
        opened = self.take()
        out: dict[str, str | None] = {}
        while True:
            tok = self.peek()
            if tok.kind == "rbrack":
                self.take()
                return out
            if tok.kind == "comma":
                self.take()
                continue
            if tok.kind == "eof":
                raise _fail(opened, "this '[' is never closed; add a matching ']'")
            if not self.is_id():
                raise _fail(tok, f"unexpected {tok.text!r} in an attribute list; write "
                                 '[latent, pos="0,0"]')
            key = self.ident()
            value = None
            if self.peek().kind == "eq":
                self.take()
                if not self.is_id():
                    raise _fail(self.peek(), f"attribute {key}= needs a value")
                value_tok = self.peek()
                value = self.ident()
                if key == "pos" and not _POS.fullmatch(value):
                    raise _fail(value_tok, f'pos={value!r} is not "x,y"; write pos="0.5,1"')
            out[key] = value

    def add_edge(self, a: str, b: str, arrow: _Tok) -> None:
        if a == b:
            raise _fail(arrow, f"self-loop {a} {arrow.text} {a}: a variable cannot cause "
                               "itself; remove the edge")
        if arrow.text == "->":
            self.out.edges.append((a, b))
        elif arrow.text == "<-":
            self.out.edges.append((b, a))
        else:
            self.out.bidirected.append((a, b))


def from_dagitty(text: str, cls: type) -> CausalGraph:
    """Parse dagitty text into a graph of class ``cls`` (a
    :class:`~causalkit.graph.CausalGraph`; see the module docstring for the grammar).

    Raises
    ------
    GraphError
        On text dagitty would not read, on edges a DAG cannot hold, on an empty text or
        a graph with no nodes, and on a cycle; the message names line and column.
    """
    if not isinstance(text, str):
        raise GraphError("dagitty input must be text (str)")
    kind, parsed = _Parser(text).graph()
    order, attrs = parsed.order, parsed.attrs
    roles: dict[str, str | None] = {}
    latent: set[str] = set()
    positions: dict[str, tuple[float, float]] = {}
    for v, a in attrs.items():
        if any(k in a for k in _LATENT_ALIASES):
            latent.add(v)
        marks = [_MARK_ALIASES[k] for k in a if k in _MARK_ALIASES]
        if a.get("role"):
            roles[v] = a["role"]
        elif marks:
            roles[v] = marks[0]
        if a.get("pos"):
            m = _POS.fullmatch(a["pos"] or "")
            assert m is not None  # checked while parsing
            positions[v] = (float(m.group(1)), float(m.group(2)))
    edges = list(parsed.edges)
    taken = set(order)
    for a, b in parsed.bidirected:
        base = "U_" + "_".join(sorted((a, b)))
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        order[name] = None
        latent.add(name)
        roles[name] = "confounder"
        edges += [(name, a), (name, b)]
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in edges:  # dagitty merges a repeated edge into one
        if e not in seen:
            seen.add(e)
            unique.append(e)
    return cls(unique, roles=roles, latent=latent, nodes=list(order), positions=positions)


def _quote(name: str, always: bool = False) -> str:
    if not always and _BARE.fullmatch(name) and name not in ("graph", "node", "strict"):
        return name
    return '"' + name.replace('"', '\\"') + '"'


def _num(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def to_dagitty(graph: CausalGraph) -> str:
    """dagitty text, one node statement per node and one line per edge.

    Latent nodes carry dagitty's ``latent`` mark; a role that is one of dagitty's marks
    is written as the mark, any other role as ``role="..."`` (dagitty keeps and ignores
    it); positions are written as ``pos="x,y"``. :func:`from_dagitty` reads all of it
    back.
    """
    lines = ["dag {"]
    latent, roles, positions = graph.latent, graph.roles, graph.positions
    for v in graph.nodes:
        attrs = []
        if v in latent:
            attrs.append("latent")
        r = roles[v]
        if r in DAGITTY_MARKS:
            attrs.append(r)
        if v in positions:
            x, y = positions[v]
            attrs.append(f'pos="{_num(x)},{_num(y)}"')
        if r is not None and r not in DAGITTY_MARKS:
            attrs.append(f"role={_quote(r, always=True)}")
        lines.append(_quote(v) + (f" [{','.join(attrs)}]" if attrs else ""))
    lines += [f"{_quote(u)} -> {_quote(v)}" for u, v in graph.edges]
    lines.append("}")
    return "\n".join(lines)


# ====================================================================== pgmpy
def to_pgmpy(graph: CausalGraph):
    """Convert to a ``pgmpy.base.DAG``: latents in ``latents``, roles as node roles."""
    from pgmpy.base import DAG

    roles = graph.roles
    for r in set(roles.values()) & set(_PGMPY_RESERVED_ROLES):
        raise GraphError(f"role {r!r} is reserved by pgmpy; rename it")
    dag = DAG(ebunch=graph.edges)
    dag.add_nodes_from(graph.nodes)
    if graph.latent:
        dag.latents = set(graph.latent)
    by_role: dict[str, list[str]] = {}
    for v in graph.nodes:
        if roles[v] is not None:
            by_role.setdefault(roles[v], []).append(v)
    for r, vs in by_role.items():
        dag.with_role(role=r, variables=vs, inplace=True)
    return dag


def from_pgmpy(dag, cls: type) -> CausalGraph:
    """Build a graph from a pgmpy ``DAG`` (or any subclass, such as a Bayesian network).

    ``dag.latents`` become latent nodes. A node's pgmpy roles other than ``latents``
    become its role; pgmpy's query roles ``exposures``/``outcomes`` are used only when a
    node has no other role. More than one remaining role is an error.
    """
    nodes = [str(v) for v in dag.nodes()]
    roles: dict[str, str | None] = {}
    for v, data in dag.nodes(data=True):
        rs = set(data.get("roles", set())) - set(_PGMPY_RESERVED_ROLES)
        if len(rs) > 1:
            rs -= set(_PGMPY_QUERY_ROLES)
        if len(rs) > 1:
            raise GraphError(f"node {v!r} has several pgmpy roles {sorted(rs)}; a causalkit "
                             "node has one role: remove the others first")
        roles[str(v)] = next(iter(rs)) if rs else None
    return cls([(str(u), str(v)) for u, v in dag.edges()], roles=roles,
               latent={str(v) for v in getattr(dag, "latents", set())}, nodes=nodes)


# ====================================================================== JSON
def to_json(graph: CausalGraph, *, indent: int | None = 2) -> str:
    """networkx node-link JSON with ``role`` and ``latent`` node attributes (and ``pos``
    where a node has a position). The ``graph`` member records the format and version."""
    data = nx.node_link_data(graph.nx, edges="edges")
    data["graph"] = {"format": _JSON_FORMAT, "version": _JSON_VERSION}
    positions = graph.positions
    for node in data["nodes"]:
        if node["id"] in positions:
            node["pos"] = list(positions[node["id"]])
    # networkx lists edges grouped by source; keep insertion order so files diff well.
    data["edges"] = [{"source": u, "target": v} for u, v in graph.edges]
    return json.dumps(data, indent=indent)


def from_json(data: str | Mapping[str, Any], cls: type) -> CausalGraph:
    """Read :func:`to_json` output (a string or the parsed dictionary); plain networkx
    node-link data and the :meth:`~causalkit.graph.CausalGraph.from_spec` layout too."""
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
        items = data.get("nodes", [])
        names = [n["id"] for n in items]
        roles = {n["id"]: n.get("role") for n in items}
        latent = {n["id"] for n in items if n.get("latent")}
        positions = {n["id"]: (float(n["pos"][0]), float(n["pos"][1]))
                     for n in items if n.get("pos") is not None}
        edges = [(e["source"], e["target"]) for e in data.get(link_key, [])]
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise GraphError(f"malformed node-link JSON ({exc!r}); nodes need 'id', edges need "
                         "'source' and 'target', a 'pos' is [x, y]") from None
    return cls(edges, roles=roles, latent=latent, nodes=names, positions=positions)
