"""Training a classifier on images in folders: what ``causalkit train --data imagefolder:DIR``
runs.

The MNIST variants come as in-memory splits with their own test and OOD sets; real data
(ImageNet, or any class-per-folder tree) comes from disk. :func:`train_on_folders` takes
a data spec (``imagefolder:DIR`` or ``webdataset:PATTERN``, :mod:`robust_training.imagenet_data`),
adds the generated streams a method needs from folders on disk (``int``/``obs`` written by
``causalkit generate`` or the GenInt pre-generation, ``transfer`` by the transfer stage,
``cf`` by the counterfactual-ImageNet writer), trains with :func:`robust_training.engine.fit`
(DDP, AMP, resume) and scores top-1 / top-5 on a validation folder, after the run and,
optionally, after every epoch (:func:`val_accuracy`).

The class list is the training folder's: a validation folder is read with the same
classes in the same order, so a subset of ImageNet trains and scores on that subset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from causalkit.errors import CausalKitError, DataError

__all__ = ["FOLDER_SPECS", "spec_prefix", "class_names", "folder_streams", "val_accuracy",
           "train_on_folders"]

#: the data specs of images on disk (see :func:`robust_training.imagenet_data.real_source`)
FOLDER_SPECS = ("imagefolder", "webdataset")


def spec_prefix(data: str) -> str | None:
    """``"imagefolder"`` / ``"webdataset"`` for a disk spec, ``None`` for an MNIST variant
    name; an unknown prefix or an empty path is refused."""
    if ":" not in data:
        return None
    prefix, _, path = data.partition(":")
    if prefix not in FOLDER_SPECS:
        raise CausalKitError(f"unknown --data source {prefix + ':'!r}; use an MNIST variant "
                             "name, imagefolder:DIR or webdataset:PATTERN")
    if not path:
        raise CausalKitError(f"--data {data} names no path; use {prefix}:PATH")
    return prefix


def class_names(root: str | Path) -> tuple[str, ...]:
    """The class folders of an ImageFolder, in the order that gives their labels; one
    class is refused (a classifier needs two)."""
    from causalkit.datasets.image_folder import list_image_folder

    root = Path(root)
    if not root.is_dir():
        list_image_folder(root)  # raises its one-line error (missing, a file)
    names = tuple(sorted(p.name for p in root.iterdir()
                         if p.is_dir() and not p.name.startswith(".")))
    if not names:
        list_image_folder(root)  # raises: no class subfolders
    if len(names) == 1:
        raise CausalKitError(f"image folder {root} holds one class ({names[0]}); a "
                             "classifier needs two or more class folders")
    return names


def folder_streams(streams: Sequence[str], *, int_data=None, transfer_data=None,
                   cf_data=None, gen_batch_size: int, transfer_batch_size: int,
                   pooled: bool = False) -> list[Any]:
    """The :class:`~robust_training.imagenet_data.FolderStream` of every generated kind in
    a method's ``streams``, read from the folder its option names."""
    from robust_training.imagenet_data import FolderStream

    folders = {"int": ("--int-data", int_data), "obs": ("--int-data", int_data),
               "transfer": ("--transfer-data", transfer_data), "cf": ("--cf-data", cf_data)}
    if "real" not in streams:
        raise CausalKitError(f"method streams {list(streams)} lack the real stream that "
                             "--data gives")
    out = []
    for kind in streams:
        if kind == "real":
            continue
        if kind not in folders or pooled:
            raise CausalKitError(f"method streams {list(streams)} are not available on disk "
                                 "data; use erm, mixup, genint, gan-aug, genint-transfer, "
                                 "irm or cgn")
        option, root = folders[kind]
        if root is None:
            raise CausalKitError(f"the {kind} stream on disk data needs {option} DIR")
        bs = transfer_batch_size if kind == "transfer" else gen_batch_size
        out.append(FolderStream.counterfactual(root, bs) if kind == "cf"
                   else FolderStream.generated(root, bs, kind=kind))
    return out


@torch.no_grad()
def val_accuracy(model: nn.Module, spec: str, *, batch_size: int = 64, device: Any = None,
                 size: int | None = None, classes: Sequence[str] | None = None,
                 head: str | None = "label", num_workers: int = 0) -> dict[str, float]:
    """Top-1 / top-5 accuracy of ``model`` (``[-1, 1]`` images, a dict of logits per head)
    on a validation folder, with ImageNet's val view (resize 256, centre crop 224; both
    scaled to ``size`` for a classifier trained at another resolution). ``head`` picks
    the head (``None``: the mean of all heads, for a model with ``logits``)."""
    from robust_training import imagenet_data

    if ":" not in spec or spec.partition(":")[0] not in FOLDER_SPECS:
        raise CausalKitError(f"validation data {spec!r} is not imagefolder:DIR or "
                             "webdataset:PATTERN")
    crop = size or 224
    resize = round(crop * 256 / 224)
    dev = next(model.parameters()).device if device is None else torch.device(device)
    model = model.to(dev).eval()
    batches = imagenet_data.val_batches(spec, batch_size, resize=resize, crop=crop,
                                        classes=list(classes) if classes else None,
                                        num_workers=num_workers)
    top1 = top5 = n = 0
    for x, y in batches:
        y = torch.as_tensor(y)
        y = (y[:, 0] if y.dim() == 2 else y).to(dev)
        x = x.to(dev) * 2.0 - 1.0
        logits = (model.logits(x, head) if hasattr(model, "logits") else model(x)[head]).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        top1 += int((top[:, 0] == y).sum())
        top5 += int((top == y[:, None]).any(1).sum())
        n += len(y)
    if n == 0:
        raise DataError(f"validation data {spec} holds no images; pass an ImageNet val "
                        "ImageFolder")
    return {"top1": top1 / n, "top5": top5 / n, "n": n}


def train_on_folders(data: str, config: Any, streams: Sequence[str], out: str | Path, *,
                     pooled: bool = False, val: str | None = None,
                     val_each_epoch: bool = False, size: int = 224, num_workers: int = 0,
                     epochs: float | None = None, int_data=None, transfer_data=None,
                     cf_data=None, batch_size: int = 64, gen_batch_size: int = 64,
                     transfer_batch_size: int = 32, device: str | None = None,
                     progress: bool = True) -> dict[str, Any] | None:
    """Train ``config`` (a :class:`~robust_training.engine.FitConfig`) on the disk data
    ``data`` plus the generated ``streams`` from their folders, into ``out``.

    Every input is checked before training (the folders, the validation spec, the sizes).
    Returns the report (steps, classes, streams, ``val_top1``/``val_top5`` when ``val``
    is given), or ``None`` on a DDP rank other than 0.
    """
    from robust_training.engine import dist_info, fit
    from robust_training.imagenet_data import EvenBatches, real_source
    from robust_training.resnet import RESNETS
    from robust_training.streams import STREAM_IDS

    prefix = spec_prefix(data)
    if prefix is None:
        raise CausalKitError(f"--data {data!r} is not imagefolder:DIR or webdataset:PATTERN")
    for name, value, low in (("--size", size, 8), ("--num-workers", num_workers, 0)):
        if value < low:
            raise CausalKitError(f"{name} must be >= {low}, got {value}")
    if epochs is not None and not epochs > 0:
        raise CausalKitError(f"--epochs must be positive, got {epochs}")
    if val_each_epoch and val is None:
        raise CausalKitError("--val-each-epoch needs --val imagefolder:DIR")
    if val is not None and val.partition(":")[0] not in FOLDER_SPECS:
        raise CausalKitError(f"--val {val!r} is not imagefolder:DIR or webdataset:PATTERN")
    classes = class_names(data.partition(":")[2]) if prefix == "imagefolder" else None
    real = real_source(data, batch_size=batch_size, steps=config.steps, size=size,
                       seed=config.seed, num_workers=num_workers, classes=classes)
    labels = real.streams[0].labels[:, 0]
    n_classes = len(classes) if classes is not None else int(labels.max()) + 1
    if n_classes < 2:
        raise CausalKitError(f"{data} holds one class; a classifier needs two or more")
    extra = folder_streams(streams, int_data=int_data, transfer_data=transfer_data,
                           cf_data=cf_data, gen_batch_size=gen_batch_size,
                           transfer_batch_size=transfer_batch_size, pooled=pooled)

    def score(model: nn.Module) -> dict[str, float]:
        res = val_accuracy(model, val, batch_size=batch_size, size=size, classes=classes,
                           head=getattr(model, "predict_head", None) or "label",
                           num_workers=num_workers)
        return {"val_top1": res["top1"], "val_top5": res["top5"], "val_n": res["n"]}

    if val is not None:  # a bad spec or folder fails here, before training
        from robust_training.imagenet_data import val_batches

        next(iter(val_batches(val, 1, classes=classes)), None)
    stem = "imagenet" if config.model in RESNETS else "small"
    config = dataclasses.replace(config, n_classes=n_classes, stem=stem)
    all_streams = [*real.streams, *extra]
    if epochs is not None:
        config = dataclasses.replace(config,
                                     steps=max(1, round(epochs * real.steps_per_epoch())))
    batches = (EvenBatches(all_streams, steps=config.steps, size=size, seed=config.seed,
                           num_workers=num_workers)
               if extra or epochs is not None else real)
    on_epoch = (lambda epoch, model: score(model)) if val_each_epoch else None
    net, info = fit(batches, config, out, device=device, progress=progress,
                    on_epoch=on_epoch)
    if dist_info()[0] != 0:
        return None
    result = {"objective": config.objective, "steps": info["steps"], "data": data,
              "n_classes": n_classes, "size": size, "model": config.model,
              "streams": {s.kind: {"n": len(s), "batch_size": s.batch_size,
                                   "id": STREAM_IDS[s.kind]} for s in all_streams},
              "model_dir": str(out)}
    if val is not None:
        result.update(score(net), val=val)
    return result
