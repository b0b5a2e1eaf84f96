"""The colour posterior of generators.cgn.mnist.colour: the mask target, its loss, and the
colour-abducted masks."""

import numpy as np
import pytest
import torch

from generators.cgn.mnist.colour import (
    class_colour_densities,
    colour_histograms,
    colour_masks,
    colour_posterior,
)
from generators.cgn.mnist.losses import mask_posterior_loss


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


def _digits(n=40, seed=0):
    # uint8 32 x 32 images: class 0 a red stroke on blue, class 1 a yellow stroke on
    # green; the stroke is a random 3-pixel-wide bar, its true mask returned alongside
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    colours = {0: ((220, 30, 30), (30, 30, 200)), 1: ((230, 220, 20), (20, 160, 40))}
    x = np.zeros((n, 3, 32, 32), np.uint8)
    truth = np.zeros((n, 1, 32, 32), bool)
    for i, c in enumerate(labels):
        col = rng.integers(6, 24)
        truth[i, 0, 4:28, col:col + 3] = True
        fg, bg = (np.array(v, np.uint8).reshape(3, 1, 1) for v in colours[c])
        x[i] = np.where(truth[i], fg, bg)
    return torch.as_tensor(x), torch.as_tensor(labels), torch.as_tensor(truth)


def test_colour_masks_recover_the_stroke_from_blobs_that_overreach():
    x, y, truth = _digits()
    # the CGN's masks: the stroke widened by two pixels on each side, a blob that takes
    # in a band of background, as a collapsed shape mechanism's
    blob = torch.nn.functional.max_pool2d(truth.float(), 5, stride=1, padding=2)
    m = colour_masks(x, y, blob, n_classes=2, radius=2, bins=16, chunk=7)
    assert m.shape == truth.shape and set(m.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(m > 0.5, truth)  # each pixel its own: the band falls away
    fg, bg = class_colour_densities(x, y, blob, 1 - blob, n_classes=2, bins=16, chunk=7)
    assert fg.shape == bg.shape == (2, 16 ** 3)
    assert torch.allclose(fg.sum(1), torch.ones(2)) and torch.allclose(bg.sum(1), torch.ones(2))
    # a class without images has uniform densities (its posterior is 0.5, no error)
    fg, bg = class_colour_densities(x, y, blob, 1 - blob, n_classes=3, bins=8)
    assert torch.allclose(fg[2], bg[2])


def test_guard_band_keeps_a_digit_part_the_cgn_missed_out_of_the_background():
    x, y, truth = _digits()
    x[:, :, 14:17] = torch.where(truth[:, :, 14:17], 255, x[:, :, 14:17])  # a white band
    masks = truth.float()
    masks[::2, :, 14:17] = 0.0  # half the CGN's masks leave the white part out
    m = colour_masks(x, y, masks, n_classes=2, radius=2, bins=16)
    assert torch.equal(m > 0.5, truth)
    # without the guard band the left-out white pixels count as background colours
    m0 = colour_masks(x, y, masks, n_classes=2, radius=0, bins=16)
    assert not (m0[::2, :, 14:17] > 0.5).any()


def test_far_pixels_of_the_digits_colour_stay_background():
    x, y, truth = _digits()
    for i in range(len(x)):  # a "vein" of the digit's own colour along the bottom row
        stroke = x[i, :, 10, int(truth[i, 0, 10].nonzero()[0])]
        x[i, :, 30, :] = stroke.view(3, 1)
    m = colour_masks(x, y, truth.float(), n_classes=2, radius=1, bins=16)
    assert not (m[:, :, 30] > 0.5).any() and torch.equal(m > 0.5, truth)
