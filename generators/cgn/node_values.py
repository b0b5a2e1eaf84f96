"""Interventions that transform what a CGN mechanism node would otherwise hold.

A label-free nuisance intervention on a counterfactual set -- a colour shift of the
texture, a contrast scale of the mask -- keeps each node's value and changes it with a
random draw per counterfactual. :func:`transformed` builds it from whatever already sets
the node, as ``Do(PerBatch(...))`` (:mod:`causalkit.interventions`):

* nothing: the node's own mechanism at its parents and noise (``batch.natural()``);
* ``Do(PerBatch(f))``: ``f``'s values;
* ``Do(values, per_sample=True)``, one value per base sample: the batch's rows of them.

``fn(values, rng)`` gets the batch's values and the node's own random stream and returns
the new values. Any other intervention (a single fixed value, a ``Draw``, a ``Shift``)
is refused: keep it, or drop the transform.

>>> import torch
>>> from causalkit.interventions import Batch, Do
>>> spec = transformed(Do(torch.ones(4, 1, 2, 2), per_sample=True), lambda v, rng: v / 2,
...                    node="M")
>>> b = Batch(n=2, parents={}, rng=None, natural=lambda: None, rows=np.array([1, 3]))
>>> spec.value(b).shape, float(spec.value(b).max())
(torch.Size([2, 1, 2, 2]), 0.5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from causalkit.interventions import Batch, Do, PerBatch

__all__ = ["transformed"]

Transform = Callable[[Any, np.random.Generator], Any]


def transformed(spec: Any, fn: Transform, *, node: str) -> Do:
    """``Do(PerBatch(...))`` with ``fn`` applied to the values ``spec`` (or, for ``None``,
    the node's mechanism) gives node ``node``; see the module docstring."""
    if spec is None:
        return Do(PerBatch(lambda b: fn(b.natural(), b.rng)))
    if isinstance(spec, Do) and isinstance(spec.value, PerBatch):
        inner = spec.value
        return Do(PerBatch(lambda b: fn(inner(b), b.rng)))
    if isinstance(spec, Do) and spec.per_sample:
        values = spec.value

        def rows(b: Batch) -> Any:
            idx = b.rows
            if hasattr(values, "index_select"):  # a tensor
                import torch

                return fn(values[torch.as_tensor(idx)], b.rng)
            return fn(np.asarray(values)[idx], b.rng)
        return Do(PerBatch(rows))
    raise CausalKitError(f"cannot transform the values of node {node!r}: it is set by "
                         f"{type(spec).__name__}; a transform needs the node's own "
                         "mechanism, a Do(PerBatch(...)) or per-sample Do values")
