"""Abducting the mask from colour: which mechanism's colours explain each pixel.

For a class ``y``, each texture mechanism draws its colours from a distribution that a
few prior draws of it reveal: a histogram over RGB bins. For a real image of class
``y``, Bayes' rule with equal priors gives every pixel's probability of having come
from the foreground texture rather than the background,

    p_i = h_f(x_i) / (h_f(x_i) + h_b(x_i)),

pixel by pixel and with no phase to match (unlike :mod:`generators.cgn.mnist.matching`,
which must line a stripe up with the observed one). The posterior is a target for the
abducted mask, not a replacement: it is detached, and weighted by its confidence
``|2 p - 1|`` so that colours both textures share leave the mask to the other losses
(:func:`~generators.cgn.mnist.losses.mask_posterior_loss`).

How much it can give: on full Wildlife MNIST, with histograms of the true texture
images, ``p > 0.5`` finds the digit with a mean IoU of 0.78 (median 0.86); with 32
draws per class of a CGN whose own abducted masks reach 0.52, it already gives 0.61.
Smoothing ``p`` over 3 x 3 pixels lowered the oracle's IoU to 0.63: the strokes are
thin. Trained in (``CGNTrainConfig.recon_colour``) it helped one Wildlife seed and hurt
another as much (the masks grew; docs, "A colour target for the abducted mask"), so it
is off by default.

After training the same rule abducts the mask outright (:func:`colour_masks`). The
densities then come from the real training images themselves, their pixels weighed by
the CGN's abducted masks: a class's thousands of images average the masks' errors
away. On full Wildlife MNIST (64 bins per channel, a 5-pixel guard band) the masks
found the digits with a mean IoU of 0.93, where the CGN's own masks reached 0.73 and
0.67 (bfloat16 seeds 0 and 3); a class whose shape mechanism had collapsed to a blob
(seed 3, class 9) went from 0.37 to 0.98.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from generators.images import to_float

__all__ = ["colour_histograms", "colour_posterior", "class_colour_densities", "colour_masks",
           "MASK_BINS", "MASK_RADIUS"]

#: bins per channel of :func:`colour_masks` (posterior alone, IoU on Wildlife, bfloat16
#: seed 0: 16 bins 0.87, 32 bins 0.90, 64 bins 0.92)
MASK_BINS = 64
#: guard band and region of :func:`colour_masks`, in pixels (IoU on Wildlife, bfloat16
#: seeds 0 / 3: radius 3: 0.933 / 0.913, 4: 0.931 / 0.918, 5: 0.929 / 0.929, 6: 0.926 /
#: 0.926; seed 3's class 1, whose yellow parts the CGN drew into the background: 0.75,
#: 0.82, 0.96, 0.98)
MASK_RADIUS = 5


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
    return _density(counts, bins)


def _density(counts: torch.Tensor, bins: int) -> torch.Tensor:
    # (G, bins ** 3) counts -> densities smoothed by one bin along each channel
    g = counts.shape[0]
    h = counts.view(g, 1, bins, bins, bins)
    k = torch.tensor([0.25, 0.5, 0.25], device=counts.device)
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


def class_colour_densities(images: torch.Tensor, labels: torch.Tensor,
                           foreground: torch.Tensor, background: torch.Tensor,
                           n_classes: int, bins: int = MASK_BINS,
                           chunk: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class's foreground and background colour densities, from real images.

    Every pixel counts towards its image's class, in the foreground density with its
    ``foreground`` weight and in the background density with its ``background`` weight,
    so that soft or partly wrong masks still give the right densities when their errors
    are a minority of a class's pixels.

    Parameters
    ----------
    images : uint8 tensor (N, 3, H, W)
        Real images.
    labels : int tensor (N,)
        Their classes.
    foreground, background : tensors (N, 1, H, W) in [0, 1]
        Each pixel's weight in the two densities (e.g. a CGN's abducted mask, and one
        minus it).
    n_classes, bins, chunk
        Number of classes; bins per channel; images binned at a time (bounds memory).

    Returns
    -------
    (foreground, background) : tensors (n_classes, bins ** 3)
        Densities as in :func:`colour_histograms`. A class without images has the
        uniform density.
    """
    fg = torch.zeros(n_classes, bins ** 3)
    bg = torch.zeros(n_classes, bins ** 3)
    for start in range(0, len(images), chunk):
        sl = slice(start, start + chunk)
        rows = _class_rows(to_float(images[sl]), labels[sl], bins).flatten()
        fg.view(-1).scatter_add_(0, rows, foreground[sl].float().cpu().flatten())
        bg.view(-1).scatter_add_(0, rows, background[sl].float().cpu().flatten())
    return _density(fg, bins), _density(bg, bins)


def colour_masks(images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor,
                 n_classes: int, *, radius: int = MASK_RADIUS, bins: int = MASK_BINS,
                 chunk: int = 5000) -> torch.Tensor:
    """Binary masks abducted from colour, near the CGN's masks.

    Three steps, each against a failure of the CGN's own masks:

    1. *Densities.* A class's foreground colours are its pixels weighed by the CGN's
       masks; its background colours are the pixels farther than ``radius`` from any
       CGN digit pixel (mask > 0.5). The guard band keeps a digit part that the CGN
       leaves out of its mask (and draws into the background instead) out of the
       background colours.
    2. *Posterior.* Each pixel of an image of class ``y`` is foreground with
       probability ``h_f(x) / (h_f(x) + h_b(x))`` (:func:`colour_posterior`): pixel by
       pixel, so a blob-shaped CGN mask gives back the digit's strokes and the holes
       between them.
    3. *Region.* A pixel farther than ``radius`` from the CGN's digit is background
       whatever its colour (a leaf vein of the digit's colour), and the rest is
       thresholded at 0.5: the variants' digits are binary.

    Parameters
    ----------
    images, labels, n_classes, bins, chunk
        As in :func:`class_colour_densities`.
    masks : tensor (N, 1, H, W) in [0, 1]
        The CGN's abducted masks of ``images``.
    radius : int
        Width of the guard band and of the region around the CGN's digit, in pixels.

    Returns
    -------
    float tensor (N, 1, H, W) of 0 and 1
    """
    region = F.max_pool2d((masks > 0.5).float().cpu(), 2 * radius + 1, stride=1,
                          padding=radius)
    fg, bg = class_colour_densities(images, labels, masks, 1 - region, n_classes, bins, chunk)
    out = torch.empty(len(images), 1, *images.shape[2:])
    for start in range(0, len(images), chunk):
        sl = slice(start, start + chunk)
        rows = _class_rows(to_float(images[sl]), labels[sl], bins)
        pf, pb = fg.view(-1)[rows], bg.view(-1)[rows]
        posterior = (pf / (pf + pb)).view(-1, 1, *images.shape[2:])
        out[sl] = ((posterior > 0.5) & (region[sl] > 0)).float()
    return out


def _class_rows(x: torch.Tensor, labels: torch.Tensor, bins: int) -> torch.Tensor:
    # each pixel's row in the flattened (n_classes * bins ** 3) densities: its class's bins
    return labels.long().view(-1, 1).cpu() * bins ** 3 + _bin_index(x, bins).flatten(1)
