"""Accuracy under do() on each nuisance (analysis.sensitivity)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.sensitivity import nuisance_sensitivity
from causalkit.errors import CausalKitError
from causalkit.scm import StructuralCausalModel


def biased() -> StructuralCausalModel:
    """A label, two nuisances that copy it, and an 'image' that shows all three."""
    noise = {"label": lambda n, rng: rng.integers(0, 10, n)}
    return StructuralCausalModel(
        [("label", "colour"), ("label", "texture"), ("label", "image"),
         ("colour", "image"), ("texture", "image")],
        mechanisms={"label": lambda pa, u: u,
                    "colour": lambda pa, u: pa["label"],
                    "texture": lambda pa, u: pa["label"],
                    "image": lambda pa, u: np.stack([pa["label"], pa["colour"],
                                                     pa["texture"]], 1)},
        noise=noise)


def test_a_classifier_that_reads_a_nuisance_follows_it_under_do():
    scm = biased()
    reads_colour = nuisance_sensitivity(lambda x: x[:, 1], scm, ["colour", "texture"],
                                        n=4000, seed=0)
    acc = reads_colour.accuracy
    assert acc["observational"] == 1.0
    assert acc["do(colour)"] == pytest.approx(0.1, abs=0.03)  # chance
    assert acc["do(texture)"] == 1.0                           # it never looked
    assert acc["do(all)"] == pytest.approx(0.1, abs=0.03)
    assert reads_colour.follows["colour"] == 1.0 and reads_colour.follows["texture"] == 0.0
    assert len(reads_colour.per_value["colour"]) == 10
    assert "do(colour)" in reads_colour.format()


def test_an_invariant_classifier_is_untouched_and_worlds_share_the_digits():
    scm = biased()
    seen = []

    def reads_label(x):
        seen.append(x[:, 0].copy())
        return x[:, 0]

    report = nuisance_sensitivity(reads_label, scm, ["colour", "texture"], n=500, seed=3)
    assert set(report.accuracy.values()) == {1.0}
    assert report.follows == {"colour": 0.0, "texture": 0.0}
    assert all(np.array_equal(seen[0], s) for s in seen[1:])  # one seed, the same labels
    again = nuisance_sensitivity(lambda x: x[:, 1], scm, ["colour"], n=500, seed=3)
    assert again.to_dict() == nuisance_sensitivity(lambda x: x[:, 1], scm, ["colour"],
                                                   n=500, seed=3).to_dict()


def test_bad_nodes_are_named():
    with pytest.raises(CausalKitError, match=r"\['hue'\]"):
        nuisance_sensitivity(lambda x: x[:, 0], biased(), ["hue"])
    with pytest.raises(CausalKitError, match="at least one"):
        nuisance_sensitivity(lambda x: x[:, 0], biased(), [])
