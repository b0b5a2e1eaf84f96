"""A label-free contrast intervention on counterfactuals: the mask scaled down.

A CGN composes ``x = m f + (1 - m) b``. Scaling the mask node by ``c`` in ``(0, 1]``
gives ``x = b + c m (f - b)``: the digit keeps its shape and its texture, but shows
them over its ground at strength ``c``, so a digit that differs little from its ground
-- the hardest case on unseen textures (``docs/texture_ood.md``) -- appears among the
counterfactuals a classifier trains on. Each counterfactual draws ``c`` uniformly in
``[low, 1]`` from the mask node's own random stream, independently of every label:
``{"M": Do(PerBatch(c * m))}`` in the vocabulary of :mod:`causalkit.interventions`
(:func:`generators.cgn.node_values.transformed` keeps whatever already sets the mask:
the shape mechanism, or abducted masks). ``low = 1`` is no intervention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from generators.cgn.node_values import transformed

__all__ = ["check_contrast", "contrast_interventions"]


def check_contrast(low: float) -> None:
    """Raise :class:`CausalKitError` unless ``0 < low <= 1``."""
    if not (isinstance(low, (int, float)) and 0.0 < float(low) <= 1.0):
        raise CausalKitError(f"the lowest mask contrast must lie in (0, 1], got {low!r} "
                             "(1 means no contrast intervention)")


def _scale(low: float):
    def scale(m: Any, rng: np.random.Generator) -> Any:
        c = low + (1.0 - low) * rng.random(m.shape[0])
        c = c.reshape((-1,) + (1,) * (m.ndim - 1))
        if hasattr(m, "new_tensor"):  # a tensor
            return m * m.new_tensor(c)
        return m * c
    return scale


def contrast_interventions(cgn: Any, low: float,
                           interventions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``interventions`` with the shape mechanism's mask scaled by a draw in ``[low, 1]``
    per counterfactual (unchanged for ``low = 1``)."""
    from generators.cgn.protocol import mechanism_nodes_by_name

    check_contrast(low)
    out = dict(interventions or {})
    if low == 1.0:
        return out
    node = mechanism_nodes_by_name(cgn).get("shape")
    if node is None:
        raise CausalKitError("a contrast intervention scales the shape mechanism's mask; "
                             "the CGN has no mechanism named 'shape'")
    out[node] = transformed(out.get(node), _scale(float(low)), node=node)
    return out
