"""Random textures and the intervention that puts them on CGN mechanism nodes
(generators.cgn.random_textures), and the stack of label-free interventions
(generators.cgn.nuisances)."""

import numpy as np
import pytest
import torch
from _cgn_helpers import flat_pair

from causalkit.errors import CausalKitError
from generators.cgn.nuisances import MechanismNuisances
from generators.cgn.random_textures import FAMILIES, random_texture_interventions


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_textures_are_seeded_bounded_and_varied(family):
    rng, draw = np.random.default_rng, FAMILIES[family]
    t = draw(64, (32, 24), rng(0))
    assert t.shape == (64, 3, 32, 24) and t.dtype == torch.float32
    assert float(t.abs().max()) <= 1.0
    assert torch.equal(t, draw(64, (32, 24), rng(0)))
    assert not torch.equal(t, draw(64, (32, 24), rng(1)))
    assert draw(0, (8, 8), rng(0)).shape == (0, 3, 8, 8)
    colours = t.mean(dim=(2, 3))  # each texture's mean colour
    assert float(colours.std(0).min()) > 0.2  # spread over every channel
    busy = (t[..., 1:, :] - t[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    assert float(busy.max() / busy.min()) > 3  # smooth ones and busy ones


def _flat_neighbours(t):
    """The fraction of vertically adjacent pixel pairs of exactly the same colour."""
    return float((t[..., 1:, :] == t[..., :-1, :]).all(1).float().mean())


def test_dead_leaves_are_flat_patches_with_sharp_edges_and_features_are_not():
    rng = np.random.default_rng
    leaves = FAMILIES["dead-leaves"](64, (32, 32), rng(0))
    features = FAMILIES["features"](64, (32, 32), rng(0))
    assert _flat_neighbours(leaves) > 0.6 and _flat_neighbours(features) < 0.05
    # and the leaves cover a range of sizes: some textures have few edges, some many
    edges = 1 - (leaves[..., 1:, :] == leaves[..., :-1, :]).all(1).float().mean(dim=(1, 2))
    assert float(edges.max()) > 3 * float(edges.min())


def _digit_and_ground(plain, f, b):
    x = plain.images.astype(np.float64) / 127.5 - 1.0
    m = ((b - x) / (b - f)).mean(1)  # the mask, from the flat composition
    return x, m > 0.99, m < 0.5


def test_random_backgrounds_replace_a_fraction_of_grounds_and_keep_digits():
    f, b = -0.6, 0.6
    cgn, flat, plain, other = flat_pair(
        lambda cgn, flat: random_texture_interventions(cgn, {"background": 0.5}, flat), f, b)
    x, digit, ground = _digit_and_ground(plain, f, b)
    x2 = other.images.astype(np.float64) / 127.5 - 1.0
    diff = np.abs(x2 - x).max(1)  # over channels
    assert digit.any(axis=(1, 2)).all() and ground.any(axis=(1, 2)).all()
    # digits kept: at most 0.01 of the new ground shows through, plus rounding
    assert max(diff[i][digit[i]].max() for i in range(len(x))) < 0.04
    replaced = np.array([diff[i][ground[i]].mean() > 0.05 for i in range(len(x))])
    untouched = np.array([diff[i].max() < 0.01 for i in range(len(x))])
    assert (replaced | untouched).all() and 0.3 < replaced.mean() < 0.7
    again = flat_pair(lambda cgn, flat: random_texture_interventions(
        cgn, {"background": 0.5}, flat), f, b)[3]
    assert np.array_equal(again.images, other.images)  # seeded by the run


def test_random_digit_textures_replace_fills_and_keep_grounds():
    f, b = -0.6, 0.6
    cgn, flat, plain, other = flat_pair(
        lambda cgn, flat: random_texture_interventions(cgn, {"texture": 1.0}, flat), f, b)
    x, digit, ground = _digit_and_ground(plain, f, b)
    diff = np.abs(other.images.astype(np.float64) / 127.5 - 1.0 - x).max(1)
    far = (x.mean(1) - b) ** 2 < 1e-4  # pure ground: mask ~ 0
    assert max(diff[i][far[i]].max() for i in range(len(x)) if far[i].any()) < 0.03
    assert all(diff[i][digit[i]].mean() > 0.05 for i in range(len(x)))


def test_the_family_picks_the_textures_a_run_draws():
    f, b = -0.6, 0.6
    equal = {}
    for family in ("dead-leaves", "features"):
        _, _, plain, other = flat_pair(lambda cgn, flat, family=family: (
            random_texture_interventions(cgn, {"background": 1.0}, flat, family=family)), f, b)
        x, y = plain.images, other.images
        ground = (x == np.uint8(round((b + 1) * 127.5))).all(1)  # pure ground pixels
        pairs = ground[:, 1:] & ground[:, :-1]  # vertical neighbours, both pure ground
        assert pairs.sum() > 1000
        equal[family] = (y[:, :, 1:] == y[:, :, :-1]).all(1)[pairs].mean()
    # a dead-leaves ground is flat between its edges; a random-feature one nowhere
    assert equal["dead-leaves"] > 0.5 and equal["features"] < 0.05


def test_nuisances_are_checked_when_made_and_record_what_is_set():
    with pytest.raises(CausalKitError, match="unknown random-texture family 'clouds'"):
        MechanismNuisances(random_textures={"background": 0.5}, random_family="clouds")
    with pytest.raises(CausalKitError, match=r"\[0, 1\]"):
        MechanismNuisances(random_textures={"texture": 2.0})
    with pytest.raises(CausalKitError):
        MechanismNuisances(palette="rainbow")
    n = MechanismNuisances(contrast=0.5, random_textures={"texture": 0.0, "background": 0.25},
                           random_family="dead-leaves")
    assert n.random_textures == {"background": 0.25}
    assert n.meta == {"contrast": 0.5, "random_textures": {"background": 0.25},
                      "random_family": "dead-leaves"}


def test_rates_are_checked():
    from generators.cgn.mnist import MnistCGN

    cgn = MnistCGN(ngf=8, seed=0)
    assert random_texture_interventions(cgn, {"background": 0.0, "texture": 0}) == {}
    with pytest.raises(CausalKitError, match=r"\[0, 1\]"):
        random_texture_interventions(cgn, {"background": 1.5})
    with pytest.raises(CausalKitError, match="not 'shape'"):
        random_texture_interventions(cgn, {"shape": 0.5})
    from causalkit.interventions import Do

    with pytest.raises(CausalKitError, match="cannot transform the values"):
        random_texture_interventions(cgn, {"background": 0.5},
                                     {"B": Do(torch.zeros(1, 3, 32, 32))})
