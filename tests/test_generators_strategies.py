"""GenInt strategies on a generator: seeding, offset ranges, class independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from causalkit.interventions import LatentStrategy
from generators.biggan import tiny_biggan
from generators.directions import Directions, shortcut_directions
from generators.strategies import (
    InterventionSampler,
    Observational,
    parse_strategy,
    sample_latents,
)


@pytest.fixture(scope="module")
def gen():
    return tiny_biggan(0)


@pytest.fixture(scope="module")
def dirs(gen):
    return shortcut_directions(gen)


def test_same_seed_same_images(gen, dirs):
    sampler = InterventionSampler(gen, LatentStrategy(0.7, 6, 1.5, per_sample=3), dirs)
    labels = [0, 1, 2, 3, 4, 5, 6, 7]
    a, la = sampler.sample(labels, seed=11)
    b, lb = sampler.sample(labels, seed=11)
    c, _ = sampler.sample(labels, seed=12)
    assert torch.equal(a, b) and torch.equal(la.offsets, lb.offsets)
    assert not torch.allclose(a, c)
    # A torch.Generator is consumed in place: two draws differ, a re-seeded one repeats.
    g = torch.Generator().manual_seed(11)
    first, _ = sampler.sample(labels, seed=g)
    second, _ = sampler.sample(labels, seed=g)
    assert torch.equal(first, a) and not torch.equal(second, a)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_offsets_stay_in_range_and_cover_it(dirs, scale):
    strategy = LatentStrategy(1.0, 6, scale, per_sample=4)
    batch = sample_latents(strategy, 4000, 8, directions=dirs, seed=0)
    r = scale * 2.0 * dirs.stds[:6]  # r_j = 2 std_j
    off = batch.offsets.numpy()
    assert off.shape == (4000, 6)
    assert np.all(np.abs(off) <= r + 1e-6)
    assert np.all((off != 0).sum(axis=1) == 4)  # exactly per_sample directions move
    # Uniform on [-s r_j, s r_j]: extremes reached, mean ~0, variance (s r_j)^2 / 3.
    for j in range(6):
        used = off[:, j][off[:, j] != 0]
        assert np.abs(used).max() > 0.98 * r[j]
        assert abs(used.mean()) < 0.05 * r[j]
        assert used.var() == pytest.approx(r[j] ** 2 / 3, rel=0.1)
    # Every direction is chosen about equally often (4 of 6).
    assert np.allclose((off != 0).mean(axis=0), 4 / 6, atol=0.03)
    # The edit is z* = z + sum_j o_j u_j.
    expected = batch.z + batch.offsets @ torch.from_numpy(dirs.components[:6])
    assert torch.allclose(batch.z_star, expected, atol=1e-6)
    assert batch.z.abs().max() <= 2.0


def test_strategy_is_identical_across_classes(gen, dirs):
    sampler = InterventionSampler(gen, LatentStrategy(1.0, 8, 1.0), dirs)
    imgs_a, a = sampler.sample([0] * 6, seed=3)
    imgs_b, b = sampler.sample([7] * 6, seed=3)
    _, c = sampler.sample([0, 1, 2, 3, 4, 5], seed=3)
    for other in (b, c):
        assert torch.equal(a.offsets, other.offsets)
        assert torch.equal(a.z_star, other.z_star)
        assert torch.equal(a.chosen, other.chosen)
    assert not torch.allclose(imgs_a, imgs_b)  # the class still changes the image


def test_centered_variant_sets_the_coordinate(dirs):
    strategy = LatentStrategy(1.0, 8, 1.0, per_sample=3, centered=True)
    batch = sample_latents(strategy, 50, 8, directions=dirs, seed=1)
    u = torch.from_numpy(dirs.components)
    coords_before, coords_after = batch.z @ u.T, batch.z_star @ u.T
    moved = batch.offsets != 0
    # Chosen coordinates become the offsets; the others are untouched.
    assert torch.allclose(coords_after[moved], batch.offsets[moved], atol=1e-5)
    assert torch.allclose(coords_after[~moved], coords_before[~moved], atol=1e-5)
    additive = sample_latents(LatentStrategy(1.0, 8, 1.0, per_sample=3), 50, 8,
                              directions=dirs, seed=1)
    assert torch.equal(additive.offsets, batch.offsets)  # same randomness, other edit
    assert not torch.allclose(additive.z_star, batch.z_star)


def test_centered_variant_with_non_orthogonal_directions():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(5, 8))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    d = Directions(u, np.ones(5), np.ones(5))
    batch = sample_latents(LatentStrategy(1.0, 5, 1.0, per_sample=2, centered=True), 20, 8,
                           directions=d, seed=0)
    for i in range(20):
        j = batch.chosen[i]
        u_s = torch.from_numpy(u[j.numpy()]).float()
        # Coordinates in the chosen (oblique) basis become the offsets.
        coords = torch.linalg.lstsq(u_s.T, (batch.z_star[i] - batch.z[i]).unsqueeze(1)
                                    ).solution.squeeze(1)
        before = torch.linalg.lstsq(u_s.T, batch.z[i].unsqueeze(1)).solution.squeeze(1)
        assert torch.allclose(coords + before, batch.offsets[i, j], atol=1e-4)


def test_observational_baseline(gen, dirs):
    strat = parse_strategy("observational:t=0.2")
    assert strat == Observational(0.2) and str(strat) == "observational:t=0.2"
    obs = sample_latents(strat, 10, 8, seed=4)
    assert obs.offsets.shape == (10, 0) and torch.equal(obs.z, obs.z_star)
    assert obs.z.abs().max() <= 0.4 + 1e-6
    paired = sample_latents(LatentStrategy(0.2, 4, 1.0), 10, 8, directions=dirs, seed=4)
    assert torch.equal(paired.z, obs.z)  # same seed, same noise: the two are paired
    imgs, _ = InterventionSampler(gen, strat).sample(list(range(10)), seed=4)
    assert imgs.shape == (10, 3, 32, 32)


def test_parse_and_validation(gen, dirs):
    assert parse_strategy("t=1,k=60,s=1") == LatentStrategy(1.0, 60, 1.0)
    assert parse_strategy("observational") == Observational(0.2)
    with pytest.raises(CausalKitError, match="only t="):
        parse_strategy("observational:k=3")
    with pytest.raises(CausalKitError, match="0 < t <= 1"):
        parse_strategy("observational:t=0")
    with pytest.raises(CausalKitError, match="needs directions"):
        InterventionSampler(gen, LatentStrategy(1.0, 4, 1.0))
    with pytest.raises(CausalKitError, match="only 8 are stored"):
        InterventionSampler(gen, LatentStrategy(1.0, 60, 1.0), dirs)
    wide = Directions(np.eye(16)[:4], np.ones(4), np.ones(4))
    with pytest.raises(CausalKitError, match="16 dimensions but the generator's z has 8"):
        InterventionSampler(gen, LatentStrategy(1.0, 4, 1.0), wide)
