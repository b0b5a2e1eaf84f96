"""Cue-conflict shape bias (Geirhos et al., ICLR 2019), by model-vs-human's protocol.

Each cue-conflict image has the *shape* of one of 16 categories and the *texture* of
another, style-transferred onto it; its file name says both
(``cat1-airplane1.png``: a cat's shape with an airplane's texture), and it lies in the
folder of its shape category. The protocol:

1. The classifier's 1000 softmax probabilities are averaged over the ImageNet indices of
   each of the 16 categories (:data:`~analysis.benchmarks.classes.SHAPE_BIAS_CATEGORIES`),
   and the decision is the category with the highest mean.
2. Images whose shape and texture category agree are dropped.
3. A decision is a *shape* decision when it names the shape category, a *texture*
   decision when it names the texture category, and neither otherwise.
   ``shape_bias = shape / (shape + texture)``; the same ratio per shape category gives
   the per-category points of the paper's plot.

ImageNet CNNs are texture-biased: model-vs-human reports shape biases of roughly
0.2-0.3 for standard ResNet-50s and other supervised CNNs, humans about 0.96.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analysis.benchmarks.classes import SHAPE_BIAS_CATEGORIES
from analysis.benchmarks.inference import predict_dataset
from analysis.benchmarks.results import BenchmarkResult
from analysis.benchmarks.views import ImageView
from causalkit.datasets.image_folder import ImageFolderDataset, list_image_folder
from causalkit.errors import DataError

CATEGORIES: tuple[str, ...] = tuple(sorted(SHAPE_BIAS_CATEGORIES))
_NAME = re.compile(r"^([a-z]+)\d+-([a-z]+)\d+$")


def parse_cue_conflict_name(path: str | os.PathLike) -> tuple[str, str]:
    """``(shape, texture)`` categories from a cue-conflict file name."""
    stem = Path(path).stem
    match = _NAME.match(stem)
    if not match or match.group(1) not in CATEGORIES or match.group(2) not in CATEGORIES:
        raise DataError(f"{path} is not a cue-conflict file name (SHAPEn-TEXTUREm.png with "
                        "two of the 16 categories); use the released stimuli as they are")
    return match.group(1), match.group(2)


def category_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``(B, 16)`` mean softmax probability over each category's ImageNet indices."""
    probs = logits.float().softmax(dim=1)
    return torch.stack([probs[:, list(SHAPE_BIAS_CATEGORIES[c])].mean(1) for c in CATEGORIES],
                       dim=1)


def shape_bias_from_decisions(decisions: list[str], shapes: list[str],
                              textures: list[str]) -> dict[str, Any]:
    """Counts and shape bias, overall and per shape category, of a list of decisions."""
    per: dict[str, dict[str, int]] = {c: {"shape": 0, "texture": 0, "other": 0, "n": 0}
                                      for c in CATEGORIES}
    dropped = 0
    for decision, shape, texture in zip(decisions, shapes, textures, strict=True):
        if shape == texture:
            dropped += 1
            continue
        kind = "shape" if decision == shape else "texture" if decision == texture else "other"
        per[shape][kind] += 1
        per[shape]["n"] += 1
    shape_n = sum(v["shape"] for v in per.values())
    texture_n = sum(v["texture"] for v in per.values())
    n = sum(v["n"] for v in per.values())

    def ratio(a: int, b: int) -> float:
        return a / (a + b) if a + b else float("nan")

    return {
        "shape_bias": ratio(shape_n, texture_n),
        "shape_decisions": shape_n, "texture_decisions": texture_n,
        "other_decisions": n - shape_n - texture_n, "n": n, "dropped_same_class": dropped,
        "shape_match": shape_n / n if n else float("nan"),
        "texture_match": texture_n / n if n else float("nan"),
        "per_category": {c: {**v, "shape_bias": ratio(v["shape"], v["texture"])}
                         for c, v in per.items() if v["n"]},
    }


def evaluate(model: nn.Module, root: str | os.PathLike, *, batch_size: int = 64,
             device: Any = None, amp: bool = False, progress: bool = True,
             num_workers: int = 0, on_corrupt: str = "raise") -> BenchmarkResult:
    """Shape bias of ``model`` on the cue-conflict images under ``root``
    (one folder per shape category, model-vs-human's ``cue-conflict`` layout)."""
    images = list_image_folder(root, allow_empty_classes=True)
    unknown = [c for c in images.classes if c not in CATEGORIES]
    if unknown:
        raise DataError(f"{root} has folders {unknown[:5]} that are not the 16 cue-conflict "
                        f"categories ({', '.join(CATEGORIES)}); pass the cue-conflict folder")
    names = [parse_cue_conflict_name(p) for p in images.paths]
    data = ImageFolderDataset(images, transform=ImageView(resize=224, crop=224),
                              on_corrupt=on_corrupt, return_index=True)  # type: ignore[arg-type]

    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"decision": category_probabilities(logits).argmax(1)}

    preds = predict_dataset(model, data, reduce, batch_size=batch_size, device=device, amp=amp,
                            progress=progress, num_workers=num_workers, desc="shape-bias")
    shapes = [names[i][0] for i in preds.indices.tolist()]
    textures = [names[i][1] for i in preds.indices.tolist()]
    metrics, details = {}, {}
    for head, out in preds.outputs.items():
        decisions = [CATEGORIES[i] for i in out["decision"].tolist()]
        summary = shape_bias_from_decisions(decisions, shapes, textures)
        metrics[head] = {"shape_bias": summary["shape_bias"],
                         "shape_match": summary["shape_match"],
                         "texture_match": summary["texture_match"]}
        details[head] = summary
    return BenchmarkResult("shape-bias", metrics, preds.n, preds.skipped, details,
                           preds.seconds, str(root))


__all__ = ["CATEGORIES", "category_probabilities", "evaluate", "parse_cue_conflict_name",
           "shape_bias_from_decisions"]
