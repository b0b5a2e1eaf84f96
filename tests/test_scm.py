"""The SCM layer: sampling, interventions, counterfactuals, exact enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from causalkit.interventions import Do, Draw, Shift
from causalkit.scm import DiscreteSCM, StructuralCausalModel


def confounded() -> StructuralCausalModel:
    return StructuralCausalModel(
        [("C", "Z"), ("C", "Y"), ("Z", "X")],
        mechanisms={"C": lambda pa, u: u,
                    "Z": lambda pa, u: pa["C"] + 0.1 * u,
                    "Y": lambda pa, u: (pa["C"] > 0).astype(int),
                    "X": lambda pa, u: 2 * pa["Z"] + u},
        noise={v: (lambda n, rng: rng.standard_normal(n)) for v in ("C", "Z", "X")})


def test_sample_is_reproducible_and_seed_dependent():
    scm = confounded()
    a, b, c = scm.sample(100, seed=1), scm.sample(100, seed=1), scm.sample(100, seed=2)
    for v in scm.nodes:
        np.testing.assert_array_equal(a[v], b[v])
    assert not np.allclose(a["X"], c["X"])


def test_do_cuts_incoming_edges_and_keeps_other_noise():
    scm = confounded()
    obs = scm.sample(500, seed=3)
    assert abs(np.corrcoef(obs["Z"], obs["Y"])[0, 1]) > 0.5
    intervened = scm.do({"Z": Draw(lambda n, rng: rng.standard_normal(n))})
    assert intervened.graph.parents("Z") == []
    assert scm.graph.parents("Z") == ["C"]          # the original is untouched
    s = intervened.sample(500, seed=3)
    np.testing.assert_array_equal(s["C"], obs["C"])   # same noise stream per node
    np.testing.assert_array_equal(s["Y"], obs["Y"])
    assert abs(np.corrcoef(s["Z"], s["Y"])[0, 1]) < 0.15


def test_hard_do_broadcasts_scalars_and_vectors():
    scm = confounded().do({"Z": 2.0})
    s = scm.sample(4, seed=0)
    np.testing.assert_array_equal(s["Z"], np.full(4, 2.0))
    rgb = StructuralCausalModel([("Y", "col")], {"Y": lambda pa, u: np.arange(3),
                                                 "col": lambda pa, u: np.zeros((3, 3))})
    # With three samples a length-3 vector is ambiguous: say it is one value for all.
    out = rgb.do({"col": Do(np.array([1.0, 0.5, 0.0]), per_sample=False)}).sample(3, seed=0)
    assert out["col"].shape == (3, 3) and np.all(out["col"][:, 1] == 0.5)
    per = rgb.do({"col": Do(np.array([1.0, 0.5, 0.0]))}).sample(3, seed=0)
    np.testing.assert_array_equal(per["col"], [1.0, 0.5, 0.0])
    with pytest.raises(CausalKitError, match="batch size"):
        rgb.do({"col": Do(np.zeros(2), per_sample=True)}).sample(3, seed=0)


def test_shift_keeps_mechanism_and_edges():
    scm = confounded()
    obs = scm.sample(50, seed=5)
    shifted = scm.do({"X": Shift(1.5)})
    assert shifted.graph.parents("X") == ["Z"]
    np.testing.assert_allclose(shifted.sample(50, seed=5)["X"], obs["X"] + 1.5)


def test_counterfactual_reuses_noise():
    scm = confounded()
    obs = scm.sample(64, seed=7)
    same = scm.counterfactual(obs)
    np.testing.assert_array_equal(same["X"], obs["X"])
    cf = scm.counterfactual(obs, do={"Z": Do(0.0)})
    # X := 2 Z + U_X with U_X fixed: the counterfactual differs by exactly -2 Z.
    np.testing.assert_allclose(cf["X"], obs["X"] - 2 * obs["Z"])
    np.testing.assert_array_equal(cf["Y"], obs["Y"])


def test_torch_mechanisms():
    scm = StructuralCausalModel(
        [("Y", "X")],
        {"Y": lambda pa, u: torch.as_tensor(u < 0.5).long(),
         "X": lambda pa, u: pa["Y"].float()[:, None] + torch.as_tensor(u, dtype=torch.float32)},
        {"Y": lambda n, rng: rng.random(n), "X": lambda n, rng: rng.random((n, 2))})
    s = scm.sample(8, seed=0)
    assert isinstance(s["X"], torch.Tensor) and s["X"].shape == (8, 2)
    cf = scm.counterfactual(s, do={"Y": Do(torch.tensor(1))})
    torch.testing.assert_close(cf["X"] - s["X"], (1 - s["Y"]).float()[:, None].expand(8, 2))


def test_errors_name_the_problem():
    with pytest.raises(CausalKitError, match="no mechanism"):
        StructuralCausalModel([("A", "B")], {"A": lambda pa, u: u})
    with pytest.raises(CausalKitError, match="unknown node"):
        confounded().do({"Q": 1})
    with pytest.raises(CausalKitError, match="vectorised"):
        StructuralCausalModel([("A", "B")], {"A": lambda pa, u: np.zeros(3),
                                             "B": lambda pa, u: np.zeros(2)}).sample(3, seed=0)
    with pytest.raises(CausalKitError, match="seed"):
        confounded().sample(3, seed=-1)


# --- exact enumeration --------------------------------------------------------------

EDGES = [("C", "Z"), ("C", "Y"), ("Z", "X"), ("X", "Y")]
CARDS = {"C": 2, "Z": 3, "X": 2, "Y": 2}


def brute_force_do(model: DiscreteSCM, event: dict, do: dict) -> float:
    """The truncated factorisation, summed state by state."""
    total = 0.0
    for state in model.states():
        if any(state[k] != v for k, v in do.items()):
            continue
        if any(state[k] != v for k, v in event.items()):
            continue
        p = 1.0
        for v in model.nodes:
            if v in do:
                continue
            idx = tuple(state[q] for q in model.graph.parents(v)) + (state[v],)
            p *= model.cpts[v][idx]
        total += p
    return total


@pytest.mark.parametrize("seed", range(5))
def test_discrete_do_matches_truncated_factorisation(seed):
    model = DiscreteSCM.random(EDGES, CARDS, seed)
    assert model.joint().sum() == pytest.approx(1.0)
    for xv, yv in itertools.product(range(2), range(2)):
        exact = model.prob({"Y": yv}, do={"X": xv})
        assert exact == pytest.approx(brute_force_do(model, {"Y": yv}, {"X": xv}), abs=1e-12)


def test_discrete_sampling_agrees_with_enumeration():
    model = DiscreteSCM.random(EDGES, CARDS, seed=11)
    n = 40_000
    s = model.to_scm().sample(n, seed=0)
    for zv in range(3):
        p = model.prob({"Z": zv})
        freq = float(np.mean(s["Z"] == zv))
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9
    p = model.prob({"Y": 1}, given={"X": 1})
    mask = s["X"] == 1
    assert abs(np.mean(s["Y"][mask] == 1) - p) < 4 * np.sqrt(p * (1 - p) / mask.sum())


def test_discrete_validation():
    with pytest.raises(CausalKitError, match="shape"):
        DiscreteSCM([("A", "B")], {"A": 2, "B": 2}, {"A": [0.5, 0.5], "B": [0.5, 0.5]})
    with pytest.raises(CausalKitError, match="sum"):
        DiscreteSCM([("A", "B")], {"A": 2, "B": 2},
                    {"A": [0.5, 0.6], "B": [[0.5, 0.5], [0.5, 0.5]]})
    m = DiscreteSCM.random(EDGES, CARDS, 0)
    with pytest.raises(CausalKitError, match="outside"):
        m.do({"X": 5})
