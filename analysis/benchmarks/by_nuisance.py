"""Per-nuisance accuracy: a classifier of a biased dataset under do() on each nuisance.

The MNIST variants are SCMs whose nuisances (colours, textures) follow the label; their
test SCM under ``do(Z := uniform)`` for one nuisance ``Z`` at a time tells which
nuisance a classifier leans on (:func:`analysis.sensitivity.nuisance_sensitivity`). This
module puts that measurement behind the registry's interface: ``root`` is the variant's
name (``double-colored-mnist``), and ``model`` maps uint8 images to predicted labels
(``robust_training.engine.predict`` bound to a trained model, as the command line does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from analysis.benchmarks.results import BenchmarkResult


def evaluate(model: Callable[[Any], Any], root: str, *, rho: float = 0.9, n: int = 5000,
             seed: int = 0, source: str | None = None, **_: Any) -> BenchmarkResult:
    """Accuracy of ``model`` on variant ``root``'s test SCM under do() on each nuisance."""
    from analysis.sensitivity import nuisance_sensitivity
    from causalkit.datasets.build import get_scm, get_variant

    name = str(root).partition(":")[0]
    start = time.perf_counter()
    scm = get_scm(name, "test", rho=rho, source=source)
    report = nuisance_sensitivity(model, scm, get_variant(name).class_nodes, n=n, seed=seed)
    metrics = {"predict": {f"accuracy/{w}": a for w, a in report.accuracy.items()}
               | {f"follows/{z}": f for z, f in report.follows.items()}}
    return BenchmarkResult("by-nuisance", metrics, report.n, 0, {"report": report.to_dict(),
                           "text": report.format()}, time.perf_counter() - start, name)


__all__ = ["evaluate"]
