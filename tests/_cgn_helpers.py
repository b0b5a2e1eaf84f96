"""Counterfactuals of a small random CGN with flat mechanism values: the helper behind
the tests of interventions that transform a node's values (palette, contrast, random
textures)."""

from __future__ import annotations

import numpy as np


def flat_pair(transform, f, b):
    """Counterfactuals of a small random CGN with flat texture ``f`` and ground ``b``,
    without and with the interventions ``transform(cgn, flat)``; labels must agree."""
    import torch

    from causalkit.interventions import Do, PerBatch
    from generators.cgn import generate_counterfactuals
    from generators.cgn.mnist import MnistCGN

    cgn = MnistCGN(ngf=8, seed=0)
    flat = {"F": Do(PerBatch(lambda bt: torch.full((bt.n, 3, 32, 32), f))),
            "B": Do(PerBatch(lambda bt: torch.full((bt.n, 3, 32, 32), b)))}
    kw = dict(per_noise=4, seed=3, progress=False)
    plain = generate_counterfactuals(cgn, 64, interventions=flat, **kw)
    other = generate_counterfactuals(cgn, 64, interventions=transform(cgn, flat), **kw)
    for name in ("shape", "texture", "background", "group"):
        assert np.array_equal(getattr(plain, name), getattr(other, name))
    return cgn, flat, plain, other
