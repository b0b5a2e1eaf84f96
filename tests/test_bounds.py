"""Bounds on P(y | do(x)): exact checks on random discrete SCMs of GenInt's graph."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from causalkit.adjustment import backdoor_adjustment
from causalkit.bounds import (
    Interval,
    conditional_bounds,
    estimate_bounds,
    exact_strategy_bounds,
    intersect,
    natural_bounds,
    nuisance_bounds,
    rank_strategies,
)
from causalkit.errors import CausalKitError
from causalkit.library import get_graph, get_scm
from causalkit.scm import DiscreteSCM

# GenInt Figure 4(c) before intervening: latent C confounds both nuisances and Y.
GRAPH = get_graph("genint-split")
NUISANCES = GRAPH.nodes_with_role("nuisance")


def random_models(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        cards = {v: int(rng.integers(2, 4)) for v in GRAPH.nodes}
        cards["X"], cards["Y"] = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        # Small Dirichlet concentrations give near-deterministic, strongly confounded models.
        yield DiscreteSCM.random(GRAPH, cards, rng, concentration=float(rng.choice([0.2, 1.0])))


def test_graph_is_genint_split():
    assert GRAPH.is_latent("C") and GRAPH.role("C") == "confounder"
    assert set(NUISANCES) == {"Z1", "Z2"}
    # The bounds under do(z_i) need Z_i to affect Y only through X.
    for z in NUISANCES:
        assert "Y" not in GRAPH.do("X").descendants(z)


def test_bounds_contain_truth_on_1000_random_scms():
    """Natural, every do(z_i) (fixed values and uniform) and the intersection contain the
    truth; the backdoor adjustment on the observed nuisances equals it."""
    strategies = [[z] for z in NUISANCES] + [list(NUISANCES)]
    backdoor = GRAPH.backdoor_sets("X", "Y")
    assert backdoor, "GenInt's graph has an observed backdoor set (the nuisances)"
    checked = 0
    for model in random_models(1000, seed=0):
        nx_, ny = model.cardinality["X"], model.cardinality["Y"]
        # Exact tables, one enumeration each: P(X, Y) under each intervention.
        p_obs = model.table(["X", "Y"])
        p_do_z = [model.do({z: zv}).table(["X", "Y"]) for z in NUISANCES
                  for zv in range(model.cardinality[z])]
        for xv, yv in itertools.product(range(nx_), range(ny)):
            truth = model.table(["Y"], do={"X": xv})[yv]
            intervals = [natural_bounds(p_obs[xv, yv], p_obs[xv].sum())]
            intervals += [nuisance_bounds(t[xv, yv], t[xv].sum()) for t in p_do_z]
            for interval in intervals:
                assert interval.contains(truth), (interval, truth)
            assert intersect(intervals).contains(truth)
            checked += 1
        # The public helpers, on one query per model.
        x, y = {"X": 0}, {"Y": 0}
        truth = model.prob(y, do=x)
        assert truth == pytest.approx(model.table(["Y"], do=x)[0], abs=1e-12)
        for r in exact_strategy_bounds(model, x, y, strategies):
            assert r.interval.contains(truth)
        for zset in backdoor:
            assert abs(backdoor_adjustment(model, x, y, sorted(zset)) - truth) < 1e-9
    assert checked >= 1000


def test_conditional_form_can_exclude_the_truth():
    """Conditioning on a confounded nuisance is not intervening on it."""
    failures = 0
    for model in random_models(300, seed=1):
        x, y = {"X": 1}, {"Y": 1}
        truth = model.prob(y, do=x)
        for zv in range(model.cardinality["Z1"]):
            z = {"Z1": zv}
            if model.prob(z) == 0 or model.prob({**x, **z}) == 0:
                continue
            cond = conditional_bounds(model.prob({**x, **y}, given=z), model.prob(x, given=z))
            failures += not cond.contains(truth)
            m = model.do(z)
            assert nuisance_bounds(m.prob({**x, **y}), m.prob(x)).contains(truth)
    assert failures > 0


def test_concrete_counterexample():
    """C ~ Bern(1/2), Z1 := C, X := Z1, Y := C (Z2, F inert). P(Y=1|do(X=1)) = 1/2, but
    conditioning on Z1 = 1 selects C = 1 and gives the interval [1, 1]."""
    model = get_scm("genint-pitfall")
    assert model.graph == GRAPH
    truth = model.prob({"Y": 1}, do={"X": 1})
    assert truth == pytest.approx(0.5)
    cond = conditional_bounds(model.prob({"X": 1, "Y": 1}, given={"Z1": 1}),
                              model.prob({"X": 1}, given={"Z1": 1}))
    assert cond.lower == pytest.approx(1.0) and not cond.contains(truth)
    m = model.do({"Z1": 1})
    valid = nuisance_bounds(m.prob({"X": 1, "Y": 1}), m.prob({"X": 1}))
    assert valid.contains(truth) and valid.width == pytest.approx(0.0)


def test_theorem1_larger_p_x_do_gives_narrower_interval():
    for model in random_models(200, seed=2):
        res = exact_strategy_bounds(model, {"X": 0}, {"Y": 0}, [["Z1"], ["Z2"], ["Z1", "Z2"]])
        for a, b in itertools.permutations(res, 2):
            assert a.interval.width == pytest.approx(1 - a.p_x_do)
            if a.p_x_do > b.p_x_do + 1e-12:
                assert a.interval.width < b.interval.width
        ranked = rank_strategies({",".join(r.strategy): r.p_x_do for r in res})
        widths = [w for _, _, w in ranked]
        assert widths == sorted(widths)


def test_interval_basics_and_errors():
    assert natural_bounds(0.3, 0.4) == Interval(0.3, 0.9)
    assert intersect([Interval(0.1, 0.8), Interval(0.3, 0.9)]) == Interval(0.3, 0.8)
    with pytest.raises(CausalKitError, match="probability"):
        natural_bounds(1.2, 0.4)
    with pytest.raises(CausalKitError, match="exceeds"):
        natural_bounds(0.5, 0.4)
    with pytest.raises(CausalKitError, match="do not overlap"):
        intersect([Interval(0.0, 0.2), Interval(0.5, 0.9)])


def test_estimate_matches_exact_and_ci_covers():
    model = next(random_models(1, seed=5))
    scm = model.to_scm()
    exact = natural_bounds(model.prob({"X": 1, "Y": 1}), model.prob({"X": 1}))
    covered, reps = 0, 200
    for rep in range(reps):
        s = scm.sample(500, seed=rep)
        est = estimate_bounds({"X": s["X"], "Y": s["Y"]}, "X", "Y", 1, 1)
        ci = est.confidence_interval
        covered += ci.lower <= exact.lower + 1e-12 and exact.upper <= ci.upper + 1e-12
    # Each endpoint has an exact 97.5 % interval, so joint coverage is at least 95 %.
    assert covered / reps >= 0.93
    big = scm.sample(200_000, seed=999)
    est = estimate_bounds({"X": big["X"], "Y": big["Y"]}, "X", "Y", 1, 1)
    assert abs(est.interval.lower - exact.lower) < 0.005
    assert abs(est.interval.upper - exact.upper) < 0.005


def test_estimate_from_counts_equals_estimate_from_rows():
    rows = {"X": np.array([0, 0, 1, 1, 1]), "Y": np.array([0, 1, 1, 1, 0])}
    counts = {"X": np.array([0, 0, 1, 1]), "Y": np.array([0, 1, 0, 1])}
    a = estimate_bounds(rows, "X", "Y", 1, 1)
    b = estimate_bounds(counts, "X", "Y", 1, 1, weights=np.array([1, 1, 1, 2]))
    assert a.interval == b.interval == Interval(0.4, 0.8)
    assert a.confidence_interval == b.confidence_interval
    with pytest.raises(CausalKitError, match="column"):
        estimate_bounds(rows, "X", "W", 1, 1)
