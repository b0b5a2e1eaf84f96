"""ObjectNet-113 (Barbu et al., NeurIPS 2019), as GenInt scores it.

ObjectNet photographs 313 object classes at unusual rotations, viewpoints and
backgrounds; 113 of them overlap ImageNet, covering 125 ImageNet classes
(:data:`~analysis.benchmarks.classes.OBJECTNET_TO_IMAGENET`). The released layout is
``objectnet-1.0/images/<class folder>/*.png``; only the 113 overlapping folders are
read, the others are counted and ignored.

Each image loses the 2-pixel border the release adds, then gets the usual
``Resize(256) + CenterCrop(224)`` view. Predictions are **pooled per ObjectNet class**:
a class's score is the maximum of the logits of its ImageNet classes (a "chair" is any
of barber chair, folding chair, rocking chair), and top-1/top-5 are read over the 113
pooled scores.

ObjectNet's licence forbids training on it, in any form; it is a test set only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analysis.benchmarks.classes import OBJECTNET_TO_IMAGENET
from analysis.benchmarks.inference import predict_dataset
from analysis.benchmarks.results import BenchmarkResult
from analysis.benchmarks.views import ImageView
from causalkit.datasets.image_folder import ImageFolderDataset, list_image_folder
from causalkit.errors import DataError

CLASSES: tuple[str, ...] = tuple(sorted(OBJECTNET_TO_IMAGENET))


def images_folder(root: str | os.PathLike) -> Path:
    """The folder of class folders: ``root/images`` when present, else ``root``."""
    root = Path(root)
    return root / "images" if (root / "images").is_dir() else root


def pooled_scores(logits: torch.Tensor) -> torch.Tensor:
    """``(B, 113)``: each ObjectNet class's maximum logit over its ImageNet classes."""
    return torch.stack([logits[:, list(OBJECTNET_TO_IMAGENET[c])].max(1).values
                        for c in CLASSES], dim=1)


def evaluate(model: nn.Module, root: str | os.PathLike, *, batch_size: int = 64,
             device: Any = None, amp: bool = False, progress: bool = True,
             num_workers: int = 0, border: int = 2, on_corrupt: str = "raise",
             allow_missing_classes: bool = False) -> BenchmarkResult:
    """Top-1 and top-5 accuracy of ``model`` on the 113 ObjectNet classes under ``root``."""
    folder = images_folder(root)
    if not folder.is_dir():
        raise DataError(f"ObjectNet folder {root} does not exist; pass objectnet-1.0/ (or its "
                        "images/ folder)")
    present = {p.name for p in folder.iterdir() if p.is_dir()}
    classes = [c for c in CLASSES if c in present]
    missing = [c for c in CLASSES if c not in present]
    if not classes:
        raise DataError(f"{folder} holds none of ObjectNet's 113 ImageNet classes (alarm_clock, "
                        "backpack ...); pass objectnet-1.0/images")
    if missing and not allow_missing_classes:
        raise DataError(f"{folder} lacks {len(missing)} of ObjectNet's 113 overlapping class "
                        f"folders ({', '.join(missing[:3])} ...); complete the download or "
                        "pass allow_missing_classes=True")
    images = list_image_folder(folder, classes=classes, allow_empty_classes=True)
    data = ImageFolderDataset(images, transform=ImageView(border=border),
                              on_corrupt=on_corrupt)  # type: ignore[arg-type]
    position = torch.tensor([CLASSES.index(c) for c in classes])

    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"top5": pooled_scores(logits).topk(5, dim=1).indices}

    preds = predict_dataset(model, data, reduce, batch_size=batch_size, device=device, amp=amp,
                            progress=progress, num_workers=num_workers, desc="objectnet")
    target = position[preds.labels]
    metrics = {}
    for head, out in preds.outputs.items():
        hits = out["top5"] == target[:, None]
        metrics[head] = {"top1": hits[:, 0].float().mean().item(),
                         "top5": hits.any(1).float().mean().item()}
    details = {"classes": len(classes), "ignored_folders": len(present - set(CLASSES)),
               "missing_classes": missing}
    return BenchmarkResult("objectnet", metrics, preds.n, preds.skipped, details,
                           preds.seconds, str(root))


__all__ = ["CLASSES", "evaluate", "images_folder", "pooled_scores"]
