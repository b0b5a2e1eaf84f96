"""Classifiers for the 32 x 32 MNIST variants.

:class:`MultiHeadCNN` is the paper's MNIST classifier CNN (BN on the input, four
convolutions, global average pooling to 64 features) with one linear head per label.
A single head (``("label",)``) is the plain classifier; the heads
``("shape", "texture", "background")`` make the CGN's invariant classifier, trained on
counterfactual images with one label per mechanism.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MultiHeadCNN", "CGN_HEADS"]

CGN_HEADS = ("shape", "texture", "background")


class MultiHeadCNN(nn.Module):
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
        super().__init__()
        if not heads:
            raise ValueError("a model needs at least one head")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.backbone = nn.Sequential(
                nn.BatchNorm2d(3),
                nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
                nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.heads = nn.ModuleDict({h: nn.Linear(64, n_classes) for h in heads})
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
                raise ValueError(f"no head {head!r}; heads are {list(out)}")
            return out[head]
        return torch.stack(list(out.values())).mean(0)
