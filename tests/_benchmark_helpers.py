"""A classifier whose answers are known by construction, and images that tell it what to say.

:class:`CodeClassifier` reads the colour of one pixel (the centre or the corner) and
answers the ImageNet index it encodes: ``index = 4 * R + G // 64``. An image painted in
the code of index ``k`` (:func:`code_image`) is therefore classified as ``k``, so every
benchmark's metric on a fixture can be counted by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


def code_colour(index: int) -> tuple[int, int, int]:
    return (index // 4, (index % 4) * 64 + 32, 128)


class CodeClassifier(nn.Module):
    """Logits 10 at the index the ``where`` pixel's colour encodes, 0 elsewhere."""

    def __init__(self, where: str = "centre") -> None:
        super().__init__()
        self.corner = where == "corner"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[2], images.shape[3]
        if self.corner:
            pixel = images[:, :, 4, 4]
        else:
            pixel = images[:, :, h // 2, w // 2]
        rgb = torch.round(pixel * 255.0)
        index = (rgb[:, 0] * 4 + torch.div(rgb[:, 1], 64, rounding_mode="floor")).long()
        index = index.clamp(0, 999)
        out = torch.zeros(images.shape[0], 1000, device=images.device)
        return out.scatter(1, index[:, None], 10.0)


def code_image(fg: int, bg: int | None = None, size: int = 224,
               fg_black: bool = False, bg_black: bool = False) -> np.ndarray:
    """A ``size`` square: background in ``bg``'s code, a central square in ``fg``'s."""
    bg = fg if bg is None else bg
    image = np.zeros((size, size, 3), np.uint8)
    if not bg_black:
        image[:] = code_colour(bg)
    q = size // 4
    image[q:size - q, q:size - q] = (0, 0, 0) if fg_black else code_colour(fg)
    return image


def save(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
