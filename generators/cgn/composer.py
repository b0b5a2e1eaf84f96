"""The fixed composer of a counterfactual generative network.

Sauer & Geiger's CGN splits image generation into independent mechanisms -- a mask
``m`` (the shape), a foreground ``f`` (the texture) and a background ``b`` -- and puts
them together with an analytic, parameter-free composer

    x = m * f + (1 - m) * b,

so that every pixel is either the object's texture (``m = 1``) or the background
(``m = 0``), blended where the mask is soft. It does not care about image size, channel
count or value range: the mask broadcasts over the channels of ``f`` and ``b``.

>>> import torch
>>> m = torch.tensor([[[[1.0, 0.0]]]])                      # (N, 1, H, W)
>>> f, b = torch.full((1, 3, 1, 2), 0.5), torch.full((1, 3, 1, 2), -1.0)
>>> compose(m, f, b)[0, :, 0].tolist()
[[0.5, -1.0], [0.5, -1.0], [0.5, -1.0]]
"""

from __future__ import annotations

from typing import Any

__all__ = ["compose"]


def compose(mask: Any, foreground: Any, background: Any) -> Any:
    """The analytic composer ``x = m * f + (1 - m) * b`` (mask broadcast over channels).

    Parameters
    ----------
    mask : tensor (N, 1, H, W) in [0, 1]
        The shape mechanism's mask.
    foreground, background : tensors (N, C, H, W)
        The texture and background mechanisms' images.

    Returns
    -------
    tensor (N, C, H, W)
        The composed image.
    """
    return mask * foreground + (1 - mask) * background
