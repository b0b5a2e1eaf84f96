"""Bounds on a causal effect ``P(y | do(x))`` when a latent confounder blocks identification.

In GenInt's graph an unobserved confounder ``C`` causes both the nuisances ``Z``
(viewpoint, background) and the label ``Y``. With ``C`` latent, ``P(y | do(x))`` need not
be identifiable, but it is always *bounded*. Pearl's natural bounds follow from
``P(y | do(x)) = P(x, y) + P(y | do(x)) P(x')`` with ``0 <= P(y | do(x)) <= 1`` on the
unobserved part::

    P(x, y)  <=  P(y | do(x))  <=  P(x, y) + 1 - P(x)  =  1 - P(x, y')

Intervening on nuisances tightens them. When ``Z_i`` affects ``Y`` only through ``X``,
``do(z_i)`` leaves ``P(y | do(x))`` unchanged, so the same argument inside the intervened
model gives::

    P(y, x | do(z_i))  <=  P(y | do(x))  <=  P(y, x | do(z_i)) + 1 - P(x | do(z_i))

The width is ``1 - P(x | do(z_i))``: the strategy that makes ``x`` more likely gives the
tighter bound (GenInt's Theorem 1), and every valid interval contains the truth, so their
intersection does too (:func:`intersect`).

The *conditional* expression ``P(y, x | z_i)`` looks similar but is wrong: conditioning
on ``Z`` selects units by their confounder, so it can exclude the true value (see
:func:`conditional_bounds` and the tutorial for a counterexample).

Examples
--------
>>> from causalkit.bounds import natural_bounds, nuisance_bounds, intersect
>>> natural_bounds(p_xy=0.3, p_x=0.4)
Interval(lower=0.3, upper=0.9)
>>> intersect([natural_bounds(0.3, 0.4), nuisance_bounds(p_xy_do=0.35, p_x_do=0.6)])
Interval(lower=0.35, upper=0.75)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from causalkit.errors import CausalKitError

if TYPE_CHECKING:
    from causalkit.tables import Table

__all__ = [
    "Interval",
    "natural_bounds",
    "nuisance_bounds",
    "conditional_bounds",
    "intersect",
    "rank_strategies",
    "StrategyBound",
    "exact_strategy_bounds",
    "BoundEstimate",
    "estimate_bounds",
    "SCMBounds",
    "scm_bounds",
    "nuisance_groups",
    "CellBounds",
    "table_bounds",
]

_EPS = 1e-12


def _check_prob(name: str, p: float) -> float:
    p = float(p)
    if not (-_EPS <= p <= 1 + _EPS) or np.isnan(p):
        raise CausalKitError(f"{name} = {p!r} is not a probability; it must lie in [0, 1]")
    return min(max(p, 0.0), 1.0)


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[lower, upper]`` inside ``[0, 1]``."""

    lower: float
    upper: float

    def __post_init__(self) -> None:
        lo, hi = _check_prob("lower", self.lower), _check_prob("upper", self.upper)
        if lo > hi + _EPS:
            raise CausalKitError(f"empty interval: lower {lo} > upper {hi}")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", max(lo, hi))

    @property
    def width(self) -> float:
        """``upper - lower``."""
        return self.upper - self.lower

    def contains(self, p: float, tol: float = 1e-9) -> bool:
        """True when ``lower - tol <= p <= upper + tol``."""
        return self.lower - tol <= p <= self.upper + tol

    def __and__(self, other: Interval) -> Interval:
        return intersect([self, other])

    def to_dict(self) -> dict[str, float]:
        """``{"lower": ..., "upper": ..., "width": ...}``."""
        return {"lower": self.lower, "upper": self.upper, "width": self.width}

    def __str__(self) -> str:
        return f"[{self.lower:.4f}, {self.upper:.4f}]"


def natural_bounds(p_xy: float, p_x: float) -> Interval:
    """Pearl's natural bounds ``[P(x, y), P(x, y) + 1 - P(x)]`` on ``P(y | do(x))``.

    Parameters
    ----------
    p_xy
        The observational joint ``P(X = x, Y = y)``.
    p_x
        The observational marginal ``P(X = x)``; must be at least ``p_xy``.
    """
    p_xy, p_x = _check_prob("P(x, y)", p_xy), _check_prob("P(x)", p_x)
    if p_xy > p_x + 1e-9:
        raise CausalKitError(f"P(x, y) = {p_xy} exceeds P(x) = {p_x}; check the inputs")
    return Interval(p_xy, min(1.0, p_xy + 1.0 - p_x))


def nuisance_bounds(p_xy_do: float, p_x_do: float) -> Interval:
    """Bounds from an intervention on nuisances:
    ``[P(y, x | do(z)), P(y, x | do(z)) + 1 - P(x | do(z))]``.

    Valid when the intervened nuisances affect ``Y`` only through ``X`` (true in GenInt's
    graph). ``do(z)`` may be a fixed value or a random intervention ``Z ~ q``; both
    probabilities must come from data generated *under* the intervention.
    """
    return natural_bounds(p_xy_do, p_x_do)


def conditional_bounds(p_xy_given_z: float, p_x_given_z: float) -> Interval:
    """The *invalid* conditional form ``[P(y, x | z), P(y, x | z) + 1 - P(x | z)]``.

    Provided to demonstrate the pitfall: conditioning on a confounded nuisance is not
    intervening on it, and this interval can exclude ``P(y | do(x))``. Do not use it as a
    bound.
    """
    return natural_bounds(p_xy_given_z, p_x_given_z)


def intersect(intervals: Iterable[Interval]) -> Interval:
    """The largest lower bound and the smallest upper bound of valid intervals.

    Raises :class:`~causalkit.errors.CausalKitError` if they do not overlap, which for
    exact bounds is impossible and for estimates means sampling error or invalid inputs.
    """
    intervals = list(intervals)
    if not intervals:
        raise CausalKitError("intersect() needs at least one interval")
    lo = max(i.lower for i in intervals)
    hi = min(i.upper for i in intervals)
    if lo > hi + 1e-9:
        raise CausalKitError(
            f"the intervals do not overlap (largest lower {lo:.4f} > smallest upper "
            f"{hi:.4f}); exact bounds always overlap, so the inputs are estimates with "
            "too little data or were not gathered under the stated intervention")
    return Interval(lo, max(lo, hi))


def rank_strategies(p_x_do: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """Rank intervention strategies by Theorem 1: larger ``P(x | do(z))``, tighter bound.

    Returns ``(name, P(x | do(z)), bound width = 1 - P(x | do(z)))`` from tightest to
    loosest; ties keep the input order.
    """
    checked = [(name, _check_prob(f"P(x | do({name}))", p)) for name, p in p_x_do.items()]
    ranked = sorted(checked, key=lambda item: -item[1])
    return [(name, p, 1.0 - p) for name, p in ranked]


@dataclass(frozen=True)
class StrategyBound:
    """The exact bound that one nuisance-intervention strategy gives."""

    strategy: tuple[str, ...]
    p_x_do: float
    interval: Interval

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"strategy": list(self.strategy), "p_x_do": self.p_x_do,
                **self.interval.to_dict()}


def exact_strategy_bounds(model: Any, treatment: Mapping[str, int], outcome: Mapping[str, int],
                          strategies: Sequence[Sequence[str]],
                          *, distribution: str = "uniform") -> list[StrategyBound]:
    """Exact bounds on ``P(outcome | do(treatment))`` for each strategy of a discrete SCM.

    A strategy names the nuisances it intervenes on; the intervention draws them
    independently and ``uniform``-ly (GenInt's "same for every class"), so
    ``P(y, x | do(Z ~ q)) = sum_z q(z) P(y, x | do(z))``.

    Parameters
    ----------
    model
        A :class:`~causalkit.scm.DiscreteSCM`.
    treatment, outcome
        Single-node events such as ``{"X": 1}`` and ``{"Y": 1}``.
    strategies
        E.g. ``[["Z1"], ["Z1", "Z2"]]``.
    distribution
        Only ``"uniform"`` for now.
    """
    if distribution != "uniform":
        raise CausalKitError(f"unknown distribution {distribution!r}; use 'uniform'")
    out = []
    for strat in strategies:
        strat = tuple(strat)
        unknown = [z for z in strat if z not in model.cardinality]
        if unknown:
            raise CausalKitError(f"strategy {list(strat)} names unknown node(s) {unknown}; "
                                 f"nodes are {model.nodes}")
        q = {z: np.full(model.cardinality[z], 1.0 / model.cardinality[z]) for z in strat}
        intervened = model.do(q)
        p_xy = intervened.prob({**treatment, **outcome})
        p_x = intervened.prob(dict(treatment))
        out.append(StrategyBound(strat, p_x, nuisance_bounds(p_xy, p_x)))
    return out


@dataclass(frozen=True)
class BoundEstimate:
    """An interval estimated from data, with a confidence interval around it.

    ``interval`` is the plug-in estimate; ``confidence_interval`` widens it so that, with
    probability at least ``confidence``, it contains the true (population) interval:
    each endpoint is an exact (Clopper-Pearson) binomial limit at level
    ``1 - (1 - confidence) / 2`` (Bonferroni over the two endpoints).
    """

    interval: Interval
    confidence_interval: Interval | None
    confidence: float
    n: int
    p_x: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        ci = self.confidence_interval
        return {"lower": self.interval.lower, "upper": self.interval.upper,
                "ci_lower": ci.lower if ci else None, "ci_upper": ci.upper if ci else None,
                "confidence": self.confidence, "n": self.n, "p_x": self.p_x}


def _clopper_pearson(k: float, n: float, level: float) -> tuple[float, float]:
    from scipy.stats import beta

    alpha = 1.0 - level
    lo = 0.0 if k <= 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k >= n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def estimate_bounds(table: Mapping[str, np.ndarray], treatment: str, outcome: str,
                    x: Any, y: Any, *, weights: np.ndarray | None = None,
                    counts: bool = True, confidence: float = 0.95) -> BoundEstimate:
    """Estimate ``[P(x, y), 1 - P(x, y')]`` from samples or a count table.

    Parameters
    ----------
    table
        Column name -> array (one entry per row).
    treatment, outcome
        Column names of ``X`` and ``Y``.
    x, y
        The values whose ``P(Y = y | do(X = x))`` is bounded.
    weights
        Per-row counts (``counts=True``) or probabilities (``counts=False``); ``None``
        means one sample per row.
    confidence
        Level of the confidence interval; the CI needs counts, so it is ``None`` for a
        probability table.
    """
    for col in (treatment, outcome):
        if col not in table:
            raise CausalKitError(f"column {col!r} not found; columns are {sorted(table)}")
    xs, ys = np.asarray(table[treatment]), np.asarray(table[outcome])
    w = np.ones(len(xs)) if weights is None else np.asarray(weights, dtype=float)
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise CausalKitError("counts/probabilities must be finite and non-negative; fix "
                             "the negative, NaN or infinite weights")
    if not counts and np.any(w > 1 + _EPS):
        raise CausalKitError("probabilities must lie in [0, 1]; use a count column for counts")
    total = float(w.sum())
    if total <= 0:
        raise CausalKitError("the table is empty (total weight 0); give it rows with "
                             "positive counts or probabilities")
    if not counts and abs(total - 1.0) > 1e-6:
        raise CausalKitError(f"probabilities sum to {total:.6g}, not 1; normalise them or "
                             "use a count column")
    is_x = xs.astype(str) == str(x)
    is_y = ys.astype(str) == str(y)
    k_xy, k_xny = float(w[is_x & is_y].sum()), float(w[is_x & ~is_y].sum())
    point = Interval(k_xy / total, 1.0 - k_xny / total)
    ci = None
    if counts:
        level = 1.0 - (1.0 - confidence) / 2
        lo, _ = _clopper_pearson(k_xy, total, level)
        lo_xny, _ = _clopper_pearson(k_xny, total, level)
        ci = Interval(lo, 1.0 - lo_xny)
    return BoundEstimate(point, ci, confidence, int(round(total)) if counts else 0,
                         float(w[is_x].sum()) / total)


# --------------------------------------------------------------- whole queries
@dataclass(frozen=True)
class SCMBounds:
    """Every bound a discrete SCM gives on one query, and the exact answer.

    Attributes
    ----------
    truth
        ``P(y | do(x))`` by exact enumeration.
    p_x
        The observational ``P(x)``, which sets the natural bounds' width ``1 - P(x)``.
    natural
        Pearl's natural bounds.
    strategies
        One :class:`StrategyBound` per strategy, in input order.
    intersection
        The intersection of the natural bounds and every strategy's.
    ranking
        :func:`rank_strategies` of the strategies: ``(name, P(x | do(z)), width)``.
    """

    truth: float
    p_x: float
    natural: Interval
    strategies: tuple[StrategyBound, ...]
    intersection: Interval
    ranking: tuple[tuple[str, float, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``p_x`` left out; it is the natural bounds' ``1 - width``)."""
        return {"truth": self.truth, "natural": self.natural.to_dict(),
                "strategies": [r.to_dict() for r in self.strategies],
                "intersection": self.intersection.to_dict(),
                "ranking": [{"strategy": n, "p_x_do": p, "width": w}
                            for n, p, w in self.ranking]}


def scm_bounds(model: Any, treatment: Mapping[str, int], outcome: Mapping[str, int],
               strategies: Sequence[Sequence[str]]) -> SCMBounds:
    """Bound ``P(outcome | do(treatment))`` of a discrete SCM every way this module knows.

    The natural bounds come from the observational distribution; each strategy's from
    the model under a uniform intervention on its nuisances
    (:func:`exact_strategy_bounds`); their intersection is the tightest valid interval,
    and Theorem 1 ranks the strategies by ``P(x | do(z))``. Everything is exact, so
    ``truth`` lies in every interval.

    Parameters
    ----------
    model
        A :class:`~causalkit.scm.DiscreteSCM`.
    treatment, outcome
        Single-node events such as ``{"X": 1}`` and ``{"Y": 1}``.
    strategies
        The nuisances of each strategy, e.g. ``[["Z1"], ["Z1", "Z2"]]``; may be empty.

    Examples
    --------
    >>> from causalkit import library
    >>> b = scm_bounds(library.get_scm("genint-example"), {"X": 1}, {"Y": 1}, [["Z1"]])
    >>> b.natural.contains(b.truth) and b.intersection.width <= b.natural.width
    True
    """
    truth = model.prob(dict(outcome), do=dict(treatment))
    p_xy = model.prob({**treatment, **outcome})
    p_x = model.prob(dict(treatment))
    natural = natural_bounds(p_xy, p_x)
    results = exact_strategy_bounds(model, treatment, outcome, strategies)
    combined = intersect([natural] + [r.interval for r in results])
    ranking = rank_strategies({",".join(r.strategy): r.p_x_do for r in results})
    return SCMBounds(truth, p_x, natural, tuple(results), combined, tuple(ranking))


def nuisance_groups(table: Table, nuisances: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """The interventions one table of interventional data holds, as row masks.

    Data gathered under a random intervention ``do(Z ~ q)`` is a sample of that
    intervention as a whole -- every row, named ``"do(Z ~ data)"`` -- and, for each value
    ``z`` it drew, its rows with ``Z = z`` are a sample of the fixed intervention
    ``do(Z = z)``: under ``do`` the value was set from outside, so selecting on it selects
    no confounder (unlike selecting on an observed ``z``, see
    :func:`conditional_bounds`). Several nuisances are grouped by their joint value.

    Returns
    -------
    list of tuple
        ``(name, mask)`` pairs: the whole table first, then one group per observed
        value, in sorted order, e.g.
        ``[("do(Z1 ~ data)", ...), ("do(Z1=0)", ...), ("do(Z1=1)", ...)]``.
    """
    keys = np.array(["|".join(r) for r in zip(
        *(table.columns[n].astype(str) for n in nuisances), strict=True)])
    groups = [("do(" + ",".join(nuisances) + " ~ data)", np.ones(len(keys), bool))]
    groups += [(f"do({','.join(nuisances)}={k.replace('|', ',')})", keys == k)
               for k in sorted(set(keys))]
    return groups


@dataclass(frozen=True)
class CellBounds:
    """The bounds on ``P(Y = y | do(X = x))`` that data gives for one pair of values.

    Attributes
    ----------
    x, y
        The values.
    natural
        The estimate from observational data.
    interventional
        ``(name, estimate)`` for each intervention of :func:`nuisance_groups` under
        which ``x`` occurs; empty without interventional data.
    intersection
        The intersection of ``natural`` and every interventional interval; ``None``
        without interventional data.
    intersection_ci
        The intersection of their confidence intervals, when each has one. Intersecting
        ``k`` intervals that each cover with probability ``1 - a`` covers with at least
        ``1 - k a`` (:attr:`intersection_confidence`).
    """

    x: str
    y: str
    natural: BoundEstimate
    interventional: tuple[tuple[str, BoundEstimate], ...] = ()
    intersection: Interval | None = None
    intersection_ci: Interval | None = None

    @property
    def intersection_confidence(self) -> float:
        """The coverage ``1 - k (1 - confidence)`` of :attr:`intersection_ci`."""
        return 1 - (1 + len(self.interventional)) * (1 - self.natural.confidence)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``"intersection"`` only with interventional data."""
        entry: dict[str, Any] = {
            "x": self.x, "y": self.y, "natural": self.natural.to_dict(),
            "interventional": [{"strategy": name, **e.to_dict()}
                               for name, e in self.interventional]}
        if self.intersection is not None:
            entry["intersection"] = self.intersection.to_dict()
            ci = self.intersection_ci
            entry["intersection"]["ci"] = ci.to_dict() if ci else None
        return entry


def table_bounds(observational: Table, treatment: str, outcome: str, *,
                 x: Any = None, y: Any = None, interventional: Table | None = None,
                 nuisances: Sequence[str] = (), confidence: float = 0.95
                 ) -> list[CellBounds]:
    """Estimate the bounds on ``P(y | do(x))`` from tables of data, for every ``(x, y)``.

    Each pair of values gets the natural bounds of the observational table and, with an
    interventional table, the bounds under each intervention it holds
    (:func:`nuisance_groups`) and their intersection (see :class:`CellBounds`). An
    intervention under which ``x`` never occurs says nothing about ``do(x)`` and is
    skipped.

    Parameters
    ----------
    observational
        A :class:`~causalkit.tables.Table` of samples, counts or probabilities.
    treatment, outcome
        Column names of ``X`` and ``Y``.
    x, y
        One value each; ``None`` means every value the observational table holds.
    interventional
        A table gathered with ``nuisances`` set by intervention, or ``None``.
    nuisances
        The intervened columns of ``interventional``.
    confidence
        Level of each confidence interval (see :func:`estimate_bounds`).

    Returns
    -------
    list of CellBounds
        One per ``(x, y)``, ``x`` varying slowest.
    """
    if treatment == outcome:
        raise CausalKitError(f"treatment and outcome are the same column {treatment!r}; "
                             "pass different --treatment and --outcome columns")
    if set(nuisances) & {treatment, outcome}:
        raise CausalKitError(f"nuisance column(s) {sorted(set(nuisances) & {treatment, outcome})}"
                             " are the treatment or the outcome; name other --nuisance columns")
    observational.require(treatment, outcome)
    if interventional is not None:
        interventional.require(treatment, outcome, *nuisances)
    xs = [x] if x is not None else sorted(set(observational.columns[treatment]))
    ys = [y] if y is not None else sorted(set(observational.columns[outcome]))
    for col, vals in ((treatment, xs), (outcome, ys)):
        present = set(observational.columns[col])
        absent = [v for v in vals if v not in present]
        if absent:
            raise CausalKitError(f"value(s) {absent} of {col} do not occur in "
                                 f"{observational.source}; it has {sorted(present)}")

    def est(table: Table, xv: Any, yv: Any) -> BoundEstimate:
        return estimate_bounds(table.columns, treatment, outcome, xv, yv,
                               weights=table.weights, counts=table.counts,
                               confidence=confidence)

    groups = [] if interventional is None else [
        (name, interventional.subset(mask))
        for name, mask in nuisance_groups(interventional, nuisances)]
    cells = []
    for xv in xs:
        for yv in ys:
            nat = est(observational, xv, yv)
            if interventional is None:
                cells.append(CellBounds(xv, yv, nat))
                continue
            found = tuple((name, est(sub, xv, yv)) for name, sub in groups
                          if np.any(sub.columns[treatment].astype(str) == str(xv)))
            cis = [nat.confidence_interval] + [e.confidence_interval for _, e in found]
            combined = intersect([nat.interval] + [e.interval for _, e in found])
            ci = intersect(cis) if all(cis) else None
            cells.append(CellBounds(xv, yv, nat, found, combined, ci))
    return cells
