"""Counterfactual data sets: uint8 storage, labels, noise held fixed, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from generators.cgn.counterfactuals import (
    CounterfactualSet,
    abduct_counterfactuals,
    generate_counterfactuals,
)
from generators.cgn.encoder import MnistCGNEncoder
from generators.cgn.model import MnistCGN


@pytest.fixture(scope="module")
def cgn():
    return MnistCGN(ngf=8, seed=0).eval()


def test_shapes_dtypes_and_roundtrip(cgn, tmp_path):
    s = generate_counterfactuals(cgn, 10, per_noise=3, seed=0, progress=False)
    assert s.images.dtype == np.uint8 and s.images.shape == (10, 3, 32, 32)
    assert s.labels().shape == (10, 3) and s.labels().max() < 10
    assert np.array_equal(np.bincount(s.group), [3, 3, 3, 1])
    s.save(tmp_path / "cf.npz")
    t = CounterfactualSet.load(tmp_path / "cf.npz")
    assert np.array_equal(t.images, s.images) and t.meta == s.meta
    again = generate_counterfactuals(cgn, 10, per_noise=3, seed=0, progress=False)
    assert np.array_equal(again.images, s.images)


def test_noise_is_held_fixed_within_a_group(cgn):
    same = generate_counterfactuals(cgn, 12, per_noise=3, randomise=(), progress=False)
    for g in range(4):
        imgs = same.images[same.group == g]
        assert all(np.array_equal(imgs[0], im) for im in imgs[1:])
    assert np.array_equal(same.shape, same.texture) and np.array_equal(same.shape,
                                                                       same.background)
    bg = generate_counterfactuals(cgn, 300, per_noise=3, randomise=("background",),
                                  progress=False)
    assert np.array_equal(bg.shape, bg.texture)
    assert not np.array_equal(bg.shape, bg.background)
    for g in range(3):  # one shape label per noise draw
        assert len(set(bg.shape[bg.group == g])) == 1


def test_bad_arguments(cgn):
    with pytest.raises(CausalKitError, match="unknown mechanism"):
        generate_counterfactuals(cgn, 4, randomise=("colour",), progress=False)
    with pytest.raises(CausalKitError, match=">= 1"):
        generate_counterfactuals(cgn, 0, progress=False)


def _real(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 10


def test_abduction_keeps_each_real_digits_shape_and_redraws_the_rest(cgn):
    enc = MnistCGNEncoder(n_noise=1, seed=0)
    torch.nn.init.normal_(enc.head.weight, std=0.1)  # a posterior mean that depends on x
    x, y = _real()
    s = abduct_counterfactuals(cgn, enc, x, y, per_image=3, seed=1, progress=False)
    assert len(s) == 36 and s.meta["noise"] == "abducted"
    assert np.array_equal(s.shape, np.repeat(y, 3))  # the observed label is kept
    assert not np.array_equal(s.shape, s.texture) and not np.array_equal(s.shape,
                                                                         s.background)
    again = abduct_counterfactuals(cgn, enc, x, y, per_image=3, seed=1, progress=False)
    assert np.array_equal(again.images, s.images)
    # the shape noise comes from x: other images with the same labels, other masks
    x2 = np.roll(x, 5, axis=0)
    swapped = abduct_counterfactuals(cgn, enc, x2, y, per_image=3, seed=1, progress=False)
    assert not np.array_equal(swapped.images, s.images)


def test_abduction_rejects_bad_images(cgn):
    enc = MnistCGNEncoder(seed=0)
    x, y = _real()
    with pytest.raises(CausalKitError, match="uint8"):
        abduct_counterfactuals(cgn, enc, x.astype(np.float32), y, progress=False)
    with pytest.raises(CausalKitError, match="N labels"):
        abduct_counterfactuals(cgn, enc, x, y[:-1], progress=False)
