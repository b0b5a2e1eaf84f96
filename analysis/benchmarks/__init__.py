"""Out-of-distribution benchmarks of ImageNet classifiers, behind one registry.

The claims of GenInt and CGN are measured on benchmarks that each came with its own
repository: cue-conflict shape bias (model-vs-human), the IN-9 background gap
(backgrounds_challenge), ImageNet-C's mCE, ObjectNet-113, ImageNet-V2 and ImageNet-A.
This package scores any ImageNet classifier on all of them with one contract:

* a **classifier** maps float RGB images in ``[0, 1]``, ``(B, 3, H, W)``, to 1000
  ImageNet logits, or to a dict of them (one per head; the heads' average is scored
  too). Normalisation lives in the model (:mod:`~analysis.benchmarks.models`).
* an **evaluator** is ``evaluate(model, root, *, batch_size, device, amp, progress,
  ...) -> BenchmarkResult`` (:mod:`~analysis.benchmarks.results`), registered in
  :mod:`~analysis.benchmarks.registry`.

Files are read by :mod:`causalkit.datasets.image_folder`; class maps are in
:mod:`~analysis.benchmarks.classes`; the batched loop (DataLoader workers, AMP on CUDA)
is :mod:`~analysis.benchmarks.inference`; data sources and terms are
:mod:`~analysis.benchmarks.data`; figures are :mod:`~analysis.benchmarks.plots`.

Examples
--------
>>> from analysis.benchmarks import load_model, run_benchmark        # doctest: +SKIP
>>> model = load_model("efficientnet-lite0")                          # doctest: +SKIP
>>> run_benchmark("shape-bias", model, "cue-conflict").metric("shape_bias")  # doctest: +SKIP
"""

from __future__ import annotations

from analysis.benchmarks.models import ImageNetClassifier, load_model
from analysis.benchmarks.registry import BENCHMARKS, get_benchmark, run_benchmark
from analysis.benchmarks.results import BenchmarkResult

__all__ = ["BENCHMARKS", "BenchmarkResult", "ImageNetClassifier", "get_benchmark",
           "load_model", "run_benchmark"]
