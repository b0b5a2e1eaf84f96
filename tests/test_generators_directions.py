"""GANSpace directions: PCA + regression against the exact SVD shortcut; saving."""

from __future__ import annotations

import numpy as np
import pytest

from causalkit.errors import CausalKitError, DataError
from generators.base import TRUNCNORM_STD
from generators.biggan import tiny_biggan
from generators.directions import (
    Directions,
    fit_pca_directions,
    interleave_directions,
    shortcut_directions,
    subspace_overlap,
)


@pytest.fixture(scope="module")
def gen():
    return tiny_biggan(0)


@pytest.fixture(scope="module")
def pca(gen):
    return fit_pca_directions(gen, n_samples=4000, seed=0, progress=False)


def test_pca_plus_regression_matches_the_shortcut(gen, pca):
    short = shortcut_directions(gen)
    assert pca.method == "pca" and short.method == "shortcut" and pca.n_samples == 4000
    for k in range(1, gen.z_dim):
        assert subspace_overlap(pca.top(k), short.top(k)) >= 0.98, k
    # Directions agree one by one (canonical signs), not only as subspaces.
    cos = np.abs((pca.components * short.components).sum(axis=1))
    assert cos[:4].min() > 0.98
    # Variances along the axes and latent stds agree with the closed form.
    np.testing.assert_allclose(pca.explained_variance, short.explained_variance, rtol=0.1)
    np.testing.assert_allclose(pca.stds, TRUNCNORM_STD, rtol=0.05)
    np.testing.assert_allclose(short.stds, TRUNCNORM_STD, rtol=1e-6)


def test_overlap_detects_different_subspaces(gen):
    short = shortcut_directions(gen)
    flipped = Directions(short.components[::-1].copy(), short.stds, short.explained_variance)
    assert subspace_overlap(short.top(8), flipped.top(8)) == pytest.approx(1.0)
    assert subspace_overlap(short.components[:2], short.components[2:4]) < 1e-10


def test_fit_is_seeded_and_hooks_are_removed(gen):
    def fit(seed):
        return fit_pca_directions(gen, n_samples=1000, seed=seed, progress=False)

    first, again, other = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(again.components, first.components)
    np.testing.assert_array_equal(again.stds, first.stds)
    assert not np.array_equal(other.components, first.components)
    assert all(not m._forward_hooks for m in gen.layers().values())


def test_a_deeper_layer_works(gen):
    d = fit_pca_directions(gen, k=3, layer="generator.layers.0", n_samples=200,
                           batch_size=100, progress=False)
    assert d.components.shape == (3, 8) and d.layer == "generator.layers.0"
    np.testing.assert_allclose(np.linalg.norm(d.components, axis=1), 1.0, atol=1e-6)
    assert np.all(d.stds > 0) and np.all(np.diff(d.explained_variance) <= 0)


def test_save_and_load_roundtrip(pca, tmp_path):
    path = pca.save(tmp_path / "d.npz")
    back = Directions.load(path)
    np.testing.assert_array_equal(back.components, pca.components)
    np.testing.assert_array_equal(back.stds, pca.stds)
    assert (back.layer, back.method, back.n_samples) == (pca.layer, "pca", 4000)
    assert not list(tmp_path.glob(".*"))
    np.save(tmp_path / "bad.npy", np.zeros(3))
    (tmp_path / "bad.npz").write_bytes((tmp_path / "bad.npy").read_bytes())
    with pytest.raises(DataError, match="not a directions file"):
        Directions.load(tmp_path / "bad.npz")


def test_bad_arguments(gen, pca):
    with pytest.raises(CausalKitError, match="k must be in 1..8"):
        fit_pca_directions(gen, k=9, progress=False)
    with pytest.raises(CausalKitError, match="batch_size >= k"):
        fit_pca_directions(gen, k=8, batch_size=8, progress=False)
    with pytest.raises(CausalKitError, match="no layer named"):
        fit_pca_directions(gen, layer="generator.nope", n_samples=100, batch_size=100,
                           progress=False)
    with pytest.raises(CausalKitError, match="only 8 are stored"):
        pca.top(60)
    with pytest.raises(DataError, match="unit norm"):
        Directions(np.ones((2, 8)), np.ones(2), np.ones(2))


def test_interleave_joins_layer_wise_directions_rank_by_rank():
    from generators.small_gan import SmallGANConfig, build_small_gan

    g = build_small_gan(SmallGANConfig(z_dim=8, emb_dim=4, ngf=4, block_latent=True), seed=0)
    for block in g.module.blocks:  # fresh block affines are zero: give the chunks a use
        block.affine.weight.data.normal_()
    parts = [fit_pca_directions(g, k=2, layer=f"blocks.{i}.affine", n_samples=2000,
                                progress=False) for i in (0, 2)]
    # Each layer's directions live in its own chunk of z (chunk i + 1 feeds block i).
    for d, chunk in zip(parts, (1, 3), strict=True):
        outside = np.delete(d.components, np.s_[2 * chunk:2 * chunk + 2], axis=1)
        assert np.abs(outside).max() < 0.1  # regression noise only
    joined = interleave_directions(parts)
    assert joined.k == 4 and joined.layer == "blocks.0.affine+blocks.2.affine"
    np.testing.assert_array_equal(joined.components[[0, 2]], parts[0].components)
    np.testing.assert_array_equal(joined.components[[1, 3]], parts[1].components)
    np.testing.assert_array_equal(joined.stds[[1, 3]], parts[1].stds)
    assert interleave_directions(parts[:1]).k == 2
    with pytest.raises(CausalKitError, match="at least one"):
        interleave_directions([])
    with pytest.raises(CausalKitError, match="share z_dim"):
        interleave_directions([parts[0], Directions(np.eye(2, 6), np.ones(2), np.ones(2))])


def test_a_layer_narrower_than_k_is_named():
    from generators.small_gan import SmallGANConfig, build_small_gan

    g = build_small_gan(SmallGANConfig(z_dim=8, emb_dim=4, ngf=4), seed=0)
    with pytest.raises(CausalKitError, match="has 4 activations, fewer than the k=6"):
        fit_pca_directions(g, k=6, layer="blocks.2.affine", n_samples=256, progress=False)
