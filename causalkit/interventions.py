"""The intervention vocabulary shared by SCMs, GAN latents and CGN mechanisms.

An intervention replaces (``Do``), randomises (``Draw``) or nudges (``Shift``) the
mechanism of one node. The same objects serve three worlds:

* a :class:`~causalkit.scm.StructuralCausalModel` -- ``scm.do({"Z": Do(1)})``;
* a CGN, whose mechanisms take labels -- ``do(shape=Do(3))`` keeps the noise fixed;
* a class-conditional GAN, whose nuisances are latent directions -- a
  :class:`LatentStrategy` says how to move along them, identically for every class.

Plain values and callables are accepted wherever an intervention is: ``5`` means
``Do(5)`` and a callable ``f(n, rng)`` means ``Draw(f)`` (see :func:`as_intervention`).

A hard intervention whose values are only known batch by batch -- a real photograph
chosen for each sample's background class, say -- is ``Do(PerBatch(f))``: ``f`` gets a
:class:`Batch` (the node's parents, a random stream of its own, the value the node's
mechanism would have had) and returns the batch's values.

Examples
--------
>>> from causalkit.interventions import Do, Shift, LatentStrategy
>>> Do(1)
Do(value=1, per_sample=None)
>>> LatentStrategy.parse("t=0.5,k=60,s=2")
LatentStrategy(truncation=0.5, components=60, scale=2.0, per_sample=5, centered=False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError

__all__ = ["Do", "Draw", "Shift", "Intervention", "LatentStrategy", "as_intervention",
           "PerBatch", "Batch", "STRATEGY_KEYS", "parse_strategy_fields"]


@dataclass(frozen=True)
class Do:
    """Hard intervention ``do(V := value)``: the node's mechanism becomes a constant.

    ``value`` is a scalar, one value (e.g. an RGB vector) tiled over the batch, or one
    value per sample. ``per_sample=None`` infers which: an array whose first axis has the
    batch's length is per-sample. Pass ``per_sample`` explicitly when that is ambiguous.
    A :class:`PerBatch` value is computed for each batch instead.
    """

    value: Any
    per_sample: bool | None = None


@dataclass(frozen=True)
class Batch:
    """What a :class:`PerBatch` value is computed from: one batch of samples.

    Attributes
    ----------
    n
        Number of samples in the batch.
    parents
        The node's parents' values in this batch (parent -> ``n`` values).
    rng
        The intervention's own random stream (reproducible from the sampler's seed and
        independent of every other node's).
    natural
        ``natural()`` evaluates the node's own mechanism at these parents and noise -- the
        value the intervention replaces -- for values that fall back on it in places.
    rows
        Positions of the batch's samples in the whole set (``arange(n)`` unless the set
        is evaluated in chunks), to index values prepared for the whole set.
    """

    n: int
    parents: Mapping[str, Any]
    rng: np.random.Generator
    natural: Callable[[], Any]
    rows: np.ndarray


@dataclass(frozen=True)
class PerBatch:
    """The values of a hard intervention, computed for each batch: ``Do(PerBatch(f))``.

    ``f(batch)`` receives a :class:`Batch` and returns ``batch.n`` values. Since the
    values may read the node's parents, ``Do(PerBatch(f))`` keeps the node's incoming
    edges (in graph terms it replaces the mechanism rather than the node's value); a
    value that ignores ``batch.parents`` is an ordinary hard intervention.

    Examples
    --------
    >>> from causalkit.interventions import Do, PerBatch
    >>> photo = Do(PerBatch(lambda b: b.rng.integers(0, 5, b.n)))  # one draw per sample
    """

    fn: Callable[[Batch], Any]

    def __call__(self, batch: Batch) -> Any:
        """The values for ``batch``."""
        return self.fn(batch)


@dataclass(frozen=True)
class Draw:
    """Random intervention ``do(V := v ~ Q)``: the node ignores its parents.

    ``sampler(n, rng)`` returns ``n`` values; ``rng`` is a :class:`numpy.random.Generator`
    so that the draw is reproducible from the SCM's seed.
    """

    sampler: Callable[[int, np.random.Generator], Any]


@dataclass(frozen=True)
class Shift:
    """Soft intervention ``V := f(parents, U) + delta``: the mechanism is kept, shifted.

    ``delta`` is a number, an array, or a callable of the unshifted values.
    """

    delta: Any

    def apply(self, values: Any) -> Any:
        """Return ``values`` shifted by ``delta``."""
        return values + (self.delta(values) if callable(self.delta) else self.delta)


Intervention = Do | Draw | Shift


def as_intervention(spec: Any) -> Intervention:
    """Normalise a user-facing intervention spec.

    ``Do``/``Draw``/``Shift`` pass through, a callable becomes :class:`Draw`, anything
    else becomes :class:`Do`.
    """
    if isinstance(spec, (Do, Draw, Shift)):
        return spec
    if callable(spec):
        return Draw(spec)
    return Do(spec)


#: the keys of a latent strategy's text form and the fields they set
STRATEGY_KEYS = {"t": "truncation", "truncation": "truncation", "k": "components",
                 "components": "components", "s": "scale", "scale": "scale",
                 "n": "per_sample", "per_sample": "per_sample", "centered": "centered"}


def parse_strategy_fields(fields: str, text: str, *, usage: str) -> dict[str, Any]:
    """The fields of ``fields`` (``"t=1,k=60,s=1"``: keys of :data:`STRATEGY_KEYS`) as
    keyword arguments; ``text`` (the whole strategy) and ``usage`` (what is expected)
    name the problem when a pair does not parse."""
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in fields.split(","))):
        key, eq, value = part.partition("=")
        field = STRATEGY_KEYS.get(key.strip())
        if not eq or field is None:
            raise CausalKitError(f"cannot parse latent strategy {text!r}: {usage}")
        try:
            if field in ("components", "per_sample"):
                kwargs[field] = int(value)
            elif field == "centered":
                kwargs[field] = value.strip().lower() in ("1", "true", "yes")
            else:
                kwargs[field] = float(value)
        except ValueError:
            raise CausalKitError(f"{key}={value!r} in strategy {text!r} is not a "
                                 "number") from None
    return kwargs


@dataclass(frozen=True)
class LatentStrategy:
    """A GenInt intervention on the latent space of a class-conditional GAN.

    Noise is drawn with truncation ``t``; each sample then moves along ``per_sample`` of
    the top-``k`` latent directions (GANSpace PCA), by an offset drawn uniformly from
    ``[-s * r_j, s * r_j]`` for direction ``j``. The strategy never looks at the class, so
    the manipulated nuisances are independent of the label -- that is the intervention.

    Parameters
    ----------
    truncation
        Truncation ``t`` of the latent noise, ``0 < t <= 1``.
    components
        Number ``k >= 1`` of top principal directions to choose from.
    scale
        Scale ``s > 0`` of the offsets, in units of each direction's range ``r_j``.
    per_sample
        How many of the ``k`` directions each sample moves along (5 in GenInt);
        clipped to ``k``.
    centered
        GANSpace's centred edit (project out the sample's own coordinate first) instead
        of GenInt's additive ``z* = z + sum_j offset_j u_j``.
    """

    truncation: float = 1.0
    components: int = 60
    scale: float = 1.0
    per_sample: int = 5
    centered: bool = False

    def __post_init__(self) -> None:
        t, k, s, p = self.truncation, self.components, self.scale, self.per_sample
        if not (isinstance(t, (int, float)) and math.isfinite(t) and 0 < t <= 1):
            raise CausalKitError(f"truncation must satisfy 0 < t <= 1, got t={t!r}; "
                                 "use e.g. t=0.5")
        if not (isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1):
            raise CausalKitError(f"components must be an integer k >= 1, got k={k!r}")
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
            raise CausalKitError(f"scale must be a finite number s > 0, got s={s!r}")
        if not (isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 1):
            raise CausalKitError(f"per_sample must be an integer >= 1, got {p!r}")
        object.__setattr__(self, "truncation", float(t))
        object.__setattr__(self, "scale", float(s))

    @classmethod
    def parse(cls, text: str) -> LatentStrategy:
        """Parse the CLI form ``"t=1,k=60,s=1"`` (optional ``n=5``, ``centered=1``)."""
        return cls(**parse_strategy_fields(
            text, text, usage="expected comma-separated key=value pairs from t "
            "(truncation), k (components), s (scale), n (per_sample), centered; e.g. "
            "'t=1,k=60,s=1'"))

    @staticmethod
    def looks_like(text: str) -> bool:
        """True when ``text`` is written in the ``t=..,k=..,s=..`` form."""
        return "=" in text

    def __str__(self) -> str:
        return f"t={self.truncation:g},k={self.components},s={self.scale:g}"
