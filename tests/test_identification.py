"""Identification: backdoor, front door and the ID algorithm against exact P(y | do(x)).

Every identified expression is evaluated on the observational distribution of a random
discrete SCM and compared with the SCM's exact interventional probability; verdicts are
compared with y0 on y0's own example graphs.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from causalkit.errors import CausalKitError, GraphError
from causalkit.expressions import Fraction, Prob, Product, Sum
from causalkit.graph import CausalGraph
from causalkit.id_algorithm import NotIdentifiable, identify_effect, project
from causalkit.scm import DiscreteSCM

FRONT_DOOR = CausalGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")], latent={"U"})
NAPKIN = CausalGraph([("U1", "W"), ("U1", "X"), ("U2", "W"), ("U2", "Y"), ("W", "R"),
                      ("R", "X"), ("X", "Y")], latent={"U1", "U2"})
BOW = CausalGraph([("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})


def _check_exact(g: CausalGraph, x: list[str], y: list[str], seed: int, card: int = 2):
    """The identified expression equals P(y | do(x)) for every value, to 1e-9."""
    result = g.identify(x, y)
    assert result.identifiable, result.reason
    model = DiscreteSCM.random(g, dict.fromkeys(g.nodes, card), seed=seed)
    for xv in itertools.product(range(card), repeat=len(x)):
        for yv in itertools.product(range(card), repeat=len(y)):
            values = dict(zip(x, xv, strict=True)) | dict(zip(y, yv, strict=True))
            truth = model.prob(dict(zip(y, yv, strict=True)), do=dict(zip(x, xv, strict=True)))
            assert abs(result.evaluate(model, values) - truth) < 1e-9, (result.formula, values)
            # The formula holds for every value of the variables line 3 adds to do(x).
            extra = result.free_extra
            for ev in itertools.product(range(card), repeat=len(extra)):
                full = values | dict(zip(extra, ev, strict=True))
                got = result.expression.evaluate(model, full)
                assert abs(got - truth) < 1e-9, (result.formula, full, got, truth)
    return result


def test_front_door_formula_and_value():
    r = _check_exact(FRONT_DOOR, ["X"], ["Y"], seed=0, card=3)
    assert r.method == "front-door" and r.front_door_set == ("M",)
    assert r.formula == "P(Y | do(X)) = sum_{M} P(M | X) [sum_{X'} P(Y | X', M) P(X')]"
    assert r.latex() == (r"P(Y \mid do(X)) = \sum_{M} P(M \mid X) \left[\sum_{X'} "
                         r"P(Y \mid X', M) P(X')\right]")


def test_napkin_by_id_algorithm():
    r = _check_exact(NAPKIN, ["X"], ["Y"], seed=1)
    assert r.method == "id" and isinstance(r.expression, Fraction)
    assert r.free_extra == ("R",) and r.formula.endswith("(for any value of R)")


def test_bow_arc_hedge_and_bounds():
    r = BOW.identify("X", "Y")
    assert not r.identifiable and r.expression is None and r.formula is None
    assert (r.hedge.f, r.hedge.f_prime) == (("X", "Y"), ("Y",))
    with pytest.raises(NotIdentifiable):
        identify_effect(BOW, {"X"}, {"Y"})
    # The natural bounds it reports contain the truth.
    model = DiscreteSCM.random(BOW, dict.fromkeys(BOW.nodes, 2), seed=3)
    from causalkit.bounds import natural_bounds

    p_xy, p_x = model.prob({"X": 1, "Y": 1}), model.prob({"X": 1})
    assert natural_bounds(p_xy, p_x).contains(model.prob({"Y": 1}, do={"X": 1}))


def test_do_z_bounds_listed_for_instrument():
    iv = CausalGraph([("Z", "X"), ("U", "X"), ("U", "Y"), ("X", "Y")], latent={"U"})
    r = iv.identify("X", "Y")
    assert not r.identifiable
    assert any(b.startswith("do(z) for z in {Z}") for b in r.bounds)


def _random_graph(rng: random.Random, n: int, p_edge: float, n_latent: int) -> CausalGraph:
    names = [f"V{i}" for i in range(n)]
    edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n)
             if rng.random() < p_edge]
    lat = set(rng.sample(names, n_latent))
    return CausalGraph(edges, latent=lat, nodes=names)


def _confounded_graph(rng: random.Random) -> CausalGraph:
    """4-6 observed nodes, random edges, 2-3 latent roots with two observed children."""
    n = rng.randint(4, 6)
    names = [f"V{i}" for i in range(n)]
    edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n)
             if rng.random() < 0.4]
    latent = set()
    for k in range(rng.randint(2, 3)):
        a, b = rng.sample(names, 2)
        edges += [(f"U{k}", a), (f"U{k}", b)]
        latent.add(f"U{k}")
    return CausalGraph(edges, latent=latent, nodes=names)


def test_random_scms_agree_with_exact_enumeration():
    rng = random.Random(7)
    methods: dict[str, int] = {}
    checked = 0
    for trial in range(600):
        g = _confounded_graph(rng)
        pairs = [(a, b) for a in g.observed for b in g.observed
                 if a != b and b in g.descendants(a)]
        if not pairs:
            continue
        x, y = rng.choice(pairs)
        r = g.identify(x, y)
        methods[r.method or "none"] = methods.get(r.method or "none", 0) + 1
        if r.identifiable:
            _check_exact(g, [x], [y], seed=trial)
            checked += 1
        else:
            # A hedge: F' a proper part of F, F meets x, F' avoids x and lies in An(y).
            f, f_prime = set(r.hedge.f), set(r.hedge.f_prime)
            assert f_prime < f and x in f and x not in f_prime
            assert f_prime <= g.ancestors(y) | {y}
    # The sample exercised every method (the ID algorithm alone is tested below too).
    assert {"backdoor", "front-door", "id", "none"} <= set(methods), methods
    assert checked >= 300, methods


def test_id_algorithm_alone_agrees_with_exact_enumeration():
    # identify_effect without the backdoor shortcut, on graphs where backdoor applies too.
    rng = random.Random(11)
    done = 0
    for trial in range(200):
        g = _random_graph(rng, 6, 0.5, 1)
        x, y = rng.sample(g.observed, 2)
        try:
            expr = identify_effect(g, {x}, {y})
        except NotIdentifiable:
            continue
        model = DiscreteSCM.random(g, dict.fromkeys(g.nodes, 2), seed=trial)
        extra = sorted(expr.free - {x, y})
        for xv, yv, *ev in itertools.product(range(2), repeat=2 + len(extra)):
            truth = model.prob({y: yv}, do={x: xv})
            values = {x: xv, y: yv} | dict(zip(extra, ev, strict=True))
            assert abs(expr.evaluate(model, values) - truth) < 1e-9
        done += 1
        if done >= 40:
            break
    assert done >= 40


def test_several_treatments_and_outcomes():
    g = CausalGraph([("U", "X1"), ("U", "Y2"), ("X1", "Y1"), ("X2", "Y1"), ("Y1", "Y2"),
                     ("X2", "X1")], latent={"U"})
    _check_exact(g, ["X1", "X2"], ["Y1", "Y2"], seed=5)


def test_exclude_means_unmeasured():
    g = CausalGraph([("C", "X"), ("C", "Y"), ("X", "M"), ("M", "Y")])
    assert g.identify("X", "Y").adjustment_set == ("C",)
    r = g.identify("X", "Y", exclude="C")
    assert r.method == "front-door" and "C" not in r.formula
    assert not g.identify("X", "Y", exclude=["C", "M"]).identifiable


def test_minimum_cost_set():
    g = CausalGraph([("A", "X"), ("A", "C"), ("B", "C"), ("B", "Y"), ("C", "X"), ("C", "Y"),
                     ("X", "Y")])
    assert g.identify("X", "Y").adjustment_set == ("A", "C")
    assert set(g.identify("X", "Y", cost={"A": 5}).adjustment_set) == {"B", "C"}
    with pytest.raises(GraphError, match="unknown node 'Q'"):
        g.identify("X", "Y", cost={"Q": 1})


def test_parallel_confounder_ladder_is_polynomial():
    # k confounded paths X <- A_i -> B_i -> Y with A_i - B_i either side: 2**k minimal sets.
    k = 20
    edges = [("X", "Y")]
    for i in range(k):
        edges += [(f"A{i}", "X"), (f"A{i}", f"B{i}"), (f"B{i}", "Y")]
    g = CausalGraph(edges)
    r = g.identify("X", "Y")
    assert r.method == "backdoor" and len(r.adjustment_set) == k
    assert g.is_backdoor_set("X", "Y", r.adjustment_set)
    first = list(itertools.islice(g.iter_backdoor_sets("X", "Y"), 5))
    assert len(first) == 5 and all(len(z) == k for z in first)
    with pytest.raises(GraphError, match="more than 100 minimal backdoor sets"):
        g.backdoor_sets("X", "Y", limit=100)


def test_latent_projection():
    a = project(NAPKIN)
    assert a.order == ("W", "R", "X", "Y")
    assert a.parents["X"] == {"R"} and a.bidirected() == [("W", "X"), ("W", "Y")]
    chain = CausalGraph([("A", "L"), ("L", "B")], latent={"L"})
    assert project(chain).parents["B"] == {"A"}


def test_expression_objects():
    e = Sum(("Z",), Product((Prob(("Y",), ("X", "Z")), Prob(("Z",)))))
    assert str(e) == "sum_{Z} P(Y | X, Z) P(Z)" and e.free == {"X", "Y"}
    assert e.latex() == r"\sum_{Z} P(Y \mid X, Z) P(Z)"
    odd = Prob(("my_var",), ("a b",))
    assert odd.latex() == r"P(\mathrm{my\_var} \mid \text{a b})"
    assert Sum(("Z2",), Prob(("Z2", "V10"))).latex() == r"\sum_{Z_{2}} P(Z_{2}, V_{10})"
    model = DiscreteSCM.random([("Z", "X"), ("Z", "Y"), ("X", "Y")],
                               {"X": 2, "Y": 2, "Z": 3}, seed=0)
    assert abs(e.evaluate(model, {"X": 1, "Y": 0}) -
               model.prob({"Y": 0}, do={"X": 1})) < 1e-12
    with pytest.raises(CausalKitError, match="no value for X"):
        e.evaluate(model, {"Y": 0})
    zero = DiscreteSCM([("X", "Y")], {"X": 2, "Y": 2},
                       {"X": np.array([1.0, 0.0]), "Y": np.array([[0.5, 0.5], [0.5, 0.5]])})
    with pytest.raises(CausalKitError):
        Prob(("Y",), ("X",)).evaluate(zero, {"X": 1, "Y": 0})


def test_identify_refuses_latent_query():
    with pytest.raises(GraphError, match="latent node"):
        BOW.identify("U", "Y")


def test_verdicts_agree_with_y0_examples():
    y0_examples = pytest.importorskip("y0.examples")
    from y0.algorithm.identify import identify_outcomes
    from y0.dsl import Variable
    from y0.graph import NxMixedGraph

    compared = 0
    for name in sorted(dir(y0_examples)):
        graph = getattr(y0_examples, name)
        if not isinstance(graph, NxMixedGraph):
            continue
        nodes = [str(v) for v in graph.nodes()]
        edges = [(str(a), str(b)) for a, b in graph.directed.edges()]
        latent = set()
        for i, (a, b) in enumerate(graph.undirected.edges()):
            u = f"__U{i}"
            latent.add(u)
            edges += [(u, str(a)), (u, str(b))]
        g = CausalGraph(edges, latent=latent, nodes=nodes)
        for x, y in itertools.permutations(nodes, 2):
            theirs = identify_outcomes(graph, treatments=Variable(x), outcomes=Variable(y))
            ours = g.identify(x, y)
            assert ours.identifiable == (theirs is not None), (name, x, y, ours.reason)
            if ours.identifiable and len(g) <= 12:
                _check_exact(g, [x], [y], seed=compared)
            compared += 1
    assert compared > 400
