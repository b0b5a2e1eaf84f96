"""ResNets with torchvision's parameter names, and multi-head wrappers.

torchvision does not import in every environment causalkit runs in, yet its ImageNet
checkpoints are the usual starting point. :class:`ResNet` re-implements the ResNet v1.5
family (stride in the 3x3 convolution of bottlenecks) with exactly torchvision's module
names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc`` ...), so
a torchvision ``state_dict`` saved to a file loads with a strict key check
(:func:`load_torchvision_weights`), no torchvision needed. The layouts of ResNet-18/50/152
are checked name by name and shape by shape against torchvision's in the tests, with
torchvision's parameter counts (11,689,512 / 25,557,032 / 60,192,808).

Fine-tuning starts a multi-head model from such a file (:func:`init_from_torchvision`):
the backbone strictly, and the checkpoint's ``fc`` either copied into every head (when
the class counts match) or left out for fresh heads (``fc="new"``). A file may hold the
state dict itself, or a training checkpoint with it under ``state_dict`` (the GenInt and
torchvision reference scripts' ``checkpoint.pth.tar``), whose keys may carry the
``module.`` prefix of ``DataParallel``/``DistributedDataParallel``.

``small_input=True`` swaps the ImageNet stem (7x7 stride-2 conv + max-pool) for a 3x3
stride-1 conv, the usual choice for 32x32 images; such a model cannot take the stem of
an ImageNet checkpoint (the loader says so).

:class:`~robust_training.heads.MultiHead` puts named linear heads on any backbone that
returns features, with the interface of :class:`~robust_training.models.MultiHeadCNN`
(``forward`` returns a dict of logits, ``logits(x, head)``), so every registered
objective can train it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from causalkit.errors import CausalKitError, DataError, WeightsMismatchError
from causalkit.io import load_torch
from causalkit.weights import StateDictMismatch, check_state_dict
from robust_training.heads import MultiHead

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "build_resnet", "RESNETS",
           "load_torchvision_weights", "read_torchvision_state", "init_from_torchvision",
           "PRETRAINED_FC", "MultiHead", "multi_head_resnet"]

#: What :func:`init_from_torchvision` does with a checkpoint's ``fc``: copy it into every
#: head (``"keep"``; the class counts must match) or leave the heads new (``"new"``).
PRETRAINED_FC = ("keep", "new")


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, v1.5), 1x1 expand, residual (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


class ResNet(nn.Module):
    """A ResNet with torchvision's module names.

    Parameters
    ----------
    block
        :class:`BasicBlock` or :class:`Bottleneck`.
    layers
        Blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
    num_classes
        Outputs of ``fc``; 0 makes ``fc`` the identity (a feature extractor).
    small_input
        3x3 stride-1 stem without max-pool, for 32x32 images.
    width
        Channels of the first stage (64 in torchvision); smaller widths make quick
        CPU models.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int],
                 num_classes: int = 1000, *, small_input: bool = False, width: int = 64
                 ) -> None:
        super().__init__()
        self.small_input = small_input
        if small_input:
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        self.inplanes = width
        self.layer1 = self._stage(block, width, layers[0], 1)
        self.layer2 = self._stage(block, 2 * width, layers[1], 2)
        self.layer3 = self._stage(block, 4 * width, layers[2], 2)
        self.layer4 = self._stage(block, 8 * width, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 8 * width * block.expansion
        self.fc = nn.Linear(self.feature_dim, num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _stage(self, block, width: int, n: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != width * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, width * block.expansion, 1, stride,
                                           bias=False),
                                 nn.BatchNorm2d(width * block.expansion))
        blocks = [block(self.inplanes, width, stride, down)]
        self.inplanes = width * block.expansion
        blocks += [block(self.inplanes, width) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, feature_dim)`` (before ``fc``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


#: name -> (block, blocks per stage)
RESNETS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
           "resnet50": (Bottleneck, (3, 4, 6, 3)), "resnet101": (Bottleneck, (3, 4, 23, 3)),
           "resnet152": (Bottleneck, (3, 8, 36, 3))}


def build_resnet(arch: str = "resnet18", num_classes: int = 1000, *, seed: int = 0,
                 small_input: bool = False, width: int = 64) -> ResNet:
    """A seeded ResNet of the family (``resnet18`` ... ``resnet152``)."""
    if arch not in RESNETS:
        raise CausalKitError(f"unknown ResNet {arch!r}; choose one of {sorted(RESNETS)}")
    block, layers = RESNETS[arch]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNet(block, layers, num_classes, small_input=small_input, width=width)


def _resnet_hint(report: StateDictMismatch) -> str:
    shapes = [k for k, _, _ in report.shapes]
    hints = ["Load a torchvision ResNet state dict of the model's architecture."]
    if any(k.startswith("conv1.") for k in shapes):
        hints.append("A small_input model has a 3x3 conv1: build it with small_input=False "
                     "to load ImageNet weights.")
    if any(k.startswith("fc.") for k in shapes):
        hints.append("Pass skip_fc=True to keep a new classifier.")
    return " ".join(hints)


def read_torchvision_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ResNet state dict in ``path`` (weights only): the file's dict itself, or the
    one under ``state_dict`` of a training checkpoint, without a ``module.`` prefix that
    every key carries (``DataParallel``)."""
    state = load_torch(path, what="ResNet weights file")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"],
                                                                        dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise DataError(f"{path} does not hold a ResNet state dict (names to tensors); pass "
                        "a torchvision ResNet state-dict file")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_torchvision_weights(model: ResNet, path: str | os.PathLike, *,
                             skip_fc: bool = False) -> ResNet:
    """Load a torchvision ResNet ``state_dict`` file into ``model`` (strict, weights only).

    ``skip_fc`` keeps the model's own ``fc`` (e.g. 10 classes instead of 1000).
    """
    state = read_torchvision_state(path)
    own = model.state_dict()
    if skip_fc:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        state.update({k: v for k, v in own.items() if k.startswith("fc.")})
    check_state_dict(own, state, source=str(path), hint=_resnet_hint)
    model.load_state_dict(state, strict=True)
    return model


def multi_head_resnet(arch: str = "resnet18", heads: Sequence[str] = ("label",),
                      n_classes: int = 10, *, seed: int = 0, small_input: bool = True,
                      width: int = 64) -> MultiHead:
    """A ResNet backbone (``fc`` removed) with named heads."""
    backbone = build_resnet(arch, 0, seed=seed, small_input=small_input, width=width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return MultiHead(backbone, backbone.feature_dim, heads, n_classes)


def init_from_torchvision(model: MultiHead, path: str | os.PathLike, *, fc: str = "keep"
                          ) -> MultiHead:
    """Start the multi-head ResNet ``model`` from a torchvision ResNet checkpoint.

    The backbone (``model.backbone``, a :class:`ResNet` without ``fc``) loads strictly:
    every key and shape of the file but ``fc`` must match. With ``fc="keep"`` the
    file's ``fc`` becomes every head's weights, which needs as many classes in the
    heads as in the file; ``fc="new"`` keeps the heads as initialised (fine-tuning to
    another label set).

    Raises
    ------
    CausalKitError
        ``model`` has no ResNet backbone, or ``fc`` is unknown.
    WeightsMismatchError
        The backbone's keys or shapes differ from the file's (another architecture or
        width, a 32x32 stem), or ``fc="keep"`` meets another class count.
    """
    if fc not in PRETRAINED_FC:
        raise CausalKitError(f"unknown pretrained fc handling {fc!r}; choose one of "
                             f"{list(PRETRAINED_FC)}")
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, ResNet) or not isinstance(backbone.fc, nn.Identity):
        raise CausalKitError("torchvision weights initialise a multi-head ResNet (a ResNet "
                             "--model); this model has no ResNet backbone")
    state = read_torchvision_state(path)
    head_state = {k: v for k, v in state.items() if k.startswith("fc.")}
    body = {k: v for k, v in state.items() if not k.startswith("fc.")}
    check_state_dict(backbone.state_dict(), body, source=str(path), hint=_resnet_hint)
    if fc == "keep":
        n_classes = {layer.out_features for layer in model.heads.values()}.pop()
        want = {"fc.weight": (n_classes, backbone.feature_dim), "fc.bias": (n_classes,)}
        got = {k: tuple(v.shape) for k, v in head_state.items()}
        if got != want:
            found = (f"a {got['fc.weight'][0]}-class fc" if "fc.weight" in got
                     else "no fc of the expected layout")
            raise WeightsMismatchError(
                f"weights in {path} hold {found}, the model's heads have {n_classes} "
                "classes; pass --pretrained-fc new (FitConfig.pretrained_fc='new') to "
                "train new heads on the pretrained backbone")
    backbone.load_state_dict(body, strict=True)
    if fc == "keep":
        with torch.no_grad():
            for layer in model.heads.values():
                layer.weight.copy_(head_state["fc.weight"])
                layer.bias.copy_(head_state["fc.bias"])
    return model
