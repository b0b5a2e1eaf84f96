"""The losses of the ImageNet CGN, each a function of its inputs (Sauer & Geiger, Sec. 3.2).

Training reconstructs the frozen BigGAN's image ``x_gt = G(u, y)`` from the composite
``x_gen = m * f + (1 - m) * b`` of the three mechanisms, and shapes the mechanisms with
three priors. The formulas and weights are the authors' (``shared/losses.py`` and
``imagenet/config.py`` of autonomousvision/counterfactual_generative_networks):

``l1`` (weight 100)
    ``mean |x_gen - x_gt|``;
``perc`` (weights [4, 4, 4, 4])
    :func:`perceptual`, a Gram-matrix L1 per feature layer, between ``x_gen`` and ``x_gt``;
``binary``, L_binary (weight 300)
    ``mean H2(m)`` with ``H2(p) = -p log2 p - (1 - p) log2(1 - p)``;
``mask``, L_mask (weight 500)
    ``max(0, 0.1 - mean m) + max(0, mean m - 0.9)`` per image;
``perc_text``, L_text (weights [0, 5, 5, 0])
    :func:`perceptual` between ``f`` and a grid of patches of ``x_gt`` sampled where
    ``m`` is highest (:func:`sample_patch_grid`);
``bg``, L_bg (weight 2000)
    ``mean s(b)`` per image, ``s`` the U^2-Net's saliency of the background.

Each per-image loss is averaged over the batch.

The perceptual loss is the authors' *style* form: for feature maps ``phi_i`` (VGG16's
relu1_2, relu2_2, relu3_3, relu4_3 in the official code) and Gram matrices
``G(F) = F F^T / (c h w)`` of the ``c x hw`` features,

::

    perc(x, y) = sum_i  w_i^2 * 5000 * mean |G(phi_i(x)) - G(phi_i(y))|
                 (+ sum_i  v_i * mean |phi_i(x) - phi_i(y)|, content weights v, 0 here).

The feature extractor is pluggable (:func:`generators.perceptual.perceptual_features`):
a module mapping ``[0, 1]`` images to a list of feature maps, with its normalisation
inside. The official code gives VGG16 the BigGAN's ``[-1, 1]`` output as it is; here the
images go in as ``[0, 1]`` and the extractor normalises them as it was trained to.

Patch sampling (the official ``get_sampled_patches``): mask and ``x_gt`` are resized to
128 x 128 (bicubic); among all 15 x 15 windows the 100 with the highest mean mask are
kept, 36 of them are drawn with replacement, tiled 6 x 6 (90 x 90 pixels) and resized
(bicubic) to the image size. The texture mechanism thus learns to paint the object's
texture everywhere, not the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from causalkit.errors import CausalKitError
from generators.perceptual import STYLE_SCALE, gram, perceptual_loss

__all__ = ["LossWeights", "reconstruction_l1", "gram_matrix", "perceptual",
           "binary_entropy", "mask_interval", "background_saliency", "sample_patch_grid",
           "texture", "cgn_losses", "LOSS_NAMES", "STYLE_SCALE"]

#: the names of the losses :func:`cgn_losses` returns, in the official order
LOSS_NAMES = ("l1", "perc", "binary", "mask", "perc_text", "bg")


@dataclass(frozen=True)
class LossWeights:
    """Weights and settings of the six losses; the defaults are the official ones.

    Attributes
    ----------
    l1, binary, mask, bg : float
        Weights of the reconstruction L1, L_binary, L_mask and L_bg.
    perc, text : tuple of float
        Per-feature-layer (style) weights of the reconstruction's perceptual loss and of
        L_text; one per feature map of the extractor.
    mask_interval : (float, float)
        L_mask's interval for the mean mask.
    patch_size, patch_top, patch_grid, patch_work_size : int
        L_text's patch sampling: window side, how many best windows to draw from, the
        grid side (``patch_grid ** 2`` patches), the side the images are resized to first.
    """

    l1: float = 100.0
    perc: tuple[float, ...] = (4.0, 4.0, 4.0, 4.0)
    binary: float = 300.0
    mask: float = 500.0
    mask_interval: tuple[float, float] = (0.1, 0.9)
    text: tuple[float, ...] = (0.0, 5.0, 5.0, 0.0)
    bg: float = 2000.0
    patch_size: int = 15
    patch_top: int = 100
    patch_grid: int = 6
    patch_work_size: int = 128
    content: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        lo, hi = self.mask_interval
        if not 0 <= lo <= hi <= 1:
            raise CausalKitError(f"mask_interval must satisfy 0 <= lo <= hi <= 1, got "
                                 f"{self.mask_interval}")
        if self.patch_size < 1 or self.patch_top < 1 or self.patch_grid < 1:
            raise CausalKitError("patch_size, patch_top and patch_grid must be >= 1")
        if self.patch_size > self.patch_work_size:
            raise CausalKitError(f"patch_size {self.patch_size} exceeds patch_work_size "
                                 f"{self.patch_work_size}")


def reconstruction_l1(x_gen: torch.Tensor, x_gt: torch.Tensor, *, weight: float = 100.0
                      ) -> torch.Tensor:
    """``weight * mean |x_gen - x_gt|`` (a scalar)."""
    return weight * (x_gen - x_gt).abs().mean()


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """Gram matrices ``F F^T / (c h w)`` of feature maps (B, c, h, w) -> (B, c, c)
    (:func:`generators.perceptual.gram`)."""
    return gram(x)


def perceptual(features: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
               weights: Sequence[float], content: Sequence[float] = ()) -> torch.Tensor:
    """The official perceptual (style) loss between images ``x`` and target ``y`` in [-1, 1].

    ``sum_i weights[i]^2 * 5000 * mean|G(phi_i(x)) - G(phi_i(y))|`` plus
    ``sum_i content[i] * mean|phi_i(x) - phi_i(y)|``, per batch (a scalar); ``phi`` is
    ``features`` applied to ``(x + 1) / 2``
    (:func:`generators.perceptual.perceptual_loss` on ``[0, 1]`` images). No gradient
    flows into ``y``. Layers of weight 0 are skipped. Raises unless there is one weight
    per feature map.
    """
    return perceptual_loss(features, (x + 1) / 2, (y.detach() + 1) / 2, weights=weights,
                           content_weights=list(content) or None)


def binary_entropy(mask: torch.Tensor, *, weight: float = 300.0) -> torch.Tensor:
    """L_binary: ``weight * mean(-m log2 m - (1 - m) log2(1 - m))`` (a scalar).

    ``mask`` must lie strictly inside (0, 1) (the model clamps it to ``[1e-4, 1 - 1e-4]``).
    """
    m = mask.float()
    return weight * (-m * torch.log2(m) - (1 - m) * torch.log2(1 - m)).mean()


def mask_interval(mask: torch.Tensor, *, weight: float = 500.0,
                  interval: tuple[float, float] = (0.1, 0.9)) -> torch.Tensor:
    """L_mask per image (B,): ``weight * (max(0, lo - mean m) + max(0, mean m - hi))``."""
    mean = mask.float().mean(dim=(1, 2, 3))
    lo, hi = interval
    return weight * (F.relu(lo - mean) + F.relu(mean - hi))


def background_saliency(saliency: torch.Tensor, *, weight: float = 2000.0) -> torch.Tensor:
    """L_bg per image (B,): ``weight * mean s(b)``, ``s`` the U^2-Net saliency (>= 0)."""
    return F.relu(weight * saliency.float().reshape(len(saliency), -1).mean(dim=1))


def sample_patch_grid(mask: torch.Tensor, image: torch.Tensor, *, patch_size: int = 15,
                      top: int = 100, grid: int = 6, work_size: int = 128,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """A grid of patches of ``image`` taken where ``mask`` is highest (module docstring).

    Parameters
    ----------
    mask : (B, 1, H, W)
        Where to look; windows are ranked by their mean mask.
    image : (B, C, H, W)
        What to cut the patches from (``x_gt`` in L_text).
    patch_size, top, grid, work_size : int
        Window side (an even one is rounded up to odd, as officially), number of best
        windows to draw from, grid side, working resolution.
    generator : torch.Generator, optional
        Source of the draws (``grid ** 2`` per image, with replacement, among the
        ``top`` windows); on any device (a CPU one serves CUDA images too).

    Returns
    -------
    (B, C, H, W)
        The ``grid x grid`` tiling of the drawn patches, resized to ``image``'s size.
    """
    size = image.shape[-2:]
    patch_size += (patch_size + 1) % 2  # odd, as the official get_all_patches rounds it
    with torch.no_grad():
        prob = F.interpolate(mask.float(), (work_size, work_size), mode="bicubic",
                             align_corners=False)
        paint = F.interpolate(image.float(), (work_size, work_size), mode="bicubic",
                              align_corners=False)
        means = F.avg_pool2d(prob, patch_size, stride=1).flatten(1)  # (B, n_windows)
        side = work_size - patch_size + 1
        best = torch.argsort(means, dim=1, stable=True)[:, -min(top, means.shape[1]):]
        pick = torch.randint(best.shape[1], (len(image), grid * grid), generator=generator,
                             device=generator.device if generator is not None else "cpu")
        pick = pick.to(best.device)
        chosen = torch.gather(best, 1, pick)  # (B, grid^2) window indices
        rows, cols = chosen // side, chosen % side
        offs = torch.arange(patch_size, device=image.device)
        r = (rows[..., None] + offs)[..., :, None]  # (B, g^2, p, 1)
        c = (cols[..., None] + offs)[..., None, :]  # (B, g^2, 1, p)
        b = torch.arange(len(image), device=image.device)[:, None, None, None]
        patches = paint.permute(0, 2, 3, 1)[b, r, c]  # (B, g^2, p, p, C)
        n, ch = len(image), image.shape[1]
        tiled = patches.reshape(n, grid, grid, patch_size, patch_size, ch)
        tiled = tiled.permute(0, 5, 1, 3, 2, 4).reshape(n, ch, grid * patch_size,
                                                       grid * patch_size)
        return F.interpolate(tiled, size, mode="bicubic", align_corners=False)


def texture(features: nn.Module, foreground: torch.Tensor, x_gt: torch.Tensor,
            mask: torch.Tensor, *, weights: Sequence[float] = (0.0, 5.0, 5.0, 0.0),
            patch_size: int = 15, top: int = 100, grid: int = 6, work_size: int = 128,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """L_text: :func:`perceptual` between ``foreground`` and :func:`sample_patch_grid` of
    ``x_gt`` under ``mask`` (both detached)."""
    target = sample_patch_grid(mask.detach(), x_gt.detach(), patch_size=patch_size, top=top,
                               grid=grid, work_size=work_size, generator=generator)
    return perceptual(features, foreground, target, weights=weights)


def cgn_losses(*, features: nn.Module, x_gen: torch.Tensor, x_gt: torch.Tensor,
               mask: torch.Tensor, foreground: torch.Tensor, bg_saliency: torch.Tensor,
               weights: LossWeights = LossWeights(),
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The six losses of one training step, each a scalar (batch mean), in
    :data:`LOSS_NAMES` order; their sum is the objective."""
    w = weights
    return {
        "l1": reconstruction_l1(x_gen, x_gt, weight=w.l1),
        "perc": perceptual(features, x_gen, x_gt, weights=w.perc, content=w.content),
        "binary": binary_entropy(mask, weight=w.binary),
        "mask": mask_interval(mask, weight=w.mask, interval=w.mask_interval).mean(),
        "perc_text": texture(features, foreground, x_gt, mask, weights=w.text,
                             patch_size=w.patch_size, top=w.patch_top, grid=w.patch_grid,
                             work_size=w.patch_work_size, generator=generator),
        "bg": background_saliency(bg_saliency, weight=w.bg).mean(),
    }
