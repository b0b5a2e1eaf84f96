"""Named linear heads on a feature backbone: the building block of every classifier here.

A classifier of this package maps images to a dict of logits, one entry per *head*:
``("label",)`` is the plain classifier, ``("shape", "texture", "background")`` the
CGN's invariant classifier, trained on counterfactual images with one label per
mechanism. :class:`MultiHead` is that interface on top of any backbone that returns
``(N, feature_dim)`` features, so every registered objective can train any backbone:
the paper's CNN (:class:`~robust_training.models.MultiHeadCNN`) and the ResNets
(:func:`~robust_training.resnet.multi_head_resnet`) both build on it.

It lives in its own module so that :mod:`robust_training.models` and
:mod:`robust_training.resnet` can both import it without importing each other in a
circle.

Examples
--------
>>> import torch
>>> from torch import nn
>>> net = MultiHead(nn.Flatten(), 12, heads=("shape", "texture"), n_classes=10)
>>> out = net(torch.zeros(2, 3, 2, 2))
>>> sorted(out), tuple(out["shape"].shape)
(['shape', 'texture'], (2, 10))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from causalkit.errors import CausalKitError

__all__ = ["MultiHead"]


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
