"""Losses of the MNIST CGN.

* LSGAN adversarial losses (least squares against targets 1 = real, 0 = fake);
* the binary-entropy mask loss, pushing every mask pixel towards 0 or 1;
* the mask-size hinge of the paper, ``max(0, tau - mean(m)) + max(0, mean(m) - (1 - tau))``
  per image, which forbids the empty and the full mask (``tau = 0.1``);
* :class:`RandomTextureLoss`, our replacement for the official Gram loss on an
  ImageNet-pretrained VGG16 (unavailable offline). It matches Gram matrices of a fixed,
  seeded bank of random convolutional features at two scales, plus per-channel colour
  means, standard deviations and the colour covariance, between generated and real
  images. Random filters are known to give usable texture statistics (Ustyuzhaninov et
  al., 2017); the colour terms carry most of the signal on the MNIST variants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "lsgan_generator_loss", "lsgan_discriminator_loss", "binary_entropy_loss",
    "mask_size_loss", "mask_border_loss", "mask_tv_loss", "mask_posterior_loss", "contrast_loss",
    "RandomTextureLoss",
    "gram_matrix", "colour_stats",
]


def lsgan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss: ``mean((D(G(z)) - 1)^2)``."""
    return F.mse_loss(d_fake, torch.ones_like(d_fake))


def lsgan_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss: ``(mean((D(x) - 1)^2) + mean(D(G(z))^2)) / 2``."""
    return 0.5 * (F.mse_loss(d_real, torch.ones_like(d_real))
                  + F.mse_loss(d_fake, torch.zeros_like(d_fake)))


def binary_entropy_loss(mask: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy (bits) of the mask pixels; 0 for a binary mask, 1 at m = 0.5."""
    m = mask.float().clamp(1e-6, 1 - 1e-6)  # in bfloat16, 1 - 1e-6 rounds to 1: log2(0)
    return (-(m * torch.log2(m)) - (1 - m) * torch.log2(1 - m)).mean()


def mask_size_loss(mask: torch.Tensor, tau: float = 0.1,
                   upper: float | None = None) -> torch.Tensor:
    """Hinge on each image's mean mask value, zero inside ``[tau, upper]``; batch mean.

    ``upper`` defaults to ``1 - tau`` (the paper's symmetric hinge). A bound below 0.5
    says "the object is smaller than the background", which rules out the inverted
    solution (mask on the background, the texture mechanisms swapped).
    """
    upper = 1 - tau if upper is None else upper
    if not 0.0 <= tau < upper <= 1.0:
        raise ValueError(f"need 0 <= tau < upper <= 1, got tau={tau}, upper={upper}")
    size = mask.flatten(1).mean(1)
    return (F.relu(tau - size) + F.relu(size - upper)).mean()


def mask_border_loss(mask: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Mean mask value on a frame ``width`` pixels wide around the image.

    A prior for object-centred data such as the MNIST variants (digits keep a margin of
    about four pixels at 32 x 32): the frame is background. It breaks the symmetry the
    composer leaves between "mask on the digit" and "mask on the background, textures
    swapped", which the size hinge cannot, since both masks can have the same size.
    """
    if not 1 <= 2 * width < min(mask.shape[-2:]):
        raise ValueError(f"border width {width} does not fit a {tuple(mask.shape[-2:])} mask")
    frame = torch.ones_like(mask[:1, :1], dtype=torch.bool)
    frame[..., width:-width, width:-width] = False
    return mask.masked_select(frame.expand_as(mask)).mean()


def mask_tv_loss(mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring mask pixels (total variation).

    A smoothness prior: an object's mask is a few connected regions, so its boundary is
    short. On textured data (Wildlife MNIST) it stops the mask from following the
    stripes of the object texture, which a reconstruction term otherwise rewards.
    """
    dy = (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean()
    dx = (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean()
    return dy + dx


def mask_posterior_loss(mask: torch.Tensor, posterior: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the mask against a per-pixel posterior of "foreground",
    weighted by the posterior's confidence ``|2 p - 1|``; mean over pixels.

    The posterior comes from outside the mask (:func:`generators.cgn.mnist.colour.colour_posterior`)
    and gets no gradient. A pixel whose colour both textures share (``p = 0.5``) weighs
    nothing, so the loss never pulls a mask towards grey.
    """
    p = posterior.detach()
    bce = F.binary_cross_entropy(mask.clamp(1e-6, 1 - 1e-6), p, reduction="none")
    return ((2 * p - 1).abs() * bce).mean()


def contrast_loss(foreground: torch.Tensor, background: torch.Tensor,
                  margin: float = 0.2) -> torch.Tensor:
    """Hinge asking each image's foreground and background mean colours to differ by at
    least ``margin`` (mean absolute difference over channels, images in [-1, 1]).

    Figure and ground must differ for a mask to be identifiable: where the two textures
    are equal the composite does not depend on the mask, which then gets no gradient,
    and a class can stay stuck with both textures black.
    """
    diff = (foreground.mean((2, 3)) - background.mean((2, 3))).abs().mean(1)
    return F.relu(margin - diff).mean()


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices normalised by C * H * W."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def colour_stats(x: torch.Tensor) -> torch.Tensor:
    """Per-image colour statistics: channel means, standard deviations and covariance."""
    flat = x.flatten(2)  # (N, C, HW)
    mean = flat.mean(2)
    centred = flat - mean[:, :, None]
    cov = centred @ centred.transpose(1, 2) / flat.shape[2]
    std = torch.sqrt(torch.diagonal(cov, dim1=1, dim2=2) + 1e-8)
    iu = torch.triu_indices(x.shape[1], x.shape[1], offset=1)
    return torch.cat([mean, std, cov[:, iu[0], iu[1]]], dim=1)


class RandomTextureLoss(nn.Module):
    """Texture loss from fixed random features; needs no pretrained network.

    The loss compares batch statistics, not pairs of images, because the generated and
    the real batch are unpaired: the mean Gram matrix (per scale) and the mean and
    spread of the per-image colour statistics of ``fake`` are matched to ``real``
    with an L1 distance.

    Parameters
    ----------
    gram_weight, colour_weight : float
        Weights of the Gram-matrix and the colour-statistics terms.
    channels : int
        Number of random filters per scale.
    seed : int
        Seed of the random filter bank (fixed, never trained).
    """

    def __init__(self, gram_weight: float = 1.0, colour_weight: float = 1.0,
                 channels: int = 32, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        # two random layers: 3x3 on the image, 3x3 on the pooled first-layer features
        w1 = torch.randn(channels, 3, 3, 3, generator=gen) / (3 * 9) ** 0.5
        w2 = torch.randn(channels, channels, 3, 3, generator=gen) / (channels * 9) ** 0.5
        self.register_buffer("w1", w1 - w1.mean(dim=(1, 2, 3), keepdim=True))
        self.register_buffer("w2", w2)
        self.gram_weight, self.colour_weight = gram_weight, colour_weight

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Random-feature maps of ``x`` at two scales."""
        f1 = F.relu(F.conv2d(x, self.w1, padding=1))
        f2 = F.relu(F.conv2d(F.avg_pool2d(f1, 2), self.w2, padding=1))
        return [f1, f2]

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Distance between the texture statistics of the ``fake`` and ``real`` batches."""
        loss = fake.new_zeros(())
        if self.gram_weight:
            with torch.no_grad():
                real_grams = [gram_matrix(f).mean(0) for f in self.features(real)]
            for f, g_real in zip(self.features(fake), real_grams, strict=True):
                loss = loss + self.gram_weight * F.l1_loss(gram_matrix(f).mean(0), g_real) * 100
        if self.colour_weight:
            s_fake, s_real = colour_stats(fake), colour_stats(real).detach()
            loss = loss + self.colour_weight * (F.l1_loss(s_fake.mean(0), s_real.mean(0))
                                                + F.l1_loss(s_fake.std(0), s_real.std(0)))
        return loss
