"""The MNIST CGN module: composer, patch shuffling, seeding, shapes, and the losses."""

from __future__ import annotations

import pytest
import torch

from generators.cgn.mnist.losses import (
    RandomTextureLoss,
    binary_entropy_loss,
    contrast_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mask_border_loss,
    mask_size_loss,
    mask_tv_loss,
)
from generators.cgn.mnist.model import MASK_EPS, MnistCGN, compose, random_shift
from generators.images import make_grid, to_float, to_uint8


def test_composer_selects_foreground_and_background():
    f = torch.full((2, 3, 4, 4), 0.5)
    b = torch.full((2, 3, 4, 4), -0.25)
    m = torch.zeros(2, 1, 4, 4)
    m[:, :, :2] = 1.0
    x = compose(m, f, b)
    assert torch.all(x[:, :, :2] == 0.5) and torch.all(x[:, :, 2:] == -0.25)
    half = compose(torch.full((2, 1, 4, 4), 0.5), f, b)
    assert torch.allclose(half, (f + b) / 2)


def test_random_shift_is_the_tiled_crop():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    off = torch.tensor([[1, 2], [0, 4]])
    out = random_shift(x, off)
    tiled = torch.cat([torch.cat([x, x], -1)] * 2, -2)  # 2 x 2 tiling
    for i, (dy, dx) in enumerate(off.tolist()):
        assert torch.equal(out[i], tiled[i, :, dy:dy + 5, dx:dx + 5])
    assert torch.equal(random_shift(x, torch.zeros(2, 2)), x)


def test_forward_shapes_ranges_and_seed():
    cgn = MnistCGN().eval()
    y = torch.arange(10)
    a = cgn(y, generator=torch.Generator().manual_seed(0))
    b = cgn(y, generator=torch.Generator().manual_seed(0))
    c = cgn(y, generator=torch.Generator().manual_seed(1))
    assert a.mask.shape == (10, 1, 32, 32) and a.foreground.shape == (10, 3, 32, 32)
    assert a.mask.min() >= MASK_EPS and a.mask.max() <= 1 - MASK_EPS
    assert a.image.abs().max() <= 1
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)


def test_mechanisms_are_independent_given_their_inputs():
    cgn = MnistCGN().eval()
    u = cgn.sample_noise(4, torch.Generator().manual_seed(0))
    y = torch.tensor([1, 2, 3, 4])
    base = cgn(y, y, y, u=(u, u, u), shuffle=False)
    cf = cgn(y, y.flip(0), y, u=(u, u, u), shuffle=False)  # change the texture label only
    assert torch.equal(base.mask, cf.mask) and torch.equal(base.background, cf.background)
    assert not torch.equal(base.foreground, cf.foreground)


def test_bad_labels_raise():
    cgn = MnistCGN()
    with pytest.raises(ValueError, match="labels must lie in"):
        cgn(torch.tensor([0, 10]))


def test_initialisation_is_seeded():
    a, b, c = MnistCGN(seed=1), MnistCGN(seed=1), MnistCGN(seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["f_shape.0.weight"], sc["f_shape.0.weight"])


def test_lsgan_losses():
    ones, zeros = torch.ones(5), torch.zeros(5)
    assert lsgan_generator_loss(ones) == 0 and lsgan_generator_loss(zeros) == 1
    assert lsgan_discriminator_loss(ones, zeros) == 0
    assert lsgan_discriminator_loss(zeros, ones) == 1


def test_binary_entropy_loss():
    assert binary_entropy_loss(torch.full((2, 1, 3, 3), 0.5)).item() == pytest.approx(1.0)
    binary = torch.randint(0, 2, (2, 1, 8, 8)).float().clamp(MASK_EPS, 1 - MASK_EPS)
    assert binary_entropy_loss(binary).item() < 0.01


def test_mask_size_hinge():
    tau = 0.1
    m = torch.zeros(3, 1, 10, 10)
    m[0, :, :, :5] = 1  # 50 %: inside the band
    m[1, :, :1, :5] = 1  # 5 %: below tau by 0.05
    m[2] = 1  # 100 %: above 1 - tau by 0.1
    per_image = [mask_size_loss(m[i:i + 1], tau).item() for i in range(3)]
    assert per_image == pytest.approx([0.0, 0.05, 0.1])
    with pytest.raises(ValueError):
        mask_size_loss(m, tau=0.6)
    # an upper bound of one half forbids the 100 % mask by 0.5, leaves 50 % alone
    capped = [mask_size_loss(m[i:i + 1], tau, upper=0.5).item() for i in (0, 2)]
    assert capped == pytest.approx([0.0, 0.5])


def test_mask_border_loss_is_the_frame_mean():
    m = torch.zeros(2, 1, 8, 8)
    m[0, :, 2:6, 2:6] = 1  # a centred object: frame empty
    m[1] = 1  # an inverted mask: frame full
    assert mask_border_loss(m[:1], width=2).item() == 0.0
    assert mask_border_loss(m[1:], width=2).item() == 1.0
    m[0, :, 0, 0] = 1  # one of the 48 frame pixels
    assert mask_border_loss(m[:1], width=2).item() == pytest.approx(1 / 48)
    with pytest.raises(ValueError, match="does not fit"):
        mask_border_loss(m, width=4)


def test_mask_tv_loss_counts_the_boundary():
    flat = torch.ones(1, 1, 8, 8)
    assert mask_tv_loss(flat).item() == 0.0
    block = torch.zeros(1, 1, 8, 8)
    block[..., :, :4] = 1  # one vertical edge: 8 of the 8 x 7 horizontal neighbour pairs
    assert mask_tv_loss(block).item() == pytest.approx(8 / 56)
    stripes = torch.zeros(1, 1, 8, 8)
    stripes[..., :, ::2] = 1  # every horizontal pair differs
    assert mask_tv_loss(stripes).item() == pytest.approx(1.0)


def test_contrast_loss_hinges_on_the_mean_colour_difference():
    black = -torch.ones(1, 3, 4, 4)
    assert contrast_loss(black, black, margin=0.2).item() == pytest.approx(0.2)
    grey = torch.zeros(1, 3, 4, 4)
    assert contrast_loss(grey, black, margin=0.2).item() == 0.0  # differ by 1 > 0.2
    near = black + 0.1
    assert contrast_loss(near, black, margin=0.2).item() == pytest.approx(0.1)


def test_texture_loss_prefers_matching_statistics():
    g = torch.Generator().manual_seed(0)
    loss = RandomTextureLoss()
    red = torch.zeros(8, 3, 32, 32)
    red[:, 0] = 0.8
    red = red + 0.05 * torch.randn(red.shape, generator=g)
    blue = red[:, [2, 1, 0]]
    red2 = red.roll(3, dims=3) + 0.05 * torch.randn(red.shape, generator=g)
    assert loss(red2, red) < loss(blue, red)
    stripes = torch.zeros(8, 3, 32, 32)
    stripes[:, :, ::2] = 0.8
    flat = torch.full((8, 3, 32, 32), 0.4)  # same mean colour, no texture
    assert loss(stripes.roll(1, dims=2), stripes) < loss(flat, stripes)
    fake = blue.clone().requires_grad_(True)
    loss(fake, red).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_uint8_roundtrip_and_grid():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    u8 = to_uint8(x)
    assert u8.dtype == torch.uint8
    assert (to_float(u8) - x).abs().max() <= 1 / 127.5
    grid = make_grid(u8, nrow=2)
    assert grid.shape == (2 * 10 + 2, 2 * 10 + 2, 3)
