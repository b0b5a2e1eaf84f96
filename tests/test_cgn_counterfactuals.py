"""Counterfactual data sets: uint8 storage, labels, noise held fixed, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from causalkit.errors import CausalKitError
from generators.cgn.counterfactuals import CounterfactualSet, generate_counterfactuals
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
