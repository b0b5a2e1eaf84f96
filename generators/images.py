"""Image conversions and PNG grids, the one copy for the whole project.

Images at rest are uint8 ``[0, 255]``; models see float ``[-1, 1]``. The two maps:

* :func:`to_float` -- ``x / 127.5 - 1`` in float32;
* :func:`to_uint8` -- ``round((clamp(x, -1, 1) + 1) * 127.5)`` as uint8, on the CPU
  (computed in float32; clamping before or after the rounding gives the same bytes).

:func:`make_grid` tiles images into one RGB array (white 2-pixel gaps) and
:func:`save_grid` writes it as a PNG atomically, optionally upscaled (nearest neighbour);
:func:`save_strip` does the same for rows of different lengths (figures).

>>> x = torch.tensor([[[[0, 127, 128, 255]]]], dtype=torch.uint8)
>>> to_float(x)
tensor([[[[-1.0000, -0.0039,  0.0039,  1.0000]]]])
>>> bool((to_uint8(to_float(x)) == x).all())
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write

__all__ = ["to_float", "to_uint8", "make_grid", "save_grid", "save_strip"]


def to_float(x: torch.Tensor, *, keep_float: bool = False) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (``x / 127.5 - 1``).

    Parameters
    ----------
    x
        Images of any shape; uint8 in ``[0, 255]``.
    keep_float
        ``False`` (default): every input is taken to be in ``[0, 255]`` and rescaled.
        ``True``: only uint8 input is rescaled; any other dtype is taken to be in
        ``[-1, 1]`` already and only cast to float32 (for functions that accept uint8
        or float images, e.g. :func:`analysis.probes.predict_nuisances`).
    """
    if keep_float and x.dtype != torch.uint8:
        return x.float()
    return x.float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 in [0, 255] (clamped, rounded), same shape, CPU."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def make_grid(images: torch.Tensor, *, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile images into one RGB ``(H', W', 3)`` uint8 array with white ``pad``-pixel gaps.

    Parameters
    ----------
    images
        ``(N, C, H, W)`` laid out ``nrow`` per row (the last row may be partial), or
        ``(rows, cols, C, H, W)`` laid out as given. ``C`` is 1 or 3; uint8, or float in
        ``[-1, 1]`` (converted with :func:`to_uint8`).
    nrow
        Images per row; required for 4-D input, and for 5-D input it must be ``cols``
        when given.
    pad
        Gap between images (and around them) in pixels.
    """
    if images.dim() == 5:
        if nrow is not None and nrow != images.shape[1]:
            raise CausalKitError(f"nrow={nrow} but the (rows, cols, C, H, W) images have "
                                 f"{images.shape[1]} columns; leave nrow out for 5-D images")
        nrow = images.shape[1]
        images = images.flatten(0, 1)
    elif images.dim() != 4 or nrow is None:
        raise CausalKitError(f"expected (N, C, H, W) images with nrow=, or (rows, cols, C, H, "
                             f"W), got {tuple(images.shape)} with nrow={nrow}")
    imgs = _rgb_uint8(images)
    ncol = max(1, nrow)
    return _tile([imgs[i:i + ncol] for i in range(0, len(imgs), ncol)], ncol, pad,
                 imgs.shape[2:])


def _rgb_uint8(images: torch.Tensor) -> np.ndarray:
    # (N, C, H, W) uint8 or float [-1, 1] -> uint8 numpy (N, 3, H, W)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise CausalKitError(f"images must be (N, C, H, W) with 1 or 3 channels, got "
                             f"{tuple(images.shape)}")
    imgs = (images if images.dtype == torch.uint8 else to_uint8(images)).cpu().numpy()
    return np.repeat(imgs, 3, axis=1) if imgs.shape[1] == 1 else imgs


def _tile(rows: list[np.ndarray], ncol: int, pad: int, size: tuple[int, ...]) -> np.ndarray:
    # rows of uint8 (m, 3, H, W) images, m <= ncol, left-aligned on a white canvas
    h, w = size
    grid = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
            grid[y0:y0 + h, x0:x0 + w] = img.transpose(1, 2, 0)
    return grid


def _save_png(grid: np.ndarray, path: str | os.PathLike, upscale: int) -> Path:
    from PIL import Image

    img = Image.fromarray(grid)
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    return atomic_write(path, lambda fh: img.save(fh, format="PNG"))


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None,
              upscale: int = 1, pad: int = 2) -> Path:
    """Save images as one PNG grid (:func:`make_grid`), atomically; returns ``path``.

    ``upscale`` > 1 enlarges the grid by nearest-neighbour resampling.
    """
    return _save_png(make_grid(images, nrow=nrow, pad=pad), path, upscale)


def save_strip(rows: Sequence[torch.Tensor], path: str | os.PathLike, *, upscale: int = 3,
               pad: int = 2) -> Path:
    """Save rows of different lengths (each ``(m, C, H, W)``, uint8 or float in [-1, 1])
    as one PNG, atomically: row ``i`` of the picture is ``rows[i]``, left-aligned, as
    wide as the longest row. Returns ``path``.

    Unlike :func:`save_grid` the default ``upscale`` is 3 (figures of 32 x 32 images).
    """
    if not rows:
        raise CausalKitError("save_strip needs at least one row of images")
    tiles = [_rgb_uint8(r) for r in rows]
    grid = _tile(tiles, max(1, max(len(t) for t in tiles)), pad, tiles[0].shape[2:])
    return _save_png(grid, path, upscale)
