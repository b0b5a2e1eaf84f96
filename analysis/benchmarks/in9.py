"""IN-9 and the background gap (Xiao et al., ICLR 2021), by MadryLab's protocol.

IN-9 is nine ImageNet superclasses (dog, bird, vehicle, ...), released in variations
that keep or swap the foreground and background of the same images: ``original``,
``mixed_same`` (the foreground on the background of another image of the *same*
class), ``mixed_rand`` (on the background of a *random* class), ``only_fg`` (foreground
on black), ``no_fg`` (the foreground blacked out), and more. A 1000-class model is
scored by its argmax over all 1000 outputs mapped to the nine classes
(:data:`~analysis.benchmarks.classes.IN9_INDICES`); an output outside the nine counts as
wrong, and every accuracy divides by the number of *images* of the variation (not by
batches). The **BG-gap** is ``mixed_same - mixed_rand``: how much a correct foreground
is helped by a background of its own class.

The released layout is ``ROOT/<variation>/val/<NN_class>/...`` (``00_dog`` ...
``08_fish``); ``ROOT/<variation>/<NN_class>`` is accepted too. Images are 224 x 224 and
go to the classifier as they are; the classifier normalises them with ImageNet's
statistics (not IN-9's own), as a model trained on ImageNet expects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analysis.benchmarks.classes import IN9_CLASSES, IN9_INDICES, index_map
from analysis.benchmarks.inference import predict_dataset
from analysis.benchmarks.results import BenchmarkResult
from analysis.benchmarks.views import ImageView
from causalkit.datasets.image_folder import ImageFolderDataset, list_image_folder
from causalkit.errors import DataError

VARIATIONS: tuple[str, ...] = ("original", "mixed_same", "mixed_rand", "only_fg", "no_fg",
                               "mixed_next", "only_bg_b", "only_bg_t")


def variation_folder(root: str | os.PathLike, variation: str) -> Path | None:
    """The class-folder root of ``variation`` under ``root``, or None when absent."""
    base = Path(root) / variation
    if (base / "val").is_dir():
        return base / "val"
    return base if base.is_dir() else None


def _check_classes(folder: Path, classes: tuple[str, ...]) -> None:
    expected = [f"{i:02d}" for i in range(9)]
    got = [c.split("_", 1)[0] for c in classes]
    if len(classes) != 9 or got != expected:
        raise DataError(f"{folder} should hold the nine IN-9 class folders 00_dog ... "
                        f"08_fish, found {list(classes)[:10]}; pass the IN-9 release folder")


def evaluate(model: nn.Module, root: str | os.PathLike, *, variations: tuple[str, ...] | None
             = None, batch_size: int = 64, device: Any = None, amp: bool = False,
             progress: bool = True, num_workers: int = 0,
             on_corrupt: str = "raise") -> BenchmarkResult:
    """Accuracy on every IN-9 variation present under ``root``, and the BG-gap."""
    wanted = variations or VARIATIONS
    folders = {v: variation_folder(root, v) for v in wanted}
    missing = [v for v, f in folders.items() if f is None]
    if variations is not None and missing:
        raise DataError(f"IN-9 folder {root} lacks the variation(s) {missing}; download them "
                        "or leave them out")
    folders = {v: f for v, f in folders.items() if f is not None}
    if not folders:
        raise DataError(f"{root} holds none of the IN-9 variations ({', '.join(VARIATIONS)}); "
                        "pass the folder that holds original/, mixed_same/, mixed_rand/ ...")
    table = torch.from_numpy(index_map(IN9_INDICES, IN9_CLASSES))

    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pred": table[logits.argmax(1).cpu()]}

    metrics: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {}
    n = skipped = 0
    seconds = 0.0
    for variation, folder in folders.items():
        images = list_image_folder(folder)
        _check_classes(folder, images.classes)
        data = ImageFolderDataset(images, transform=ImageView(resize=224, crop=224),
                                  on_corrupt=on_corrupt)  # type: ignore[arg-type]
        preds = predict_dataset(model, data, reduce, batch_size=batch_size, device=device,
                                amp=amp, progress=progress, num_workers=num_workers,
                                desc=f"in9 {variation}")
        n, skipped, seconds = n + preds.n, skipped + preds.skipped, seconds + preds.seconds
        for head, out in preds.outputs.items():
            correct = (out["pred"] == preds.labels).sum().item()
            metrics.setdefault(head, {})[variation] = correct / preds.n
            per_class = {}
            for k, name in enumerate(IN9_CLASSES):
                mask = preds.labels == k
                if mask.any():
                    per_class[name] = (out["pred"][mask] == k).float().mean().item()
            details.setdefault(head, {})[variation] = {"n": preds.n, "correct": int(correct),
                                                       "per_class": per_class}
    for values in metrics.values():
        if "mixed_same" in values and "mixed_rand" in values:
            values["bg_gap"] = values["mixed_same"] - values["mixed_rand"]
    return BenchmarkResult("in9", metrics, n, skipped, details, seconds, str(root))


__all__ = ["VARIATIONS", "evaluate", "variation_folder"]
