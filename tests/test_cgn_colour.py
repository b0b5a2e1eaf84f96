"""The colour-posterior mask target of generators.cgn.colour and its loss."""

import pytest
import torch

from generators.cgn.colour import colour_histograms, colour_posterior
from generators.cgn.losses import mask_posterior_loss


def _flat(rgb, n=2, size=8):
    # images in [-1, 1] of one colour, rgb in 0..255
    c = torch.tensor(rgb, dtype=torch.float32).div(127.5).sub(1).view(1, 3, 1, 1)
    return c.expand(n, 3, size, size).clone()


def test_histograms_are_densities_smoothed_by_one_bin():
    h = colour_histograms(_flat((200, 10, 10))[None], bins=8)
    assert h.shape == (1, 8 ** 3)
    assert h.sum().item() == pytest.approx(1.0, abs=1e-5)
    peak = (6 * 8 + 0) * 8 + 0  # the bin of (200, 10, 10)
    near = (5 * 8 + 0) * 8 + 0  # one bin darker in red
    far = (1 * 8 + 5) * 8 + 5
    assert h[0, peak] > h[0, near] > 100 * h[0, far] > 0


def test_posterior_tells_the_two_textures_apart_pixel_by_pixel():
    red, blue, green = (220, 20, 20), (20, 20, 220), (20, 220, 20)
    fg = colour_histograms(_flat(red, n=3)[None])
    bg = colour_histograms(_flat(blue, n=3)[None])
    x = _flat(blue, n=1)
    x[..., :4] = _flat(red, n=1)[..., :4]
    x[..., 0, 6:] = _flat(green, n=1)[..., 0, 6:]  # a colour neither texture has
    p = colour_posterior(x, fg, bg)
    assert p.shape == (1, 1, 8, 8)
    assert (p[..., :4] > 0.99).all()
    assert (p[..., 1:, 4:] < 0.01).all()
    assert p[0, 0, 0, 6].item() == pytest.approx(0.5)


def test_posterior_loss_ignores_unsure_pixels_and_prefers_the_posterior():
    post = torch.tensor([[[[0.99, 0.01, 0.5]]]])
    right = torch.tensor([[[[0.9, 0.1, 0.0]]]], requires_grad=True)
    inverted = torch.tensor([[[[0.1, 0.9, 1.0]]]])
    assert mask_posterior_loss(right, post) < mask_posterior_loss(inverted, post)
    mask_posterior_loss(right, post).backward()
    g = right.grad[0, 0, 0]
    assert g[0] < 0 < g[1]  # push towards 1 where p ~ 1, towards 0 where p ~ 0
    assert g[2] == 0  # p = 0.5 weighs nothing
