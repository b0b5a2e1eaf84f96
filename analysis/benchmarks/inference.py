"""Batched inference of a classifier over an image dataset: the loop every evaluator runs.

A *classifier* here is any ``nn.Module`` that maps float RGB images in ``[0, 1]`` of shape
``(B, 3, H, W)`` to ImageNet logits ``(B, 1000)``; normalisation is the model's business
(:class:`~analysis.benchmarks.models.ImageNetClassifier` wraps a network that expects
normalised inputs). A multi-head classifier (a CGN classifier with shape, texture and
background heads) returns a dict of logits; the loop then scores every head and the
average of the heads' logits (``"averaged"``), so one pass gives all of them.

An evaluator passes a ``reduce`` function that turns a batch of logits into the small
per-image numbers it needs (the argmax over IN-9 classes, the top-5 indices, the
16-category probabilities), so a 50,000-image benchmark never keeps 50,000 x 1000
floats. Images are decoded in DataLoader workers; on CUDA the loop pins memory, copies
asynchronously and, with ``amp=True``, runs the forward pass under float16 autocast
(bfloat16 on CPU). Corrupt files, when the dataset skips them, are counted in
:attr:`Predictions.skipped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from causalkit.datasets.image_folder import skip_none_collate
from causalkit.devices import resolve_device
from causalkit.errors import CausalKitError
from causalkit.progress import progress as progress_bar

AVERAGED = "averaged"
"""The name under which a multi-head classifier's mean logits are scored."""

Reduce = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


@dataclass
class Predictions:
    """What ``reduce`` returned for every image, per head, in dataset order."""

    outputs: dict[str, dict[str, torch.Tensor]]
    labels: torch.Tensor
    indices: torch.Tensor
    skipped: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def heads(self) -> list[str]:
        return list(self.outputs)

    @property
    def n(self) -> int:
        return int(self.labels.numel())


def topk_reduce(k: int = 5) -> Reduce:
    """``reduce`` keeping the top-``k`` output indices of each image."""

    def reduce(logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"topk": logits.topk(min(k, logits.shape[1]), dim=1).indices}

    return reduce


def _head_logits(out: Any) -> dict[str, torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return {"logits": out}
    if isinstance(out, Mapping) and out and all(isinstance(v, torch.Tensor)
                                                for v in out.values()):
        heads = {str(k): v for k, v in out.items()}
        if len(heads) > 1:
            heads[AVERAGED] = torch.stack([v.float() for v in heads.values()]).mean(0)
        return heads
    raise CausalKitError(f"the classifier returned {type(out).__name__}; it must return a "
                         "logits tensor (B, 1000) or a dict of them, one per head")


def predict_dataset(model: nn.Module, dataset: Dataset, reduce: Reduce, *,
                    batch_size: int = 64, device: Any = None, amp: bool = False,
                    num_workers: int = 0, progress: bool = True,
                    desc: str = "evaluate") -> Predictions:
    """Run ``model`` over ``dataset`` (items ``(image, label)`` or ``(image, label, index)``
    with ``image`` a float ``3 x H x W`` tensor in ``[0, 1]``) and collect ``reduce``'s
    outputs per head, on the CPU, in dataset order."""
    if batch_size < 1:
        raise CausalKitError(f"batch_size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    cuda = device.type == "cuda"
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=skip_none_collate, pin_memory=cuda,
                        persistent_workers=False)
    model = model.to(device).eval()
    amp_dtype = torch.float16 if cuda else torch.bfloat16
    outputs: dict[str, dict[str, list[torch.Tensor]]] = {}
    labels: list[torch.Tensor] = []
    indices: list[torch.Tensor] = []
    skipped, seen = 0, 0
    wait = compute = 0.0
    start = time.perf_counter()
    bar = progress_bar(total=len(dataset), enabled=progress, desc=desc, unit="img")
    try:
        tick = time.perf_counter()
        for batch, n_skipped in loader:
            skipped += n_skipped
            got = time.perf_counter()
            wait += got - tick
            if batch is None:
                bar.update(n_skipped)
                tick = time.perf_counter()
                continue
            images, target = batch[0], batch[1]
            index = batch[2] if len(batch) > 2 else torch.arange(seen, seen + len(target))
            seen += len(target)
            images = images.to(device, non_blocking=cuda)
            with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype,
                                                         enabled=amp):
                heads = _head_logits(model(images))
            for head, logits in heads.items():
                store = outputs.setdefault(head, {})
                for key, value in reduce(logits.float()).items():
                    store.setdefault(key, []).append(value.detach().cpu())
            labels.append(torch.as_tensor(target).cpu())
            indices.append(torch.as_tensor(index).cpu())
            bar.update(len(target) + n_skipped)
            tick = time.perf_counter()
            compute += tick - got
    finally:
        bar.close()
    if not labels:
        raise CausalKitError("no image could be read (every file was skipped as corrupt); "
                             "check the data folder")
    merged = {h: {k: torch.cat(v) for k, v in store.items()} for h, store in outputs.items()}
    total = time.perf_counter() - start
    return Predictions(merged, torch.cat(labels), torch.cat(indices), skipped, total,
                       {"data_wait_s": wait, "compute_s": compute})


__all__ = ["AVERAGED", "Predictions", "predict_dataset", "topk_reduce"]
