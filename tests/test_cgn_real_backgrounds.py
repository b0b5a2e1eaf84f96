"""Real backgrounds: training images with their digits cut out by the CGN's masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from generators.cgn.mnist.abduction import abduct_counterfactuals
from generators.cgn.mnist.encoder import MnistCGNEncoder
from generators.cgn.mnist.model import MnistCGN
from generators.cgn.mnist.real_backgrounds import DILATION, RealBackgrounds
from generators.images import to_float


def _bank(n_per_class: int = 3):
    """Images of class c are the flat grey level 20 * c + i (i: the image's index in its
    class); each one's digit is a 6x6 square at a class-specific place."""
    labels = np.repeat(np.arange(10), n_per_class)
    images = np.zeros((len(labels), 3, 32, 32), np.uint8)
    masks = torch.zeros(len(labels), 1, 32, 32)
    for k, c in enumerate(labels):
        images[k] = 20 * c + k % n_per_class
        r = 4 + 2 * (k % n_per_class)
        masks[k, :, r:r + 6, r:r + 6] = 0.9
    return images, labels, masks


def test_backgrounds_come_from_real_images_of_the_class_outside_their_digits():
    images, labels, masks = _bank()
    bank = RealBackgrounds(images, labels, masks)
    classes = np.array([0, 3, 3, 7, 9])
    fallback = torch.full((len(classes), 3, 32, 32), -1.0)  # black: nothing real there
    out = bank.draw(classes, fallback, np.random.default_rng(0))
    own = to_float(torch.as_tensor(images))[:, 0, 0, 0]
    for b, c in zip(out, classes, strict=True):
        # every pixel is one of the class's images or the fallback, never another class
        allowed = torch.cat([own[torch.as_tensor(labels == c)], torch.tensor([-1.0])])
        assert torch.isclose(b.reshape(-1, 1), allowed[None]).any(1).all()
    # the border is no digit's: real everywhere, from one image (the first fill)
    assert torch.all(out[:, :, 0, :] != -1.0)
    assert torch.all(out[:, :, 0, :] == out[:, :, 0, :1])
    # the squares, widened by DILATION, all cover rows/columns 8 - DILATION .. 9 +
    # DILATION: no real image shows background there, so the fallback stays
    lo, hi = 8 - DILATION, 10 + DILATION
    assert torch.all(out[:, :, lo:hi, lo:hi] == -1.0)
    assert not torch.all(out[:, :, lo - 1, lo - 1] == -1.0)


def test_draws_are_seeded():
    images, labels, masks = _bank()
    bank = RealBackgrounds(images, labels, masks)
    fb = torch.zeros(6, 3, 32, 32)
    a = bank.draw(np.arange(6), fb, np.random.default_rng(3))
    b = bank.draw(np.arange(6), fb, np.random.default_rng(3))
    assert torch.equal(a, b)


def test_every_class_needs_images():
    images, labels, masks = _bank()
    keep = labels != 4
    with pytest.raises(CausalKitError, match=r"class\(es\) \[4\]"):
        RealBackgrounds(images[keep], labels[keep], masks[keep])
    with pytest.raises(CausalKitError, match="one mask and one label"):
        RealBackgrounds(images, labels, masks[:-1])


def test_abducted_counterfactuals_with_real_backgrounds():
    cgn = MnistCGN(ngf=8, seed=0).eval()
    enc = MnistCGNEncoder(n_noise=1, seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    y = np.arange(20) % 10
    gen = abduct_counterfactuals(cgn, enc, x, y, per_image=2, seed=1, progress=False)
    real = abduct_counterfactuals(cgn, enc, x, y, per_image=2, seed=1, backgrounds="real",
                                  progress=False)
    again = abduct_counterfactuals(cgn, enc, x, y, per_image=2, seed=1, backgrounds="real",
                                   progress=False)
    assert real.meta["backgrounds"] == "real" and gen.meta["backgrounds"] == "generated"
    assert np.array_equal(real.images, again.images)
    assert np.array_equal(real.labels(), gen.labels())  # the same labels, other images
    assert not np.array_equal(real.images, gen.images)
    with pytest.raises(CausalKitError, match="unknown backgrounds"):
        abduct_counterfactuals(cgn, enc, x, y, backgrounds="photo", progress=False)


def test_abducted_counterfactuals_with_colour_masks(monkeypatch):
    import generators.cgn.mnist.abduction as cf

    cgn = MnistCGN(ngf=8, seed=0).eval()
    enc = MnistCGNEncoder(n_noise=1, seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    y = np.arange(20) % 10
    seen = {}

    def half(images, labels, masks, n_classes):  # a known abducted mask: the left half
        seen["masks"] = masks
        out = torch.zeros(len(images), 1, 32, 32)
        out[..., :16] = 1.0
        return out

    monkeypatch.setattr(cf, "colour_masks", half)
    s = abduct_counterfactuals(cgn, enc, x, y, per_image=10, seed=1, masks="colour",
                               progress=False)
    assert s.meta["masks"] == "colour" and seen["masks"].shape == (20, 1, 32, 32)
    # the mask node is the abducted one: within a noise draw, two counterfactuals with
    # the same background label agree on the right half whatever their textures
    pairs = 0
    for g in range(20):
        idx = np.flatnonzero(s.group == g)
        for i in idx:
            for j in idx[idx > i]:
                if s.background[i] == s.background[j] and s.texture[i] != s.texture[j]:
                    assert np.array_equal(s.images[i][..., 16:], s.images[j][..., 16:])
                    assert not np.array_equal(s.images[i][..., :16], s.images[j][..., :16])
                    pairs += 1
    assert pairs > 5
    cgn_masks = abduct_counterfactuals(cgn, enc, x, y, per_image=10, seed=1, progress=False)
    assert np.array_equal(cgn_masks.labels(), s.labels())  # same labels and noise
    with pytest.raises(CausalKitError, match="unknown masks"):
        abduct_counterfactuals(cgn, enc, x, y, masks="u2net", progress=False)
    with pytest.raises(CausalKitError, match="observed shape label"):
        abduct_counterfactuals(cgn, enc, x, y, masks="colour", progress=False,
                               randomise=("shape", "texture"))
