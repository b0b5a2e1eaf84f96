"""Probability expressions: what an identification result says, as an object.

An identified causal effect is a formula in observational probabilities, built from four
pieces::

    P(Y | X, Z)          Prob(("Y",), given=("X", "Z"))
    sum_{Z} body         Sum(("Z",), body)
    a b c                Product((a, b, c))
    (a) / (b)            Fraction(a, b)

Each expression prints as text (``str(e)`` or :meth:`Expression.text`) and as LaTeX
(:meth:`Expression.latex`), and evaluates on a finite distribution
(:meth:`Expression.evaluate`), which is how the tests compare an identified formula
with the exact ``P(y | do(x))`` of a :class:`~causalkit.scm.DiscreteSCM`.

A ``Sum`` binds its variables: inside it, ``X`` is the summed copy, not the ``X`` of
the query. The printers show a bound variable that shadows one in scope with a prime,
so the front-door formula reads::

    >>> e = Sum(("M",), Product((Prob(("M",), ("X",)),
    ...     Sum(("X",), Product((Prob(("Y",), ("X", "M")), Prob(("X",))))))))
    >>> print(e)
    sum_{M} P(M | X) [sum_{X'} P(Y | X', M) P(X')]
    >>> print(e.latex())
    \\sum_{M} P(M \\mid X) \\left[\\sum_{X'} P(Y \\mid X', M) P(X')\\right]
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from causalkit.errors import CausalKitError

__all__ = ["Expression", "Prob", "Sum", "Product", "Fraction", "Distribution", "product",
           "summation"]


class Distribution(Protocol):
    """What :meth:`Expression.evaluate` needs: finite variables and their probabilities
    (:class:`~causalkit.scm.DiscreteSCM` is one)."""

    cardinality: Mapping[str, int]

    def prob(self, event: Mapping[str, int], given: Mapping[str, int] | None = None
             ) -> float: ...


class Expression:
    """Base class of probability expressions (see the module docstring)."""

    __slots__ = ()

    @property
    def free(self) -> frozenset[str]:
        """Variables the expression depends on that no ``Sum`` inside it binds."""
        raise NotImplementedError

    def text(self) -> str:
        """Plain text, e.g. ``sum_{Z} P(Y | X, Z) P(Z)``."""
        return self._render(_TEXT, {v: v for v in self.free})

    def latex(self) -> str:
        r"""LaTeX, e.g. ``\sum_{Z} P(Y \mid X, Z) P(Z)``."""
        return self._render(_LATEX, {v: v for v in self.free})

    def __str__(self) -> str:
        return self.text()

    def evaluate(self, distribution: Distribution, values: Mapping[str, int]) -> float:
        """The expression's value under ``distribution`` with its free variables set to
        ``values`` (e.g. ``{"X": 1, "Y": 0}`` for ``P(Y=0 | do(X=1))``).

        Raises
        ------
        CausalKitError
            When a free variable has no value, or a conditional's condition has
            probability zero (positivity fails).
        """
        missing = sorted(self.free - set(values))
        if missing:
            raise CausalKitError(f"no value for {', '.join(missing)}; pass them in values")
        return self._eval(distribution, dict(values), {})

    # implemented by the subclasses
    def _render(self, style: _Style, scope: dict[str, str]) -> str:
        raise NotImplementedError

    def _eval(self, dist: Distribution, env: dict[str, int], memo: dict) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class _Style:
    given: str
    sum_open: str
    sum_close: str
    frac: str
    brackets: tuple[str, str]
    latex: bool


_TEXT = _Style(" | ", "sum_{", "} ", "({}) / ({})", ("[", "]"), False)
_LATEX = _Style(r" \mid ", r"\sum_{", "} ", r"\frac{{{}}}{{{}}}", (r"\left[", r"\right]"), True)


def _name(v: str, scope: dict[str, str], style: _Style) -> str:
    shown = scope.get(v, v)
    if not style.latex:
        return shown
    base = shown.rstrip("'")
    primes = shown[len(base):]
    base = base.replace("\\", r"\backslash ").replace("_", r"\_").replace("{", r"\{") \
        .replace("}", r"\}").replace("&", r"\&").replace("%", r"\%").replace("#", r"\#") \
        .replace("$", r"\$")
    m = re.fullmatch(r"([A-Za-z]+)([0-9]+)", base)
    if m:  # Z2 -> Z_{2}
        head = m.group(1) if len(m.group(1)) == 1 else r"\mathrm{" + m.group(1) + "}"
        return f"{head}_{{{m.group(2)}}}" + primes
    if len(base) > 1 and not base.replace(r"\_", "").isalnum():
        base = r"\text{" + base + "}"
    elif len(base) > 1 and not base.isalpha():
        base = r"\mathrm{" + base + "}"
    return base + primes


@dataclass(frozen=True)
class Prob(Expression):
    """An observational probability ``P(vars | given)`` (``given`` may be empty)."""

    vars: tuple[str, ...]
    given: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "vars", tuple(self.vars))
        object.__setattr__(self, "given", tuple(self.given))
        if not self.vars:
            raise CausalKitError("P() needs at least one variable")

    @property
    def free(self) -> frozenset[str]:
        return frozenset(self.vars) | frozenset(self.given)

    def _render(self, style: _Style, scope: dict[str, str]) -> str:
        body = ", ".join(_name(v, scope, style) for v in self.vars)
        if self.given:
            body += style.given + ", ".join(_name(v, scope, style) for v in self.given)
        return f"P({body})"

    def _eval(self, dist: Distribution, env: dict[str, int], memo: dict) -> float:
        event = {v: env[v] for v in self.vars}
        given = {v: env[v] for v in self.given}
        key = (self.vars, self.given, tuple(event.values()), tuple(given.values()))
        if key not in memo:
            memo[key] = float(dist.prob(event, given or None))
        return memo[key]


@dataclass(frozen=True)
class Sum(Expression):
    """``sum_{over} body``: ``over`` are bound inside ``body``."""

    over: tuple[str, ...]
    body: Expression

    def __post_init__(self) -> None:
        object.__setattr__(self, "over", tuple(self.over))

    @property
    def free(self) -> frozenset[str]:
        return self.body.free - frozenset(self.over)

    def _render(self, style: _Style, scope: dict[str, str]) -> str:
        inner = dict(scope)
        shown = set(scope.values())
        for v in self.over:
            name = v
            while name in shown:
                name += "'"
            inner[v] = name
            shown.add(name)
        head = style.sum_open + ", ".join(_name(v, inner, style) for v in self.over)
        return head + style.sum_close + self.body._render(style, inner)

    def _eval(self, dist: Distribution, env: dict[str, int], memo: dict) -> float:
        saved = {v: env[v] for v in self.over if v in env}
        total = 0.0
        try:
            for values in itertools.product(*(range(dist.cardinality[v]) for v in self.over)):
                env.update(zip(self.over, values, strict=True))
                total += self.body._eval(dist, env, memo)
        finally:
            for v in self.over:
                env.pop(v, None)
            env.update(saved)
        return total


@dataclass(frozen=True)
class Product(Expression):
    """The product of its factors (at least two; see :func:`product`)."""

    factors: tuple[Expression, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", tuple(self.factors))

    @property
    def free(self) -> frozenset[str]:
        return frozenset().union(*(f.free for f in self.factors))

    def _render(self, style: _Style, scope: dict[str, str]) -> str:
        parts = []
        for f in self.factors:
            s = f._render(style, scope)
            if isinstance(f, Sum):
                s = f"{style.brackets[0]}{s}{style.brackets[1]}"
            parts.append(s)
        return " ".join(parts)

    def _eval(self, dist: Distribution, env: dict[str, int], memo: dict) -> float:
        out = 1.0
        for f in self.factors:
            out *= f._eval(dist, env, memo)
            if out == 0.0:
                return 0.0
        return out


@dataclass(frozen=True)
class Fraction(Expression):
    """``numerator / denominator``."""

    numerator: Expression
    denominator: Expression

    @property
    def free(self) -> frozenset[str]:
        return self.numerator.free | self.denominator.free

    def _render(self, style: _Style, scope: dict[str, str]) -> str:
        return style.frac.format(self.numerator._render(style, scope),
                                 self.denominator._render(style, scope))

    def _eval(self, dist: Distribution, env: dict[str, int], memo: dict) -> float:
        den = self.denominator._eval(dist, env, memo)
        if den == 0.0:
            raise CausalKitError(f"positivity fails: {self.denominator} = 0 at {env}, so the "
                                 "formula is undefined there")
        return self.numerator._eval(dist, env, memo) / den


def product(factors: Iterable[Expression]) -> Expression:
    """A :class:`Product`, flattened; a single factor is returned as is."""
    flat: list[Expression] = []
    for f in factors:
        flat.extend(f.factors if isinstance(f, Product) else (f,))
    if not flat:
        raise CausalKitError("an empty product has no expression")
    return flat[0] if len(flat) == 1 else Product(tuple(flat))


def summation(over: Iterable[str], body: Expression) -> Expression:
    """A :class:`Sum`; an empty ``over`` returns ``body``, nested sums merge."""
    over = tuple(over)
    if not over:
        return body
    if isinstance(body, Sum) and not set(over) & set(body.over):
        return Sum(over + body.over, body.body)
    return Sum(over, body)
