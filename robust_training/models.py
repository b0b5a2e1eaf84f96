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

from causalkit.errors import CausalKitError
from robust_training.heads import MultiHead
from robust_training.resnet import RESNETS, multi_head_resnet

__all__ = ["MultiHead", "MultiHeadCNN", "ContrastNorm", "CGN_HEADS", "MODELS", "build_model"]

CGN_HEADS = ("shape", "texture", "background")


class ContrastNorm(nn.Module):
    """Per-image contrast normalisation: subtract each channel's mean, divide by the
    image's standard deviation over all channels and pixels.

    The output does not depend on an image's brightness, colour offset or contrast,
    only on the pattern of differences within it; a digit a few grey levels from its
    background comes out as clearly as a black-on-white one. The scale is shared by
    the channels, so their relative contrast (the colour of the difference) is kept.

    Parameters
    ----------
    eps : float
        Added to the standard deviation; a uniform image maps to zeros. Small on
        purpose (images in [-1, 1]): an image whose digit differs from its background by
        one grey level in one channel has a standard deviation near 0.002.
    """

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> the same shape, each image at zero channel means and unit
        standard deviation."""
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        return centred / (centred.flatten(1).std(dim=1).view(-1, 1, 1, 1) + self.eps)


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
    contrast_norm : bool
        Normalise each image's contrast (:class:`ContrastNorm`) instead of the batch's
        input statistics (the ``"cnn-cn"`` model). The paper's input BatchNorm scales
        every image alike, so a digit within a few grey levels of its background stays
        faint (docs: "The faint tenth of double-colored MNIST").
    """

    def __init__(self, heads: tuple[str, ...] = ("label",), n_classes: int = 10,
                 seed: int = 0, batch_norm: bool = False,
                 contrast_norm: bool = False) -> None:
        def conv(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
            norm = [nn.BatchNorm2d(cout)] if batch_norm else []
            return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), *norm, nn.ReLU()]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = nn.Sequential(
                ContrastNorm() if contrast_norm else nn.BatchNorm2d(3),
                *conv(3, 32, 5),
                nn.MaxPool2d(3, stride=2, padding=1),
                *conv(32, 32, 3), *conv(32, 64, 3, stride=2), *conv(64, 64, 3),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            super().__init__(backbone, 64, heads, n_classes)


#: The paper's CNN and its variants, by name (keyword arguments of MultiHeadCNN).
MODELS = {"cnn": {}, "cnn-bn": {"batch_norm": True}, "cnn-cn": {"contrast_norm": True}}


def build_model(name: str, heads: tuple[str, ...], *, seed: int = 0, width: int = 64,
                n_classes: int = 10) -> nn.Module:
    """``"cnn"`` -> :class:`~robust_training.models.MultiHeadCNN` (``"cnn-bn"``: with
    BatchNorm after every convolution; ``"cnn-cn"``: with per-image contrast
    normalisation of the input); ``"resnetNN"`` -> a 32x32-input
    :class:`~robust_training.heads.MultiHead` ResNet."""
    if name in MODELS:
        return MultiHeadCNN(tuple(heads), n_classes=n_classes, seed=seed, **MODELS[name])
    if name not in RESNETS:
        raise CausalKitError(f"unknown model {name!r}; use one of "
                             f"{sorted(MODELS) + sorted(RESNETS)}")
    return multi_head_resnet(name, heads, n_classes, seed=seed, small_input=True, width=width)
