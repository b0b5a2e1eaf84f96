"""Tests of causalkit.graph: validation, d-separation, backdoor sets, identify, interop."""

from __future__ import annotations

import itertools
import json
import random
import warnings

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalkit.errors import GraphError
from causalkit.graph import CausalGraph, load
from causalkit.separators import minimal_backdoor_set

# ---------------------------------------------------------------- canonical fixtures
CHAIN = CausalGraph([("A", "B"), ("B", "C")])
FORK = CausalGraph([("B", "A"), ("B", "C")])
COLLIDER = CausalGraph([("A", "B"), ("C", "B"), ("B", "D")])
# M-graph: X <- A -> M <- B -> Y, X -> Y; M is a pre-treatment collider.
M_GRAPH = CausalGraph([("A", "X"), ("A", "M"), ("B", "M"), ("B", "Y"), ("X", "Y")])
GENINT = CausalGraph(
    [("C", "Z"), ("C", "Y"), ("Z", "X"), ("F", "X"), ("Y", "F")],
    roles={"C": "confounder", "Z": "nuisance", "F": "object", "X": "image", "Y": "label"},
    latent={"C"},
)


# ---------------------------------------------------------------- construction
def test_contract_accessors():
    g = GENINT
    assert g.nodes == ["C", "Z", "Y", "X", "F"]
    assert ("C", "Z") in g.edges and len(g.edges) == 5
    assert g.parents("X") == ["Z", "F"]
    assert g.children("C") == ["Z", "Y"]
    assert g.ancestors("X") == {"C", "Z", "Y", "F"}
    assert g.descendants("Y") == {"F", "X"}
    assert g.role("C") == "confounder" and g.is_latent("C") and not g.is_latent("Z")
    assert g.nodes_with_role("image") == ["X"]
    order = g.topological_order()
    assert all(order.index(u) < order.index(v) for u, v in g.edges)
    h = g.nx
    assert isinstance(h, nx.DiGraph) and h.nodes["C"] == {"role": "confounder", "latent": True}
    h.remove_node("C")  # a copy: the graph itself is untouched
    assert "C" in g


def test_isolated_nodes_and_order():
    assert CausalGraph([("A", "B")], latent="A").latent == {"A"}
    g = CausalGraph([("A", "B")], nodes=["Q", "A"])
    assert g.nodes == ["Q", "A", "B"]
    assert g.role("Q") is None


def test_equality_ignores_order_but_not_roles_or_latents():
    a = CausalGraph([("A", "B"), ("C", "B")], roles={"A": "x"}, latent={"C"})
    b = CausalGraph([("C", "B"), ("A", "B")], roles={"A": "x"}, latent={"C"})
    assert a == b and hash(a) == hash(b)
    assert a != CausalGraph([("A", "B"), ("C", "B")], roles={"A": "x"})
    assert a != CausalGraph([("A", "B"), ("C", "B")], roles={"A": "y"}, latent={"C"})
    assert a != CausalGraph([("A", "B"), ("C", "B"), ("A", "C")], roles={"A": "x"},
                            latent={"C"})


def test_from_spec():
    g = CausalGraph.from_spec({
        "nodes": {"C": {"role": "confounder", "latent": True}, "Z": {"role": "nuisance"},
                  "Y": {"role": "label"}},
        "edges": [["C", "Z"], ["C", "Y"]]})
    assert g.latent == {"C"} and g.role("Z") == "nuisance"
    assert CausalGraph.from_spec(g.to_spec()) == g


@pytest.mark.parametrize("edges, match", [
    ([("A", "B"), ("B", "A")], r"cycle A -> B -> A"),
    ([("A", "B"), ("B", "C"), ("C", "A")], r"cycle (A -> B -> C -> A|B -> C -> A -> B|"
                                           r"C -> A -> B -> C)"),
    ([("A", "A")], r"self-loop A -> A"),
    ([("A", "B"), ("A", "B")], r"duplicate edge A -> B"),
    ([("A", 1)], r"non-empty strings"),
    ([("A",)], r"not a \(parent, child\) pair"),
])
def test_validation_errors(edges, match):
    with pytest.raises(GraphError, match=match):
        CausalGraph(edges)


def test_validation_unknown_and_duplicate_nodes():
    with pytest.raises(GraphError, match=r"duplicate node 'A'"):
        CausalGraph([], nodes=["A", "A"])
    with pytest.raises(GraphError, match=r"unknown node 'Q' in roles"):
        CausalGraph([("A", "B")], roles={"Q": "label"})
    with pytest.raises(GraphError, match=r"unknown node 'Q' in latent"):
        CausalGraph([("A", "B")], latent={"Q"})
    with pytest.raises(GraphError, match=r"unknown node 'Zz'.*did you mean 'Z'"):
        GENINT.d_separated("Zz", "Y")
    with pytest.raises(GraphError, match=r"undeclared node 'Yy'"):
        CausalGraph.from_spec({"nodes": ["X", "Y"], "edges": [["X", "Yy"]]})
    with pytest.raises(GraphError, match=r"overlap"):
        GENINT.d_separated("Z", "Y", given={"Z"})
    with pytest.raises(GraphError, match="unknown node"):
        GENINT.do("nope")


def test_do_removes_incoming_edges_only():
    g = GENINT.do("Z")
    assert ("C", "Z") not in g.edges and ("Z", "X") in g.edges
    assert g.latent == GENINT.latent and g.roles == GENINT.roles
    assert GENINT.do("Z", "F") == GENINT.do(["Z", "F"])
    assert ("C", "Z") in GENINT.edges  # the original is unchanged


# ---------------------------------------------------------------- d-separation
@pytest.mark.parametrize("graph, x, y, z, expected", [
    (CHAIN, "A", "C", (), False), (CHAIN, "A", "C", {"B"}, True),
    (FORK, "A", "C", (), False), (FORK, "A", "C", {"B"}, True),
    (COLLIDER, "A", "C", (), True), (COLLIDER, "A", "C", {"B"}, False),
    (COLLIDER, "A", "C", {"D"}, False),  # conditioning on a collider's descendant
    (M_GRAPH, "A", "B", (), True), (M_GRAPH, "A", "B", {"M"}, False),
    (M_GRAPH, "A", "B", {"M", "X"}, False), (M_GRAPH, "X", "Y", {"B"}, False),
    (M_GRAPH, "A", "Y", {"X", "B"}, True),
])
def test_d_separation_canonical(graph, x, y, z, expected):
    assert graph.d_separated(x, y, z) is expected


def test_d_separation_sets_and_surgery():
    assert not GENINT.d_separated("Z", "Y")
    assert GENINT.d_separated("Z", "Y", "C")
    assert GENINT.do("Z").d_separated("Z", {"Y", "F"})


# ---------------------------------------------------------------- backdoor
def test_backdoor_canonical():
    # Confounded mediator: adjust for C, never for the mediator M.
    g = CausalGraph([("C", "X"), ("C", "Y"), ("X", "M"), ("M", "Y")])
    assert g.backdoor_sets("X", "Y") == [frozenset({"C"})]
    assert not g.is_backdoor_set("X", "Y", {"M"})
    assert not g.is_backdoor_set("X", "Y", {"C", "M"})
    # M-bias: nothing needed; M alone opens X <- A -> M <- B -> Y; {M, A} closes it again.
    assert M_GRAPH.backdoor_sets("X", "Y") == [frozenset()]
    assert M_GRAPH.is_backdoor_set("X", "Y", set())
    assert not M_GRAPH.is_backdoor_set("X", "Y", {"M"})
    assert M_GRAPH.is_backdoor_set("X", "Y", {"M", "A"})
    # A latent confounder cannot be adjusted for.
    lat = CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})
    assert lat.backdoor_sets("X", "Y") == []
    assert not lat.is_backdoor_set("X", "Y", {"U"})
    assert CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")]).backdoor_sets("X", "Y") == \
        [frozenset({"U"})]


def test_backdoor_several_minimal_sets_and_exclude():
    # Two routes to block X <- A -> B -> Y: {A} or {B}; plus X <- C -> Y needs C.
    g = CausalGraph([("A", "X"), ("A", "B"), ("B", "Y"), ("C", "X"), ("C", "Y"), ("X", "Y")])
    assert g.backdoor_sets("X", "Y") == [frozenset({"A", "C"}), frozenset({"B", "C"})]
    assert g.backdoor_sets("X", "Y", exclude={"A"}) == [frozenset({"B", "C"})]
    assert g.backdoor_sets("X", "Y", exclude={"C"}) == []


def test_backdoor_genint():
    # genint: C latent, C -> Z, C -> Y, Z -> X, Y -> F -> X.
    # Effect of the nuisance Z on the image X: Z <- C -> Y -> F -> X must be blocked at Y
    # or F (C is latent).
    assert GENINT.backdoor_sets("Z", "X") == [frozenset({"Y"}), frozenset({"F"})]
    # Effect of the label Y on X: Y <- C -> Z -> X, only Z can block it.
    assert GENINT.backdoor_sets("Y", "X") == [frozenset({"Z"})]
    # Z on Y: the only backdoor path Z <- C -> Y runs through the latent C: no valid set.
    # (Z does not cause Y, so P(Y | do(Z)) = P(Y) anyway; identify says so.)
    assert GENINT.backdoor_sets("Z", "Y") == []
    # After do(Z) (GenInt's intervention) the confounding path is cut.
    assert GENINT.do("Z").backdoor_sets("Y", "X") == [frozenset()]
    assert GENINT.do("Z").backdoor_sets("Z", "X") == [frozenset()]


def _random_dag(draw_edges, n, latent_bits):
    names = [f"V{i}" for i in range(n)]
    edges = [(names[i], names[j]) for (i, j), keep in
             zip(itertools.combinations(range(n), 2), draw_edges, strict=False) if keep]
    latent = {names[i] for i in range(n) if latent_bits[i]}
    return CausalGraph(edges, latent=latent, nodes=names)


def _brute_force_minimal(g, xs, ys):
    rest = [v for v in g.nodes if v not in xs and v not in ys]
    valid = [frozenset(s) for k in range(len(rest) + 1)
             for s in itertools.combinations(rest, k) if g.is_backdoor_set(xs, ys, s)]
    return {s for s in valid if not any(t < s for t in valid)}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_backdoor_sets_match_brute_force(data):
    n = data.draw(st.integers(2, 8), label="n")
    edges = data.draw(st.lists(st.booleans(), min_size=n * (n - 1) // 2,
                               max_size=n * (n - 1) // 2), label="edges")
    latent_bits = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="latent")
    g = _random_dag(edges, n, latent_bits)
    # Shuffle which nodes are treatment/outcome so Y is sometimes upstream of X.
    perm = data.draw(st.permutations(g.nodes), label="perm")
    n_x = data.draw(st.integers(1, min(2, n - 1)), label="n_x")
    n_y = data.draw(st.integers(1, min(2, n - n_x)), label="n_y")
    xs, ys = set(perm[:n_x]), set(perm[n_x:n_x + n_y])
    got = g.backdoor_sets(xs, ys)
    assert len(got) == len(set(got))
    assert set(got) == _brute_force_minimal(g, xs, ys)
    assert all(not (s & g.latent) for s in got)


def test_backdoor_sets_match_brute_force_11_nodes():
    """Denser, larger graphs than the hypothesis test (2**9 subsets each)."""
    rng = random.Random(7)
    multi = 0
    for _ in range(25):
        bits = [rng.random() < 0.35 for _ in range(55)]
        g = _random_dag(bits, 11, [rng.random() < 0.25 for _ in range(11)])
        x, y = rng.sample(g.nodes, 2)
        got = g.backdoor_sets(x, y)
        assert set(got) == _brute_force_minimal(g, {x}, {y})
        multi += len(got) > 1
    assert multi > 0  # the sample does exercise several minimal sets


# ---------------------------------------------------------------- identify
def test_identify_formulas():
    g = CausalGraph([("C", "X"), ("C", "Y"), ("X", "Y")])
    r = g.identify("X", "Y")
    assert r.identifiable and r.method == "backdoor" and r.adjustment_set == ("C",)
    assert r.formula == "P(Y | do(X)) = sum_{C} P(Y | X, C) P(C)"
    r0 = CausalGraph([("X", "Y")]).identify("X", "Y")
    assert r0.adjustment_set == () and r0.formula == "P(Y | do(X)) = P(Y | X)"
    two = CausalGraph([("A", "X"), ("A", "Y"), ("B", "X"), ("B", "Y"), ("X", "Y")])
    assert two.identify("X", "Y").formula == \
        "P(Y | do(X)) = sum_{A, B} P(Y | X, A, B) P(A, B)"
    # Smallest set chosen, deterministically (ties by node order).
    g2 = CausalGraph([("A", "X"), ("A", "B"), ("B", "Y"), ("X", "Y")])
    assert g2.identify("X", "Y").adjustment_set == ("A",)
    assert json.loads(json.dumps(r.to_dict()))["adjustment_set"] == ["C"]


def test_identify_not_identifiable_names_path():
    lat = CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})
    r = lat.identify("X", "Y")
    assert not r.identifiable and r.formula is None
    assert "X <- U -> Y" in r.reason and "latent: U" in r.reason
    assert r.hedge is not None and r.hedge.f == ("X", "Y") and r.hedge.f_prime == ("Y",)
    assert r.bounds[0].startswith("natural: P(x, y) <= P(y | do(x))")
    assert "causalkit bound" in r.bounds[-1]
    # Frontdoor graph: not identifiable by backdoor adjustment, but by the front door.
    fd = CausalGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")], latent={"U"})
    assert not fd.identify("X", "Y", backdoor_only=True).identifiable
    assert fd.identify("X", "Y").method == "front-door"


def test_identify_no_causal_path_genint():
    r = GENINT.identify("Z", "Y")
    assert r.identifiable and r.method == "no-causal-path"
    assert r.formula == "P(Y | do(Z)) = P(Y)"
    strict = GENINT.identify("Z", "Y", backdoor_only=True)
    assert not strict.identifiable and "Z <- C -> Y" in strict.reason


# ---------------------------------------------------------------- pgmpy
def _pgmpy_backdoor(dag, x, y, z=None):
    from pgmpy.inference import CausalInference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ci = CausalInference(dag)
        if z is None:
            return ci.get_all_backdoor_adjustment_sets(x, y)
        return ci.is_valid_backdoor_adjustment_set(x, y, z)


def test_pgmpy_accepts_invalid_sets_we_reject():
    # pgmpy 1.1 only checks that X's parents are d-separated from Y given X and Z, so a
    # mediator, a latent or a collider below X passes (pgmpy issue 3553).
    mediator = CausalGraph([("X", "M"), ("M", "Y")])
    assert _pgmpy_backdoor(mediator.to_pgmpy(), "X", "Y", ["M"]) is True
    assert not mediator.is_backdoor_set("X", "Y", {"M"})
    collider = CausalGraph([("X", "K"), ("Y", "K"), ("X", "Y")])
    assert _pgmpy_backdoor(collider.to_pgmpy(), "X", "Y", ["K"]) is True
    assert not collider.is_backdoor_set("X", "Y", {"K"})
    lat = CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})
    assert _pgmpy_backdoor(lat.to_pgmpy(), "X", "Y", ["U"]) is True
    assert not lat.is_backdoor_set("X", "Y", {"U"})


def test_pgmpy_round_trip():
    dag = GENINT.to_pgmpy()
    assert dag.latents == {"C"} and dag.get_role("nuisance") == ["Z"]
    assert CausalGraph.from_pgmpy(dag) == GENINT
    g = CausalGraph([("A", "B")], nodes=["Q", "A", "B"], roles={"Q": "noise"}, latent={"Q"})
    assert CausalGraph.from_pgmpy(g.to_pgmpy()) == g


def test_from_pgmpy_query_roles():
    from pgmpy.base import DAG

    dag = DAG([("X", "Y")], exposures={"X"}, outcomes={"Y"}, roles={"image": "X"})
    g = CausalGraph.from_pgmpy(dag)
    assert g.role("X") == "image" and g.role("Y") == "outcomes"


# ---------------------------------------------------------------- dagitty
def test_dagitty_round_trip():
    text = GENINT.to_dagitty()
    assert "C [latent,role=\"confounder\"]" in text and "C -> Z" in text
    assert CausalGraph.from_dagitty(text) == GENINT
    odd = CausalGraph([("my node", 'q"x')], roles={"my node": "exposure", 'q"x': 'a "]b'},
                      latent={'q"x'})
    assert CausalGraph.from_dagitty(odd.to_dagitty()) == odd


def test_dagitty_parse_features():
    g = CausalGraph.from_dagitty("""
        dag {
          C [latent, pos="0.1,0.2"]
          Z [exposure]
          Y [outcome]
          C -> Z -> X <- F <- Y; Y <- C
          {A B} -> Z
        }""")
    assert g.latent == {"C"} and g.role("Z") == "exposure" and g.role("Y") == "outcome"
    assert set(g.edges) == {("C", "Z"), ("Z", "X"), ("F", "X"), ("Y", "F"), ("C", "Y"),
                            ("A", "Z"), ("B", "Z")}
    # dagitty.net's "model code": a graph attribute, quoted names, positions.
    web = CausalGraph.from_dagitty('dag {\nbb="-3.8,-3.4,3.4,3.5"\n"Cause Y" [pos="-0.2,-1.3"]\n'
                                   'U [latent,pos="0.1,-2.2"]\nX [exposure,pos="-1.6,1.1"]\n'
                                   '"Cause Y" -> Y\nU -> X\nU -> Y\nX -> Y\n}\n')
    assert web.nodes == ["Cause Y", "U", "X", "Y"] and web.latent == {"U"}
    assert web.backdoor_sets("X", "Y") == []
    b = CausalGraph.from_dagitty("dag { X <-> Y  X -> Y }")
    assert b.latent == {"U_X_Y"} and b.role("U_X_Y") == "confounder"
    with pytest.raises(GraphError, match=r"line 1, column 9: the undirected edge '--'"):
        CausalGraph.from_dagitty("dag { X -- Y }")
    with pytest.raises(GraphError, match="cycle"):
        CausalGraph.from_dagitty("dag { X -> Y -> X }")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dagitty_via_pgmpy_parser():
    # pgmpy's own dagitty reader agrees on the structure and the latent marks.
    from pgmpy.base import DAG

    dag = DAG.from_dagitty(GENINT.to_dagitty())
    assert set(dag.edges()) == set(GENINT.edges)
    assert set(dag.latents) == {"C"}


# ---------------------------------------------------------------- JSON and files
def test_json_round_trip(tmp_path):
    text = GENINT.to_json()
    data = json.loads(text)
    assert data["directed"] is True and {"source": "C", "target": "Z"} in data["edges"]
    assert CausalGraph.from_json(text) == GENINT
    # It is networkx node-link data: networkx reads it directly.
    h = nx.node_link_graph(data, edges="edges")
    assert h.nodes["C"]["latent"] is True and CausalGraph.from_nx(h) == GENINT
    for name in ("g.json", "g.dagitty"):
        path = GENINT.save(tmp_path / name)
        assert load(path) == GENINT == CausalGraph.load(path)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_json_spec_layout():
    spec = {"nodes": ["A", "B", "Q"], "edges": []}
    assert CausalGraph.from_json(json.dumps(spec)).nodes == ["A", "B", "Q"]
    spec = {"nodes": {"A": {"latent": True}, "B": {}}, "edges": [["A", "B"]]}
    assert CausalGraph.from_json(spec).latent == {"A"}
    with pytest.raises(GraphError, match="malformed node-link"):
        CausalGraph.from_json({"nodes": [{"name": "A"}], "edges": []})


def test_file_errors(tmp_path):
    with pytest.raises(GraphError, match=r"\.json or \.dagitty"):
        GENINT.save(tmp_path / "g.txt")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GraphError, match="not valid JSON"):
        load(bad)
    cyc = tmp_path / "cyc.json"
    cyc.write_text(json.dumps({"nodes": ["A", "B"], "edges": [["A", "B"], ["B", "A"]]}))
    with pytest.raises(GraphError, match="cycle A -> B -> A"):
        load(cyc)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.json")


def test_d_separation_matches_networkx_on_random_dags():
    rng = random.Random(3)
    for _ in range(300):
        n = rng.randint(3, 9)
        names = [f"N{i}" for i in range(n)]
        g = CausalGraph([(names[i], names[j]) for i in range(n) for j in range(i + 1, n)
                         if rng.random() < 0.35], nodes=names)
        x, y, *z = rng.sample(names, rng.randint(2, n))
        z = z[:rng.randint(0, len(z))]
        assert g.d_separated(x, y, z) == nx.is_d_separator(g.nx, {x}, {y}, set(z))


def test_polynomial_sets_match_brute_force():
    # FindMinSep gives a minimal valid set, the max-flow one a smallest (or cheapest) one,
    # exactly when brute force finds any; the exclude list is honoured.
    rng = random.Random(5)
    for _ in range(250):
        n = rng.randint(3, 8)
        names = [f"N{i}" for i in range(n)]
        g = CausalGraph([(names[i], names[j]) for i in range(n) for j in range(i + 1, n)
                         if rng.random() < 0.45],
                        latent={v for v in names if rng.random() < 0.2}, nodes=names)
        obs = g.observed
        if len(obs) < 2:
            continue
        x, y = rng.sample(obs, 2)
        exclude = {v for v in obs if v not in (x, y) and rng.random() < 0.2}
        cost = {v: rng.choice([1, 2, 5]) for v in obs if v not in (x, y)}
        rest = [v for v in g.nodes if v not in (x, y) and v not in exclude]
        valid = [frozenset(s) for k in range(len(rest) + 1)
                 for s in itertools.combinations(rest, k) if g.is_backdoor_set(x, y, s)]
        z = minimal_backdoor_set(g, {x}, {y}, exclude)
        best = g.minimal_backdoor_set(x, y, exclude=exclude)
        cheap = g.minimal_backdoor_set(x, y, exclude=exclude, cost=cost)
        if not valid:
            assert z is None and best is None and cheap is None
            continue
        assert z in valid and not any(t < z for t in valid)
        assert best in valid and len(best) == min(len(s) for s in valid)
        assert cheap in valid
        assert sum(cost[v] for v in cheap) == min(sum(cost[v] for v in s) for s in valid)
