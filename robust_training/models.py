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

__all__ = ["MultiHead", "MultiHeadCNN", "CGN_HEADS"]

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
    """

    def __init__(self, heads: tuple[str, ...] = ("label",), n_classes: int = 10,
                 seed: int = 0) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = nn.Sequential(
                nn.BatchNorm2d(3),
                nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            super().__init__(backbone, 64, heads, n_classes)
