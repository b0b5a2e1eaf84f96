"""The CGN as an SCM: counterfactuals change one mechanism and hold the noise fixed."""

from __future__ import annotations

import numpy as np
import torch

from causalkit.interventions import Do
from generators.cgn.mnist.model import MnistCGN, no_shift
from generators.cgn.scm import cgn_scm


def test_counterfactual_changes_only_the_intervened_mechanism():
    cgn = MnistCGN(seed=0)
    scm = cgn_scm(cgn)
    s = scm.sample(6, seed=1)
    assert s["X"].shape == (6, 3, 32, 32) and s["M"].shape == (6, 1, 32, 32)
    target = (np.asarray(s["Y3"]) + 1) % 10
    cf = scm.counterfactual(s, do={"Y3": Do(target, per_sample=True)})
    assert np.array_equal(cf["Y3"], target)
    assert torch.equal(cf["M"], s["M"]) and torch.equal(cf["F"], s["F"])
    assert not torch.equal(cf["B"], s["B"]) and not torch.equal(cf["X"], s["X"])
    again = scm.counterfactual(s, do={"Y3": Do(s["Y3"], per_sample=True)})
    assert torch.equal(again["X"], s["X"])  # do(Y := its own value) changes nothing


def test_scm_matches_the_module_and_is_seeded():
    cgn = MnistCGN(seed=0).eval()
    scm = cgn_scm(cgn, noise={"F": no_shift, "B": no_shift})
    s = scm.sample(4, seed=2)
    assert torch.equal(scm.sample(4, seed=2)["X"], s["X"])
    u = [torch.as_tensor(s[f"U{i}"]) for i in (1, 2, 3)]
    y = [torch.as_tensor(s[f"Y{i}"]) for i in (1, 2, 3)]
    with torch.no_grad():
        direct = cgn(*y, u=tuple(u), shuffle=False)
    assert torch.allclose(direct.image, s["X"], atol=1e-6)


def test_do_on_shape_label_gives_that_class_everywhere():
    scm = cgn_scm(MnistCGN(seed=0)).do({"Y1": Do(7)})
    s = scm.sample(5, seed=0)
    assert np.all(np.asarray(s["Y1"]) == 7)
