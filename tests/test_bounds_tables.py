"""causalkit.bounds on whole queries: scm_bounds, nuisance_groups and table_bounds."""

from __future__ import annotations

import numpy as np
import pytest

from causalkit.bounds import estimate_bounds, nuisance_groups, scm_bounds, table_bounds
from causalkit.errors import CausalKitError
from causalkit.library import get_scm
from causalkit.tables import Table


def _table(source="t.csv", **columns):
    return Table({k: np.array([str(v) for v in vs], dtype=object) for k, vs in columns.items()},
                 None, True, source)


def test_scm_bounds_hold_the_truth_and_rank_by_theorem_1():
    b = scm_bounds(get_scm("genint-example"), {"X": 1}, {"Y": 1}, [["Z1"], ["Z1", "Z2"]])
    for interval in [b.natural, b.intersection] + [s.interval for s in b.strategies]:
        assert interval.contains(b.truth)
    assert [name for name, _, _ in b.ranking] == [
        ",".join(s.strategy) for s in sorted(b.strategies, key=lambda s: -s.p_x_do)]
    assert set(b.to_dict()) == {"truth", "natural", "strategies", "intersection", "ranking"}


def test_nuisance_groups_are_the_whole_table_then_each_value():
    t = _table(Z1=[0, 1, 0, 1], Z2=["a", "a", "b", "a"])
    groups = nuisance_groups(t, ["Z1", "Z2"])
    assert [name for name, _ in groups] == ["do(Z1,Z2 ~ data)", "do(Z1,Z2=0,a)",
                                            "do(Z1,Z2=0,b)", "do(Z1,Z2=1,a)"]
    assert groups[0][1].all() and sum(mask.sum() for _, mask in groups[1:]) == 4


def test_table_bounds_estimate_each_intervention_and_intersect():
    obs = _table(X=[0, 1, 1, 0, 1, 1], Y=[0, 1, 0, 0, 1, 1])
    inter = _table(X=[1, 1, 0, 1], Y=[1, 0, 0, 1], Z=[0, 0, 1, 1])
    (cell,) = table_bounds(obs, "X", "Y", x="1", y="1", interventional=inter,
                           nuisances=["Z"])
    assert cell.natural == estimate_bounds(obs.columns, "X", "Y", "1", "1")
    assert [name for name, _ in cell.interventional] == ["do(Z ~ data)", "do(Z=0)",
                                                         "do(Z=1)"]
    assert cell.intersection.lower == max(e.interval.lower for e in
                                          [cell.natural, *(e for _, e in cell.interventional)])
    assert cell.intersection_confidence == pytest.approx(1 - 4 * 0.05)
    assert "intersection" in cell.to_dict()
    cells = table_bounds(obs, "X", "Y")  # every (x, y), no interventional data
    assert [(c.x, c.y) for c in cells] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert all(c.intersection is None and "intersection" not in c.to_dict() for c in cells)
    with pytest.raises(CausalKitError, match=r"value\(s\) \['7'\] of X do not occur in t.csv"):
        table_bounds(obs, "X", "Y", x="7")
