"""The result every benchmark returns: metrics per head, details, and how it was read.

A classifier with one output has one head (``"logits"``); a multi-head classifier has
one per head plus ``"averaged"``. :meth:`BenchmarkResult.rows` flattens the metrics
into table rows ``(benchmark, head, metric, value)`` for the command line, and
:meth:`BenchmarkResult.to_dict` is the JSON record: the scores only, so that two runs of
the same evaluation give the same bytes. How long it took (:attr:`BenchmarkResult.seconds`)
is kept apart: ``causalkit evaluate`` writes it to ``timing.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchmarkResult:
    """Scores of one classifier on one benchmark."""

    benchmark: str
    metrics: dict[str, dict[str, float]]
    n: int
    skipped: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    root: str = ""

    @property
    def heads(self) -> list[str]:
        return list(self.metrics)

    def metric(self, name: str, head: str | None = None) -> float:
        """One metric of ``head`` (default: the only head, or ``"averaged"``)."""
        if head is None:
            head = self.heads[0] if len(self.heads) == 1 else "averaged"
        return self.metrics[head][name]

    def rows(self) -> list[list[str]]:
        out = []
        for head, values in self.metrics.items():
            for name, value in values.items():
                out.append([self.benchmark, head, name, f"{value:.4f}"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The scores as a JSON record (without :attr:`seconds`)."""
        return {"benchmark": self.benchmark, "root": self.root, "n": self.n,
                "skipped": self.skipped, "metrics": self.metrics, "details": self.details}

    @classmethod
    def from_dict(cls, record: dict[str, Any], *, root: str | None = None,
                  seconds: float = 0.0) -> BenchmarkResult:
        """The result a :meth:`to_dict` record describes (``root`` replaces its root)."""
        return cls(record["benchmark"], record["metrics"], record["n"], record["skipped"],
                   record["details"], seconds, record["root"] if root is None else root)


__all__ = ["BenchmarkResult"]
