"""Abducting the mask from colour: which mechanism's colours explain each pixel.

For a class ``y``, each texture mechanism draws its colours from a distribution that a
few prior draws of it reveal: a histogram over RGB bins. For a real image of class
``y``, Bayes' rule with equal priors gives every pixel's probability of having come
from the foreground texture rather than the background,

    p_i = h_f(x_i) / (h_f(x_i) + h_b(x_i)),

pixel by pixel and with no phase to match (unlike :mod:`generators.cgn.matching`,
which must line a stripe up with the observed one). The posterior is a target for the
abducted mask, not a replacement: it is detached, and weighted by its confidence
``|2 p - 1|`` so that colours both textures share leave the mask to the other losses
(:func:`~generators.cgn.losses.mask_posterior_loss`).

How much it can give: on full Wildlife MNIST, with histograms of the true texture
images, ``p > 0.5`` finds the digit with a mean IoU of 0.78 (median 0.86); with 32
draws per class of a CGN whose own abducted masks reach 0.52, it already gives 0.61.
Smoothing ``p`` over 3 x 3 pixels lowered the oracle's IoU to 0.63: the strokes are
thin. Trained in (``CGNTrainConfig.recon_colour``) it helped one Wildlife seed and hurt
another as much (the masks grew; docs, "A colour target for the abducted mask"), so it
is off by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["colour_histograms", "colour_posterior"]


def _bin_index(x: torch.Tensor, bins: int) -> torch.Tensor:
    # images in [-1, 1] (N, 3, H, W) -> flat RGB bin of every pixel (N, H, W)
    q = ((x.clamp(-1, 1) + 1) * (bins / 2)).long().clamp_(max=bins - 1)
    return (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]


def colour_histograms(images: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """RGB densities of groups of images, smoothed by one bin.

    Parameters
    ----------
    images : tensor (G, K, 3, H, W) in [-1, 1]
        ``K`` images per group (e.g. prior draws of one mechanism for one class).
    bins : int
        Bins per channel.

    Returns
    -------
    tensor (G, bins ** 3)
        Each group's density over the bins (sums to one), smoothed with a ``[1, 2, 1]``
        kernel along each channel so that a colour a few draws missed still has mass.
    """
    g = images.shape[0]
    idx = _bin_index(images.flatten(0, 1), bins).view(g, -1)
    counts = torch.zeros(g, bins ** 3, device=images.device)
    counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=counts.dtype))
    h = counts.view(g, 1, bins, bins, bins)
    k = torch.tensor([0.25, 0.5, 0.25], device=images.device)
    for shape in ((3, 1, 1), (1, 3, 1), (1, 1, 3)):
        pad = [s // 2 for s in shape]
        h = F.conv3d(h, k.view(1, 1, *shape), padding=pad)
    h = h.flatten(1) + 1e-3 / bins ** 3  # no colour has zero density
    return h / h.sum(1, keepdim=True)


def colour_posterior(x: torch.Tensor, foreground: torch.Tensor, background: torch.Tensor,
                     bins: int = 16) -> torch.Tensor:
    """Per-pixel probability that the foreground texture explains ``x``.

    Parameters
    ----------
    x : tensor (N, 3, H, W) in [-1, 1]
        Observed images.
    foreground, background : tensor (N, bins ** 3)
        Each image's colour densities of the two mechanisms
        (:func:`colour_histograms`, indexed by the image's class).
    bins : int
        The histograms' bins per channel.

    Returns
    -------
    tensor (N, 1, H, W)
        ``h_f(x) / (h_f(x) + h_b(x))``: equal priors, each pixel on its own.
    """
    idx = _bin_index(x, bins).flatten(1)
    pf, pb = foreground.gather(1, idx), background.gather(1, idx)
    return (pf / (pf + pb)).view(x.shape[0], 1, *x.shape[2:])
