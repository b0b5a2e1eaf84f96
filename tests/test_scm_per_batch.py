"""Do(PerBatch(f)): hard interventions whose values are computed for each batch."""

from __future__ import annotations

import numpy as np
import pytest

from causalkit.errors import CausalKitError
from causalkit.interventions import Batch, Do, PerBatch
from causalkit.scm import StructuralCausalModel


def _scm() -> StructuralCausalModel:
    return StructuralCausalModel(
        [("Y", "B"), ("B", "X")],
        mechanisms={"Y": lambda pa, u: u, "B": lambda pa, u: pa["Y"] * 10.0 + u,
                    "X": lambda pa, u: pa["B"] + 0.5},
        noise={"Y": lambda n, rng: rng.integers(0, 3, n), "B": lambda n, rng: rng.random(n)})


def test_values_see_parents_natural_value_and_own_stream():
    scm, seen = _scm(), {}

    def photo(batch: Batch) -> np.ndarray:
        seen.update(n=batch.n, rows=batch.rows, parents=set(batch.parents))
        natural = batch.natural()
        # keep the mechanism's value for class 0, a fresh draw elsewhere
        return np.where(batch.parents["Y"] == 0, natural, 100 + batch.rng.random(batch.n))

    s = scm.sample(50, seed=0)
    model = scm.do({"B": Do(PerBatch(photo))})
    t = model.sample(50, seed=0)
    assert seen["n"] == 50 and seen["parents"] == {"Y"} and np.array_equal(seen["rows"],
                                                                          np.arange(50))
    zero = s["Y"] == 0
    assert np.array_equal(t["Y"], s["Y"]) and np.array_equal(t["B"][zero], s["B"][zero])
    assert np.all(t["B"][~zero] >= 100) and np.allclose(t["X"], t["B"] + 0.5)
    assert np.array_equal(model.sample(50, seed=0)["B"], t["B"])  # seeded
    # the values read Y, so the edge Y -> B stays (a plain Do would cut it)
    assert model.graph.parents("B") == ["Y"] and scm.do({"B": Do(1.0)}).graph.parents("B") == []
    cf = scm.counterfactual(s, do={"B": Do(PerBatch(photo))})
    assert np.array_equal(cf["B"][zero], s["B"][zero])


def test_natural_needs_a_mechanism():
    model = _scm().do({"B": Do(PerBatch(lambda b: b.natural()))})
    del model.mechanisms["B"]  # a node known only through its intervention
    with pytest.raises(CausalKitError, match="no mechanism to fall back on"):
        model.sample(3, seed=0)
