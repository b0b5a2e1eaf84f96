"""ImageNet-C (Hendrycks & Dietterich, ICLR 2019): top-1 error per corruption and
severity, mCE and relative mCE.

Two sources of corrupted images:

* **the released folders** ``ROOT/<corruption>/<severity>/<wnid>/*.JPEG`` (15 benchmark
  corruptions plus 4 extra, severities 1-5, the 224 x 224 centre crops of the ImageNet
  validation images), read as they are;
* **on the fly** (``source="folder"``): any class-per-folder tree of WordNet-id folders
  (the ImageNet validation set, a subset of it, a fixture) is viewed as
  ``Resize(256) + CenterCrop(224)`` and corrupted with
  :func:`analysis.benchmarks.corruptions.corrupt`, seeded per image, so a rerun scores
  the same pixels.

The corruption error of a model on corruption ``c`` is its top-1 error summed over the
five severities, divided by AlexNet's; mCE averages it over the 15 benchmark
corruptions. The relative CE subtracts the clean error from both. The arithmetic is
:func:`analysis.benchmarks.mce.corruption_errors`; the clean error comes from
``clean_root`` (the uncorrupted images), or, on the fly, from the same images
uncorrupted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analysis.benchmarks.imagenet_ids import INDEX
from analysis.benchmarks.inference import predict_dataset
from analysis.benchmarks.results import BenchmarkResult
from analysis.benchmarks.views import CorruptedView, ImageView, IndexedDataset
from causalkit.datasets.image_folder import ImageFolderDataset, ImageList, list_image_folder
from causalkit.errors import DataError

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def wnid_labels(images: ImageList, root: str | os.PathLike) -> ImageList:
    """``images`` relabelled by ImageNet index: class folders must be WordNet ids."""
    bad = [c for c in images.classes if c not in INDEX]
    if bad:
        raise DataError(f"class folders under {root} must be ImageNet WordNet ids "
                        f"(n01440764 ...); found {bad[:3]}")
    labels = tuple(INDEX[images.classes[label]] for label in images.labels)
    return ImageList(images.paths, labels, images.classes, images.root, images.counts)


def _top1_error(model: nn.Module, data: Any, desc: str, **kw: Any) -> tuple[dict[str, float],
                                                                             int, int, float]:
    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"top1": logits.argmax(1)}

    preds = predict_dataset(model, data, reduce, desc=desc, **kw)
    errors = {h: 1.0 - (o["top1"] == preds.labels).float().mean().item()
              for h, o in preds.outputs.items()}
    return errors, preds.n, preds.skipped, preds.seconds


def check_inputs(root: Path, *, source: str, corruptions: Sequence[str] | None,
                 severities: Sequence[int]) -> list[str]:
    """The corruptions a run scores, after checking its severities, source and folder:
    ``corruptions`` as given, else every corruption folder present (released) or the 15
    benchmark corruptions plus the 4 extra (on the fly). Raises :class:`DataError`."""
    from analysis.benchmarks import corruptions as corr

    known = tuple(corr.BENCHMARK) + tuple(corr.EXTRA)
    bad_sev = [s for s in severities if s not in SEVERITIES]
    if bad_sev:
        raise DataError(f"severities must be in 1..5, got {bad_sev}")
    if source not in ("released", "folder"):
        raise DataError(f"source must be 'released' or 'folder', got {source!r}")
    if not root.is_dir():
        raise DataError(f"ImageNet-C folder {root} does not exist; pass the folder that holds "
                        "one folder per corruption (or an image folder with source='folder')")
    if source == "released":
        present = [c for c in known if (root / c).is_dir()]
        names = list(corruptions) if corruptions is not None else present
        if not names:
            raise DataError(f"{root} holds no ImageNet-C corruption folders ({known[0]}/, "
                            f"{known[1]}/ ...); check the layout ROOT/<corruption>/<severity>/"
                            "<wnid>/")
    else:
        names = list(corruptions) if corruptions is not None else list(known)
    unknown = [c for c in names if c not in known]
    if unknown:
        raise DataError(f"unknown corruption(s) {unknown}; known: {', '.join(known)}")
    return names


def evaluate(model: nn.Module, root: str | os.PathLike, *, source: str = "released",
             corruptions: Sequence[str] | None = None,
             severities: Sequence[int] = SEVERITIES, clean_root: str | os.PathLike | None
             = None, clean_error: float | None = None, seed: int = 0, batch_size: int = 64,
             device: Any = None, amp: bool = False, progress: bool = True, num_workers: int = 0,
             on_corrupt: str = "raise") -> BenchmarkResult:
    """Top-1 errors, CE and mCE of ``model`` on ImageNet-C.

    ``corruptions`` defaults to every corruption present (released) or to the 15
    benchmark corruptions plus the 4 extra (on the fly). The clean error comes from
    ``clean_error``, else ``clean_root``, else (on the fly) the uncorrupted images.
    """
    root = Path(root)
    names = check_inputs(root, source=source, corruptions=corruptions, severities=severities)
    kw = dict(batch_size=batch_size, device=device, amp=amp, progress=progress,
              num_workers=num_workers)
    if source == "folder":
        base = wnid_labels(list_image_folder(root), root)

    errors: dict[str, dict[str, list[float]]] = {}
    n = skipped = 0
    seconds = 0.0
    for name in names:
        for severity in severities:
            if source == "released":
                folder = root / name / str(severity)
                if not folder.is_dir():
                    raise DataError(f"ImageNet-C folder {folder} is missing; download "
                                    f"{name} fully or pick severities (--severity N)")
                data: Any = ImageFolderDataset(
                    wnid_labels(list_image_folder(folder), folder),
                    transform=ImageView(resize=224, crop=224),
                    on_corrupt=on_corrupt)  # type: ignore[arg-type]
            else:
                data = IndexedDataset(ImageFolderDataset(base, on_corrupt=on_corrupt),  # type: ignore[arg-type]
                                      CorruptedView(name, severity, seed=seed))
            err, k, s, t = _top1_error(model, data, f"imagenet-c {name} {severity}", **kw)
            n, skipped, seconds = n + k, skipped + s, seconds + t
            for head, e in err.items():
                errors.setdefault(head, {}).setdefault(name, []).append(e)

    clean: dict[str, float] = {}
    if clean_error is not None:
        clean = {h: float(clean_error) for h in errors}
    elif clean_root is not None or source == "folder":
        croot = Path(clean_root) if clean_root is not None else root
        data = ImageFolderDataset(wnid_labels(list_image_folder(croot), croot),
                                  transform=ImageView(), on_corrupt=on_corrupt)  # type: ignore[arg-type]
        clean, k, s, t = _top1_error(model, data, "imagenet-c clean", **kw)
        n, skipped, seconds = n + k, skipped + s, seconds + t

    metrics, details = assemble_metrics(errors, clean, severities=severities, source=source)
    return BenchmarkResult("imagenet-c", metrics, n, skipped, details, seconds, str(root))


def assemble_metrics(errors: dict[str, dict[str, list[float]]], clean: dict[str, float], *,
                     severities: Sequence[int], source: str
                     ) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The report of a run from its errors: per head, the mean error of each corruption
    over ``severities`` (``errors[head][corruption]`` lists them), the clean error where
    measured, and mCE and relative mCE when every benchmark corruption was scored at
    every severity (AlexNet's published errors normalise them, :mod:`.mce`)."""
    from analysis.benchmarks import corruptions as corr
    from analysis.benchmarks import mce

    metrics: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {"severities": list(severities), "source": source}
    full = list(severities) == list(SEVERITIES)
    for head, per in errors.items():
        values = {f"error/{c}": sum(v) / len(v) for c, v in per.items()}
        details.setdefault("errors", {})[head] = per
        if head in clean:
            values["clean_error"] = clean[head]
            scored = {c: v for c, v in per.items() if c in mce.ALEXNET_ERRORS}
            if full and all(c in scored for c in corr.BENCHMARK):
                result = mce.corruption_errors(scored, clean[head])
                values["mce"] = result.mce
                values["relative_mce"] = result.relative_mce
                details.setdefault("ce", {})[head] = _as_dict(result)
        metrics[head] = values
    return metrics, details


def _as_dict(result: Any) -> dict[str, Any]:
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return {k: v for k, v in vars(result).items() if not k.startswith("_")}


__all__ = ["SEVERITIES", "evaluate", "wnid_labels"]
