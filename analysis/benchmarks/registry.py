"""The one registry of benchmarks: a name, its evaluator, what it reads, and its terms.

``causalkit evaluate --benchmark NAME`` and :func:`run_benchmark` look evaluators up
here. Every evaluator has the signature ``evaluate(model, root, *, batch_size, device,
amp, progress, ...) -> BenchmarkResult`` (``by-nuisance`` takes a variant name as
``root`` and a label-predicting function as ``model``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analysis.benchmarks.results import BenchmarkResult
from causalkit.errors import CausalKitError


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: ``module:function`` of its evaluator, and what it reads."""

    name: str
    target: str
    reads: str
    summary: str
    primary: str

    @property
    def evaluate(self) -> Callable[..., BenchmarkResult]:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("shape-bias", "analysis.benchmarks.shape_bias:evaluate",
              "cue-conflict/<shape category>/<shape>N-<texture>M.png",
              "fraction of shape decisions on texture-shape cue-conflict images", "shape_bias"),
    Benchmark("in9", "analysis.benchmarks.in9:evaluate",
              "<variation>/val/<NN_class>/*.JPEG (original, mixed_same, mixed_rand, ...)",
              "IN-9 accuracies and the BG-gap (mixed_same - mixed_rand)", "bg_gap"),
    Benchmark("imagenet-c", "analysis.benchmarks.imagenet_c:evaluate",
              "<corruption>/<severity>/<wnid>/*.JPEG, or any <wnid>/ image folder "
              "corrupted on the fly", "top-1 error per corruption, mCE, relative mCE", "mce"),
    Benchmark("objectnet", "analysis.benchmarks.objectnet:evaluate",
              "objectnet-1.0/images/<class>/*.png", "top-1/top-5 on the 113 ImageNet classes",
              "top1"),
    Benchmark("imagenet-v2", "analysis.benchmarks.imagenet_v2:evaluate",
              "imagenetv2-<variant>-format-val/<index>/*.jpeg", "top-1/top-5 per variant",
              "matched-frequency/top1"),
    Benchmark("imagenet-a", "analysis.benchmarks.imagenet_v2:evaluate_a",
              "imagenet-a/<wnid>/*.jpg", "top-1/top-5 over its 200 classes", "top1"),
    Benchmark("by-nuisance", "analysis.benchmarks.by_nuisance:evaluate",
              "a dataset variant name (double-colored-mnist ...)",
              "accuracy under do() on each nuisance of a biased dataset",
              "accuracy/do(all)"),
)}

IMAGE_BENCHMARKS: tuple[str, ...] = tuple(b for b in BENCHMARKS if b != "by-nuisance")


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``; an unknown name lists the known ones."""
    if name not in BENCHMARKS:
        raise CausalKitError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def run_benchmark(name: str, model: Any, root: Any, **options: Any) -> BenchmarkResult:
    """Evaluate ``model`` on benchmark ``name`` read from ``root``."""
    return get_benchmark(name).evaluate(model, root, **options)


__all__ = ["BENCHMARKS", "Benchmark", "IMAGE_BENCHMARKS", "get_benchmark", "run_benchmark"]
