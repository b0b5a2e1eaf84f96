"""Classifiers for the 32 x 32 MNIST variants.

:class:`MultiHeadCNN` is the paper's MNIST classifier CNN (BN on the input, four
convolutions, global average pooling to 64 features) with one linear head per label.
A single head (``("label",)``) is the plain classifier; the heads
``("shape", "texture", "background")`` make the CGN's invariant classifier, trained on
counterfactual images with one label per mechanism.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from causalkit.errors import CausalKitError

__all__ = ["MultiHead", "MultiHeadCNN", "CGN_HEADS", "build_model"]

CGN_HEADS = ("shape", "texture", "background")


class MultiHead(nn.Module):
    """Named linear heads on a feature backbone: ``forward`` returns a dict of logits.

    Parameters
    ----------
    backbone
        A module mapping images to ``(N, feature_dim)`` features (e.g. a ResNet with
        ``num_classes=0``).
    feature_dim
        Size of the features.
    heads
        Head names, each predicting ``n_classes`` logits.
    n_classes
        Classes per head.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int,
                 heads: Sequence[str] = ("label",), n_classes: int = 10) -> None:
        super().__init__()
        if not heads:
            raise CausalKitError("a model needs at least one head")
        self.backbone = backbone
        self.heads = nn.ModuleDict({h: nn.Linear(feature_dim, n_classes) for h in heads})
        self.head_names = tuple(heads)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every head: ``{name: (N, n_classes)}``."""
        z = self.backbone(x)
        return {h: layer(z) for h, layer in self.heads.items()}

    def logits(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        """Logits of ``head``, or the mean of all heads' logits when ``head`` is None."""
        out = self(x)
        if head is not None:
            if head not in out:
                raise CausalKitError(f"no head {head!r}; heads are {list(out)}")
            return out[head]
        return torch.stack(list(out.values())).mean(0)


class MultiHeadCNN(MultiHead):
    """Shared convolutional backbone with named linear heads.

    Parameters
    ----------
    heads : tuple of str
        Names of the heads, each predicting ``n_classes`` logits.
    n_classes : int
        Classes per head.
    seed : int
        Seed of the initialisation.
    batch_norm : bool
        Add a BatchNorm after every convolution (the ``"cnn-bn"`` model). The paper's
        CNN normalises only its input. On CGN counterfactuals of colored MNIST the
        normalised model fitted better but transferred far worse to real digits
        (docs: "What limits the CGN classifier").
    """

    def __init__(self, heads: tuple[str, ...] = ("label",), n_classes: int = 10,
                 seed: int = 0, batch_norm: bool = False) -> None:
        def conv(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
            norm = [nn.BatchNorm2d(cout)] if batch_norm else []
            return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), *norm, nn.ReLU()]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = nn.Sequential(
                nn.BatchNorm2d(3),
                *conv(3, 32, 5),
                nn.MaxPool2d(3, stride=2, padding=1),
                *conv(32, 32, 3), *conv(32, 64, 3, stride=2), *conv(64, 64, 3),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            super().__init__(backbone, 64, heads, n_classes)


def build_model(name: str, heads: tuple[str, ...], *, seed: int = 0, width: int = 64,
                n_classes: int = 10) -> nn.Module:
    """``"cnn"`` -> :class:`~robust_training.models.MultiHeadCNN` (``"cnn-bn"``: with
    BatchNorm after every convolution); ``"resnetNN"`` -> a 32x32-input
    :class:`~robust_training.resnet.MultiHead` ResNet."""
    if name in ("cnn", "cnn-bn"):
        return MultiHeadCNN(tuple(heads), n_classes=n_classes, seed=seed,
                            batch_norm=name == "cnn-bn")
    from robust_training.resnet import RESNETS, multi_head_resnet  # resnet imports us

    if name not in RESNETS:
        raise CausalKitError(f"unknown model {name!r}; use 'cnn', 'cnn-bn' or one of "
                             f"{sorted(RESNETS)}")
    return multi_head_resnet(name, heads, n_classes, seed=seed, small_input=True, width=width)
