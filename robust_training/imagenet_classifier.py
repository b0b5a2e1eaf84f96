"""The CGN paper's ImageNet classifier: one ResNet backbone, shape, texture and background heads.

Sauer & Geiger train a ResNet-50 with three linear heads (the official
``InvariantEnsemble``) on counterfactual images -- each head on its own mechanism's label
-- and on real ImageNet, where the mean of the heads' logits is trained on the class. At
test time the heads' logits are averaged, or one head is read alone (the shape head is
the one that should be shape-biased).

:class:`ImageNetHeads` is that network for :func:`robust_training.engine.fit`: it takes
the engine's images (float in ``[-1, 1]``) and normalises them with the ImageNet
statistics inside, so that a caller never normalises twice (one of the official code's
bugs normalised IN-9 with other statistics than training). :meth:`ImageNetHeads.view`
gives the benchmarks' classifier contract (:mod:`analysis.benchmarks`: images in
``[0, 1]`` to 1000 logits) for one head or for the mean of all of them.

A backbone starts from random weights or from a torchvision ResNet state-dict file
(strict keys, the ``fc`` layer left out: the heads are new).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write_text, read_json, save_torch
from causalkit.weights import load_weights
from robust_training.heads import MultiHead
from robust_training.models import CGN_HEADS
from robust_training.resnet import build_resnet, load_torchvision_weights

__all__ = ["ImageNetHeads", "HeadView", "build_imagenet_classifier",
           "save_imagenet_classifier", "load_imagenet_classifier", "IMAGENET_MEAN",
           "IMAGENET_STD", "VIEWS"]

#: ImageNet channel statistics of images in [0, 1] (torchvision's)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: what a classifier can be read as: one head, or the mean of the heads' logits
VIEWS = (*CGN_HEADS, "mean")


class ImageNetHeads(MultiHead):
    """A ResNet with named heads on ImageNet-sized images in ``[-1, 1]``.

    ``forward`` returns ``{head: logits}``, ``logits(x, None)`` the mean of the heads,
    as every :class:`~robust_training.heads.MultiHead`; the input is mapped to ``[0, 1]``
    and normalised with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD` first.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, heads: Sequence[str],
                 n_classes: int) -> None:
        super().__init__(backbone, feature_dim, heads, n_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every head for images ``x`` in ``[-1, 1]``, ``(B, 3, H, W)``."""
        z = self.backbone(((x + 1) / 2 - self.mean) / self.std)
        return {h: layer(z) for h, layer in self.heads.items()}

    def view(self, head: str = "mean") -> HeadView:
        """The classifier of one head (or ``"mean"``) on images in ``[0, 1]``."""
        return HeadView(self, head)


class HeadView(nn.Module):
    """One reading of an :class:`ImageNetHeads` on images in ``[0, 1]``, the benchmarks'
    contract: the logits of ``head``, of ``"mean"`` (the mean of all heads' logits), or
    with ``"all"`` the dict of every head's logits (which :mod:`analysis.benchmarks`
    scores head by head and averaged, in one pass)."""

    def __init__(self, model: ImageNetHeads, head: str = "mean") -> None:
        super().__init__()
        if head not in ("mean", "all") and head not in model.head_names:
            raise CausalKitError(f"no head {head!r}; choose one of "
                                 f"{[*model.head_names, 'mean', 'all']}")
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Logits ``(B, n_classes)`` (a dict of them for ``"all"``) of images ``x`` in
        ``[0, 1]``."""
        if self.head == "all":
            return self.model(x * 2 - 1)
        return self.model.logits(x * 2 - 1, None if self.head == "mean" else self.head)


def build_imagenet_classifier(arch: str = "resnet50", *, heads: Sequence[str] = CGN_HEADS,
                              n_classes: int = 1000, width: int = 64, seed: int = 0,
                              pretrained: str | os.PathLike | None = None) -> ImageNetHeads:
    """A seeded multi-head ResNet with the ImageNet stem (``pretrained``: a torchvision
    state-dict file for the backbone, loaded strictly)."""
    backbone = build_resnet(arch, 1000 if pretrained else 0, seed=seed, width=width)
    if pretrained is not None:
        if width != 64:
            raise CausalKitError(f"pretrained torchvision weights need width 64, got {width}")
        load_torchvision_weights(backbone, pretrained)
        backbone.fc = nn.Identity()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return ImageNetHeads(backbone, backbone.feature_dim, tuple(heads), n_classes)


def save_imagenet_classifier(model: ImageNetHeads, folder: str | os.PathLike,
                             meta: dict[str, Any]) -> Path:
    """``classifier.pt`` (state dict) and ``classifier.json`` (how to rebuild it)."""
    folder = Path(folder)
    save_torch(folder / "classifier.pt",
               {k: v.detach().cpu() for k, v in model.state_dict().items()})
    atomic_write_text(folder / "classifier.json", json.dumps(meta, indent=2) + "\n")
    return folder


def load_imagenet_classifier(folder: str | os.PathLike, device: torch.device | str = "cpu"
                             ) -> ImageNetHeads:
    """Rebuild a classifier saved by :func:`save_imagenet_classifier` (strict keys)."""
    folder = Path(folder)
    if not (folder / "classifier.json").is_file():
        raise DataError(f"{folder} holds no classifier.json; train one with `causalkit "
                        "reproduce cgn-imagenet --stage train-classifier`")
    meta = read_json(folder / "classifier.json", what="classifier description",
                     keys=("arch", "heads", "n_classes", "width"),
                     fix="retrain into a new --out folder")
    try:
        model = build_imagenet_classifier(meta["arch"], heads=tuple(meta["heads"]),
                                          n_classes=int(meta["n_classes"]),
                                          width=int(meta["width"]))
    except (CausalKitError, TypeError, ValueError) as exc:
        raise DataError(f"{folder / 'classifier.json'} is malformed ({exc}); retrain") from None
    load_weights(model, folder / "classifier.pt", what="the classifier of classifier.json",
                 hint="Keep classifier.pt with the classifier.json it was written with.")
    return model.to(device).eval()
