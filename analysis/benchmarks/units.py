"""Benchmarks cut into units, so an evaluation can stop anywhere and resume.

:func:`evaluate_in_units` gives the :class:`~analysis.benchmarks.results.BenchmarkResult`
the benchmark's own evaluator gives, computed unit by unit through a
:class:`~analysis.benchmarks.partials.PartialStore`: a unit whose partial exists (same
model, same data, same settings) is read back, the others are computed and saved as
soon as they finish. The report is assembled from the units' saved numbers only.

The units:

* **ImageNet-C**: one unit per corruption, severity and shard of ``shard_images``
  images (released folders ``<corruption>/<severity>/`` or, on the fly, the image
  folder under one corruption), and the shards of the clean images when the clean
  error is measured. A unit saves, per head, how many of its images were classified
  correctly; a (corruption, severity) error sums its shards first, so the error is the
  one the whole folder gives. mCE and relative mCE follow
  :func:`analysis.benchmarks.imagenet_c.evaluate` (``tests/test_evaluate_resume.py``
  checks that both give equal results).
* **Every other benchmark** (shape bias, IN-9, ObjectNet, ImageNet-V2/A): one unit, the
  whole benchmark, run by its registered evaluator (thousands to tens of thousands of
  images: minutes on a GPU).

Every unit's settings hold the batch size, the precision (``amp``), the device type and
the corrupt-file rule, since each can change a score's last digits or its count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Subset

from analysis.benchmarks.results import BenchmarkResult
from causalkit.errors import DataError

SHARD_IMAGES = 10_000
"""Images per ImageNet-C unit: a fifth of a released (corruption, severity) folder."""

_RUNTIME = ("progress", "num_workers", "device")
# options that change how, not what, is computed (the device's type is in every key)


@dataclass(frozen=True)
class Unit:
    """One piece of an evaluation: its name, what decides its numbers, what it reads, and
    how to compute it (``run() -> (JSON-able result, seconds)``)."""

    name: str
    settings: dict[str, Any]
    reads: tuple[tuple[str, Path], ...]
    run: Callable[[], tuple[Any, float]]


@dataclass(frozen=True)
class Plan:
    """A benchmark's units and how their results make the benchmark's result."""

    benchmark: str
    units: list[Unit]
    assemble: Callable[[list[Any]], BenchmarkResult]


def _common(options: dict[str, Any]) -> dict[str, Any]:
    from causalkit.devices import resolve_device

    return {"batch_size": options.get("batch_size", 64), "amp": bool(options.get("amp", False)),
            "device": resolve_device(options.get("device")).type,
            "on_corrupt": options.get("on_corrupt", "raise")}


def _shards(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)] or [(0, 0)]


def _label(folder: Path, root: Path) -> str:
    try:
        return folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return os.fspath(folder)


def _error(correct: int, n: int) -> float:
    # the evaluator's arithmetic: the float32 mean of per-image hits (exact integer sum)
    hits = torch.zeros(n)
    hits[:correct] = 1.0
    return 1.0 - hits.mean().item()


def _imagenet_c(model: nn.Module, root: Path, *, source: str = "released",
                corruptions: Sequence[str] | None = None,
                severities: Sequence[int] | None = None,
                clean_root: str | os.PathLike | None = None, clean_error: float | None = None,
                seed: int = 0, shard_images: int = SHARD_IMAGES,
                **options: Any) -> Plan:
    from analysis.benchmarks.imagenet_c import (
        SEVERITIES,
        assemble_metrics,
        check_inputs,
        wnid_labels,
    )
    from analysis.benchmarks.inference import predict_dataset
    from analysis.benchmarks.views import CorruptedView, ImageView, IndexedDataset
    from causalkit.datasets.image_folder import ImageFolderDataset, list_image_folder

    severities = list(SEVERITIES if severities is None else severities)
    if shard_images < 1:
        raise DataError(f"shard_images must be at least 1, got {shard_images}")
    names = check_inputs(root, source=source, corruptions=corruptions, severities=severities)

    on_corrupt = options.get("on_corrupt", "raise")
    kw = {k: options[k] for k in ("batch_size", "device", "amp", "progress", "num_workers")
          if k in options}
    common = _common(options)

    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"top1": logits.argmax(1)}

    def scorer(make: Callable[[], Any], start: int, stop: int, whole: int,
               desc: str) -> Callable[[], tuple[Any, float]]:
        def run() -> tuple[Any, float]:
            data = make()
            if (start, stop) != (0, whole):
                data = Subset(data, range(start, stop))
            preds = predict_dataset(model, data, reduce, desc=desc, **kw)
            correct = {h: int((o["top1"] == preds.labels).sum()) for h, o in
                       preds.outputs.items()}
            return {"n": preds.n, "skipped": preds.skipped, "correct": correct}, preds.seconds
        return run

    units: list[Unit] = []
    groups: list[tuple[str, int | None, list[int]]] = []  # (corruption, severity, units)
    base = wnid_labels(list_image_folder(root), root) if source == "folder" else None
    listed = []
    for name in names:
        for severity in severities:
            if source == "released":
                folder = root / name / str(severity)
                if not folder.is_dir():
                    raise DataError(f"ImageNet-C folder {folder} is missing; download "
                                    f"{name} fully or pick severities (--severity N)")
                listed.append((name, severity, folder, wnid_labels(list_image_folder(folder),
                                                                   folder)))
            else:
                listed.append((name, severity, root, base))
    for name, severity, folder, images in listed:
        if source == "released":
            def make(images: Any = images) -> Any:
                return ImageFolderDataset(images, transform=ImageView(resize=224, crop=224),
                                          on_corrupt=on_corrupt)  # type: ignore[arg-type]
        else:
            def make(images: Any = images, name: str = name, severity: int = severity) -> Any:
                return IndexedDataset(ImageFolderDataset(images, on_corrupt=on_corrupt),  # type: ignore[arg-type]
                                      CorruptedView(name, severity, seed=seed))
        total = len(images.paths)
        members = []
        for start, stop in _shards(total, shard_images):
            members.append(len(units))
            settings = {**common, "source": source, "corruption": name, "severity": severity,
                        "images": [start, stop], "seed": seed if source == "folder" else None}
            units.append(Unit(f"{name}/{severity}/{start}-{stop}", settings,
                              ((_label(folder, root), folder),),
                              scorer(make, start, stop, total,
                                     f"imagenet-c {name} {severity} [{start}:{stop}]")))
        groups.append((name, severity, members))

    if clean_error is None and (clean_root is not None or source == "folder"):
        croot = Path(clean_root) if clean_root is not None else root
        clean_images = wnid_labels(list_image_folder(croot), croot)
        total = len(clean_images.paths)
        members = []
        for start, stop in _shards(total, shard_images):
            members.append(len(units))
            units.append(Unit(f"clean/{start}-{stop}",
                              {**common, "clean": True, "images": [start, stop]},
                              ((_label(croot, root), croot),),
                              scorer(lambda: ImageFolderDataset(
                                  clean_images, transform=ImageView(),
                                  on_corrupt=on_corrupt),  # type: ignore[arg-type]
                                  start, stop, total, f"imagenet-c clean [{start}:{stop}]")))
        groups.append(("clean", None, members))

    def assemble(results: list[Any]) -> BenchmarkResult:
        errors: dict[str, dict[str, list[float]]] = {}
        clean: dict[str, float] = {}
        n = skipped = 0
        for name, severity, members in groups:
            parts = [results[i] for i in members]
            count = sum(p["n"] for p in parts)
            n += count
            skipped += sum(p["skipped"] for p in parts)
            heads = list(parts[0]["correct"])
            for head in heads:
                e = _error(sum(p["correct"][head] for p in parts), count)
                if severity is None:
                    clean[head] = e
                else:
                    errors.setdefault(head, {}).setdefault(name, []).append(e)
        if clean_error is not None:
            clean = {h: float(clean_error) for h in errors}
        metrics, details = assemble_metrics(errors, clean, severities=severities,
                                            source=source)
        return BenchmarkResult("imagenet-c", metrics, n, skipped, details, 0.0, str(root))

    return Plan("imagenet-c", units, assemble)


def _whole(name: str, model: Any, root: Any, **options: Any) -> Plan:
    from analysis.benchmarks.registry import run_benchmark

    options.pop("shard_images", None)

    def run() -> tuple[Any, float]:
        result = run_benchmark(name, model, root, **options)
        return result.to_dict(), result.seconds

    settings = {**_common(options), "options": {k: v for k, v in sorted(options.items())
                                                if k not in _RUNTIME}}
    reads = ((".", Path(root)),) if Path(str(root)).is_dir() else ()

    def assemble(results: list[Any]) -> BenchmarkResult:
        return BenchmarkResult.from_dict(results[0], root=str(root))

    return Plan(name, [Unit("all", settings, reads, run)], assemble)


def plan(name: str, model: Any, root: Any, **options: Any) -> Plan:
    """The units of benchmark ``name`` on ``root`` (input checked, nothing computed);
    ``options`` are the evaluator's, plus ``shard_images`` for ImageNet-C."""
    from analysis.benchmarks.registry import get_benchmark

    get_benchmark(name)
    if name == "imagenet-c":
        return _imagenet_c(model, Path(root), **options)
    return _whole(name, model, root, **options)


def evaluate_in_units(name: str, model: Any, root: Any, *, store: Any = None,
                      report: Callable[[str], None] | None = None,
                      **options: Any) -> tuple[BenchmarkResult, dict[str, Any]]:
    """Benchmark ``name``'s result, unit by unit through ``store`` (a
    :class:`~analysis.benchmarks.partials.PartialStore`; ``None`` computes every unit and
    saves nothing), and how it went: ``{"units", "reused", "computed", "seconds",
    "computed_seconds"}``. ``report`` receives a line saying how many units are reused."""
    return run_plan(plan(name, model, root, **options), store=store, report=report)


def run_plan(the_plan: Plan, *, store: Any = None, report: Callable[[str], None] | None = None
             ) -> tuple[BenchmarkResult, dict[str, Any]]:
    """:func:`evaluate_in_units` of a :func:`plan` made beforehand (a caller plans every
    benchmark first, so that all of ImageNet-C's folders are checked before any unit of
    any benchmark is computed)."""
    from analysis.benchmarks.partials import PartialStore

    store = store if store is not None else PartialStore(None, model="", settings={})
    name = the_plan.benchmark
    start = time.perf_counter()
    reused_before, computed_before = store.reused, store.computed
    seconds_before = store.computed_seconds
    total, done, where = len(the_plan.units), 0, ""
    if store.folder is not None:
        where = f" from {store.folder}"
        done = sum(store.load(store.key(benchmark=name, name=u.name, settings=u.settings,
                                        reads=u.reads)) is not None for u in the_plan.units)
    if report is not None:
        report(f"{name}: {total} unit(s), {done} reused{where}, {total - done} to compute")
    results = [store.fetch(benchmark=name, name=u.name, settings=u.settings, reads=u.reads,
                           run=u.run)[0] for u in the_plan.units]
    result = the_plan.assemble(results)
    result.seconds = time.perf_counter() - start
    info = {"units": total, "reused": store.reused - reused_before,
            "computed": store.computed - computed_before,
            "seconds": round(result.seconds, 3),
            "computed_seconds": round(store.computed_seconds - seconds_before, 3)}
    return result, info


__all__ = ["Plan", "SHARD_IMAGES", "Unit", "evaluate_in_units", "plan", "run_plan"]
