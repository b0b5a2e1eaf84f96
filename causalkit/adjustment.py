"""Backdoor adjustment: ``P(y | do(x)) = sum_z P(y | x, z) P(z)`` from observational data.

Valid when ``Z`` is a backdoor set for ``(X, Y)`` (see
:meth:`causalkit.graph.CausalGraph.is_backdoor_set`); this module computes the formula,
the graph layer decides whether it applies.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from causalkit.errors import CausalKitError

__all__ = ["backdoor_adjustment"]


def backdoor_adjustment(model: Any, treatment: Mapping[str, int], outcome: Mapping[str, int],
                        adjustment_set: Sequence[str]) -> float:
    """Evaluate the adjustment formula on a :class:`~causalkit.scm.DiscreteSCM`.

    Only observational probabilities of ``model`` are used, as a data analyst would;
    latent nodes in ``adjustment_set`` are refused because they cannot be measured.
    """
    latent = [z for z in adjustment_set if model.graph.is_latent(z)]
    if latent:
        raise CausalKitError(f"cannot adjust for latent node(s) {latent}: they are not "
                             "observed")
    total = 0.0
    for values in itertools.product(*(range(model.cardinality[z]) for z in adjustment_set)):
        zs = dict(zip(adjustment_set, values, strict=True))
        p_z = model.prob(zs)
        if p_z == 0:
            continue
        p_xz = model.prob({**treatment, **zs})
        if p_xz == 0:
            raise CausalKitError(f"positivity fails: P({treatment}, {zs}) = 0, so "
                                 "P(y | x, z) is undefined")
        total += model.prob({**outcome, **treatment, **zs}) / p_xz * p_z
    return total
