"""Reading the colour nuisances back off a rendered image of colored / double-colored MNIST.

The biased MNIST variants draw a digit into a 32 x 32 image padded by at least two pixels,
so the image's 2-pixel border is always background. That layout makes the nuisances
readable from the pixels alone, with no classifier -- of real images and of a
generator's samples alike:

* :func:`background_color` -- the mean RGB of the border;
* :func:`foreground_color` -- the mean RGB of the pixels farthest from it (the digit);
* :func:`nuisance_classes` -- each image's nuisance class: the nearest palette colour
  of the digit (colored MNIST) or of the background (double-colored MNIST);
* :func:`shape_map` -- a colour-free view: each pixel's distance from the background
  colour, so that a reader of it sees the digit's shape and not its colours;
* :func:`digit_visible` -- whether an image shows any digit at all (on double-colored
  MNIST the digit colour of class ``k`` equals the background colour of class
  ``(k + 4) mod 10``, so about one image in ten shows only a faint digit).

Colours are RGB in 0-255 floats; images are uint8 ``(N, 3, H, W)`` or float in
``[-1, 1]``.

Examples
--------
>>> import torch
>>> x = torch.zeros(1, 3, 8, 8, dtype=torch.uint8); x[:, 0, 3:5, 3:5] = 255
>>> background_color(x).tolist(), foreground_color(x, frac=0.05).tolist()
([[0.0, 0.0, 0.0]], [[255.0, 0.0, 0.0]])
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["background_color", "foreground_color", "nuisance_classes", "shape_map",
           "digit_visible"]


def _rgb255(x: torch.Tensor) -> torch.Tensor:
    """Float RGB in 0-255 from uint8 images or float images in [-1, 1]."""
    return (x.float() + 1) * 127.5 if x.is_floating_point() else x.float()


def _border_mean(x255: torch.Tensor) -> torch.Tensor:
    mask = torch.ones(x255.shape[-2:], dtype=torch.bool)
    mask[2:-2, 2:-2] = False
    return x255[:, :, mask].mean(dim=2)


def background_color(x: torch.Tensor) -> torch.Tensor:
    """Mean RGB (0-255) of the 2-pixel border (always background: digits are padded)."""
    return _border_mean(_rgb255(x))


def foreground_color(x: torch.Tensor, frac: float = 0.1) -> torch.Tensor:
    """Mean RGB of the ``frac`` of pixels farthest from the background colour."""
    x = _rgb255(x)
    bg = _border_mean(x)  # not background_color(x): x is already 0-255 floats
    flat = x.flatten(2)  # (n, 3, hw)
    dist = (flat - bg[:, :, None]).norm(dim=1)  # (n, hw)
    k = max(1, int(frac * flat.shape[2]))
    idx = dist.topk(k, dim=1).indices
    return torch.gather(flat, 2, idx[:, None, :].expand(-1, 3, -1)).mean(dim=2)


def nuisance_classes(images: torch.Tensor, variant: str) -> torch.Tensor:
    """Each image's nuisance class: nearest palette colour of the digit (``variant``
    ``"colored-mnist"``) or of the border (``"double-colored-mnist"``; any other name
    is read the same way)."""
    from causalkit.datasets.palettes import COLORED_PALETTE, DOUBLE_BG_PALETTE

    colored = variant == "colored-mnist"
    pal = torch.tensor(np.asarray(COLORED_PALETTE if colored else DOUBLE_BG_PALETTE),
                       dtype=torch.float32) * 255.0
    colour = (foreground_color if colored else background_color)(torch.as_tensor(images))
    return torch.cdist(colour, pal).argmin(dim=1)


def shape_map(x: torch.Tensor) -> torch.Tensor:
    """Colour-free view of float images in [-1, 1]: each pixel's RGB distance from the
    image's background colour, scaled to [-1, 1] and repeated on 3 channels."""
    bg = background_color(x) / 127.5 - 1.0
    d = (x - bg[:, :, None, None]).norm(dim=1, keepdim=True) / (2 * 3 ** 0.5)
    return (2.0 * d - 1.0).expand(-1, 3, -1, -1)


def digit_visible(images: np.ndarray, threshold: int = 20) -> np.ndarray:
    """Whether each uint8 image (N, 3, H, W) has a pixel differing from its corner pixel
    by at least ``threshold`` (sum of absolute RGB differences, of 765)."""
    x = images.astype(np.int16)
    diff = np.abs(x - x[:, :, :1, :1]).sum(1)
    return diff.reshape(len(x), -1).max(1) >= threshold
