"""Image conversions and PNG grids without torchvision."""

from __future__ import annotations

import io
import os

import numpy as np
import torch

from causalkit.io import atomic_write_bytes

__all__ = ["to_uint8", "to_float", "make_grid", "save_grid"]


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] (N, C, H, W) -> uint8 in [0, 255], same shape."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 in [-1, 1]."""
    return x.float().div(127.5).sub(1.0)


def make_grid(images: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile uint8 (N, C, H, W) images (C = 1 or 3) into an RGB (H', W', 3) array."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    imgs = images.cpu().numpy()
    if imgs.shape[1] == 1:
        imgs = np.repeat(imgs, 3, axis=1)
    n, _, h, w = imgs.shape
    ncol = max(1, nrow)
    rows = (n + ncol - 1) // ncol
    grid = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = imgs[i].transpose(1, 2, 0)
    return grid


def save_grid(path: str | os.PathLike, images: torch.Tensor, nrow: int, scale: int = 2) -> None:
    """Atomically save images as one PNG grid (``scale`` x nearest-neighbour upsampling)."""
    from PIL import Image

    grid = make_grid(images, nrow)
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
