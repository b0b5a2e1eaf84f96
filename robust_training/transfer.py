"""Transfer generated interventions onto real images: ``T(I, X)`` by feature matching.

GenInt's third stream puts the nuisances of an interventional sample ``X`` onto a real
image ``I`` while keeping ``I``'s content, and labels the result with ``I``'s label.
:func:`style_transfer` does this the optimisation way (Gatys et al., 2016): starting
from ``I``, it runs a few Adam steps on the pixels to minimise

``content_weight * sum_l mse(f_l(out), f_l(I))``  over the content layers, plus
``style_weight * sum_l D(f_l(out), f_l(X))``        over the style layers,

where ``D`` is either the Gram-matrix distance (``"gram"``, equal to an MMD with a
second-order polynomial kernel, Li et al. 2017) or the distance of per-channel means
and standard deviations (``"meanstd"``, an MMD with a linear kernel on normalised
features). Everything is batched and seeded-free (deterministic given its inputs).

The feature network is pluggable: any module whose ``forward`` returns a list of
feature maps. :func:`random_features` builds a seeded random conv net (works offline:
random features capture colour and texture statistics well); :func:`resnet_features`
wraps a :mod:`robust_training.resnet` model whose weights can come from a torchvision
checkpoint file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from causalkit.errors import CausalKitError
from generators.perceptual import RandomFeatures, gram, random_features

__all__ = ["RandomFeatures", "random_features", "ResNetFeatures", "resnet_features",
           "gram", "style_distance", "style_transfer", "transfer_pool"]


class ResNetFeatures(nn.Module):
    """Stem, layer1, layer2, layer3 outputs of a :class:`~robust_training.resnet.ResNet`.

    Inputs in [-1, 1] are mapped to ImageNet normalisation first, as torchvision's
    pretrained weights expect.
    """

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.net = resnet.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        n = self.net
        x = n.relu(n.bn1(n.conv1(x)))
        out = [x]
        for layer in (n.layer1, n.layer2, n.layer3):
            x = layer(x)
            out.append(x)
        return out


def resnet_features(arch: str = "resnet18", weights: str | os.PathLike | None = None
                    ) -> ResNetFeatures:
    """ResNet features, with weights from a torchvision checkpoint file when given."""
    from robust_training.resnet import build_resnet, load_torchvision_weights

    model = build_resnet(arch, num_classes=1000)
    if weights is not None:
        load_torchvision_weights(model, weights)
    return ResNetFeatures(model)


def style_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "gram") -> torch.Tensor:
    """Per-batch mean style distance between feature maps ``a`` and ``b``."""
    if kind == "gram":
        return (gram(a) - gram(b)).pow(2).sum(dim=(1, 2)).mean()
    if kind == "meanstd":
        ma, mb = a.mean(dim=(2, 3)), b.mean(dim=(2, 3))
        sa, sb = a.std(dim=(2, 3)), b.std(dim=(2, 3))
        return ((ma - mb).pow(2) + (sa - sb).pow(2)).mean(dim=1).mean()
    raise CausalKitError(f"unknown style distance {kind!r}; use 'gram' or 'meanstd'")


def style_transfer(content: torch.Tensor, style: torch.Tensor, features: nn.Module, *,
                   steps: int = 20, lr: float = 0.1, content_weight: float = 1e4,
                   style_weight: float = 1e4, content_layers: Sequence[int] = (-1,),
                   style_layers: Sequence[int] | None = None, kind: str = "gram"
                   ) -> torch.Tensor:
    """``T(I, X)``: images with the content of ``content`` and the style of ``style``.

    Parameters
    ----------
    content, style
        Float images in [-1, 1], ``(N, 3, H, W)`` each (paired row by row).
    features
        A module returning a list of feature maps (see :func:`random_features`).
    steps, lr
        Adam steps on the pixels, starting from ``content``.
    content_weight, style_weight
        Weights of the content match and the style match. The defaults (equal weights,
        20 steps of lr 0.1) were picked by eye on double-colored MNIST with random
        features: the background moves most of the way to the style's colour while the
        digit stays legible; a 10x smaller content weight erases thin strokes.
    content_layers, style_layers
        Indices into the feature list (default style: all layers).
    kind
        ``"gram"`` or ``"meanstd"`` (see :func:`style_distance`).

    Returns
    -------
    torch.Tensor
        Detached images in [-1, 1], same shape as ``content``.
    """
    if content.shape != style.shape:
        raise CausalKitError(f"content {tuple(content.shape)} and style "
                             f"{tuple(style.shape)} must have the same shape (paired rows)")
    if steps < 0:
        raise CausalKitError(f"steps must be >= 0, got {steps}")
    with torch.no_grad():
        fc, fs = features(content), features(style)
    style_layers = range(len(fs)) if style_layers is None else style_layers
    out = content.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([out], lr=lr)
    for _ in range(steps):
        fo = features(out)
        c = sum(F.mse_loss(fo[i], fc[i]) for i in content_layers)
        s = sum(style_distance(fo[i], fs[i], kind) for i in style_layers)
        loss = content_weight * c + style_weight * s
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            out.clamp_(-1.0, 1.0)
    return out.detach()


def transfer_pool(real: torch.Tensor, generated: torch.Tensor, features: nn.Module, *,
                  n: int, seed: int = 0, batch_size: int = 256, progress: bool = False,
                  **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair ``n`` random real images with random generated ones and transfer.

    Returns the transferred images (float in [-1, 1]) and the indices of the real images
    used, so the caller labels each output with its real image's label.
    """
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    ri = torch.randint(0, real.shape[0], (n,), generator=g)
    gi = torch.randint(0, generated.shape[0], (n,), generator=g)
    outs = []
    for i in tqdm(range(0, n, batch_size), disable=not progress, desc="transfer"):
        outs.append(style_transfer(real[ri[i:i + batch_size]], generated[gi[i:i + batch_size]],
                                   features, **kwargs))
    return torch.cat(outs), ri
