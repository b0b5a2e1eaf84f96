"""ImageNet-V2 (Recht et al., ICML 2019) and ImageNet-A (Hendrycks et al., CVPR 2021).

**ImageNet-V2** is a new test set collected by ImageNet's own protocol, in three
variants: ``matched-frequency``, ``threshold0.7`` and ``top-images``. Its releases
(``imagenetv2-matched-frequency-format-val/`` ...) hold one folder per class named by
the class *index* (``0`` ... ``999``), 10 images each; a root holding several variant
folders scores each.

**ImageNet-A** holds 7,500 natural adversarial images of 200 ImageNet classes, one
folder per WordNet id. Its authors restrict the logits to those 200 classes before the
argmax; so does :func:`evaluate_a`. Both report top-1 and top-5 accuracy with the usual
``Resize(256) + CenterCrop(224)`` view.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analysis.benchmarks.classes import IMAGENET_A_INDICES
from analysis.benchmarks.imagenet_c import wnid_labels
from analysis.benchmarks.imagenet_ids import WNIDS
from analysis.benchmarks.inference import predict_dataset, topk_reduce
from analysis.benchmarks.results import BenchmarkResult
from analysis.benchmarks.views import ImageView
from causalkit.datasets.image_folder import ImageFolderDataset, ImageList, list_image_folder
from causalkit.errors import DataError

V2_VARIANTS: tuple[str, ...] = ("matched-frequency", "threshold0.7", "top-images")


def v2_variant_folders(root: str | os.PathLike) -> dict[str, Path]:
    """The ImageNet-V2 variant folders under ``root`` (or ``root`` itself as one)."""
    root = Path(root)
    found = {}
    for variant in V2_VARIANTS:
        for name in (f"imagenetv2-{variant}-format-val", f"imagenetv2-{variant}", variant):
            if (root / name).is_dir():
                found[variant] = root / name
                break
    if not found and root.is_dir():
        label = next((v for v in V2_VARIANTS if v in root.name), root.name)
        found[label] = root
    return found


def _index_labels(images: ImageList, root: Path) -> ImageList:
    bad = [c for c in images.classes if not c.isdigit() or not 0 <= int(c) < 1000]
    if bad:
        raise DataError(f"ImageNet-V2 class folders under {root} are class indices 0..999; "
                        f"found {bad[:3]}: pass an imagenetv2-*-format-val folder")
    labels = tuple(int(images.classes[label]) for label in images.labels)
    return ImageList(images.paths, labels, images.classes, images.root, images.counts)


def _topk_metrics(preds: Any, target: torch.Tensor) -> dict[str, dict[str, float]]:
    metrics = {}
    for head, out in preds.outputs.items():
        hits = out["topk"] == target[:, None]
        metrics[head] = {"top1": hits[:, 0].float().mean().item(),
                         "top5": hits[:, :5].any(1).float().mean().item()}
    return metrics


def evaluate(model: nn.Module, root: str | os.PathLike, *, batch_size: int = 64,
             device: Any = None, amp: bool = False, progress: bool = True,
             num_workers: int = 0, on_corrupt: str = "raise") -> BenchmarkResult:
    """Top-1/top-5 accuracy on every ImageNet-V2 variant found under ``root``."""
    folders = v2_variant_folders(root)
    if not folders:
        raise DataError(f"ImageNet-V2 folder {root} does not exist; pass the folder of "
                        "imagenetv2-*-format-val/ or one of them")
    metrics: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {}
    n = skipped = 0
    seconds = 0.0
    for variant, folder in folders.items():
        images = _index_labels(list_image_folder(folder), folder)
        data = ImageFolderDataset(images, transform=ImageView(),
                                  on_corrupt=on_corrupt)  # type: ignore[arg-type]
        preds = predict_dataset(model, data, topk_reduce(5), batch_size=batch_size,
                                device=device, amp=amp, progress=progress,
                                num_workers=num_workers, desc=f"imagenet-v2 {variant}")
        n, skipped, seconds = n + preds.n, skipped + preds.skipped, seconds + preds.seconds
        for head, values in _topk_metrics(preds, preds.labels).items():
            for key, value in values.items():
                metrics.setdefault(head, {})[f"{variant}/{key}"] = value
        details[variant] = {"n": preds.n, "folder": str(folder)}
    return BenchmarkResult("imagenet-v2", metrics, n, skipped, details, seconds, str(root))


def evaluate_a(model: nn.Module, root: str | os.PathLike, *, batch_size: int = 64,
               device: Any = None, amp: bool = False, progress: bool = True,
               num_workers: int = 0, on_corrupt: str = "raise") -> BenchmarkResult:
    """Top-1/top-5 accuracy on ImageNet-A, logits restricted to its 200 classes."""
    allowed = {WNIDS[i] for i in IMAGENET_A_INDICES}
    images = wnid_labels(list_image_folder(root), root)
    outside = [c for c in images.classes if c not in allowed]
    if outside:
        raise DataError(f"{root} has class folders {outside[:3]} outside ImageNet-A's 200 "
                        "classes; pass the imagenet-a folder")
    subset = torch.tensor(IMAGENET_A_INDICES)

    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        top = logits[:, subset.to(logits.device)].topk(5, dim=1).indices
        return {"topk": subset.to(top.device)[top]}

    data = ImageFolderDataset(images, transform=ImageView(),
                              on_corrupt=on_corrupt)  # type: ignore[arg-type]
    preds = predict_dataset(model, data, reduce, batch_size=batch_size, device=device, amp=amp,
                            progress=progress, num_workers=num_workers, desc="imagenet-a")
    return BenchmarkResult("imagenet-a", _topk_metrics(preds, preds.labels), preds.n,
                           preds.skipped, {"classes": len(images.classes)}, preds.seconds,
                           str(root))


__all__ = ["V2_VARIANTS", "evaluate", "evaluate_a", "v2_variant_folders"]
