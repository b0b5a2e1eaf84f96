"""generators.sampling.make_sampler: which directions a strategy moves along."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from generators.biggan import tiny_biggan
from generators.directions import default_directions, shortcut_directions
from generators.sampling import make_sampler
from generators.strategies import InterventionSampler, parse_strategy


@pytest.fixture(scope="module")
def gen():
    return tiny_biggan(0)


def _same_images(a: InterventionSampler, b: InterventionSampler) -> bool:
    labels = torch.arange(4)
    return torch.equal(a.sample(labels, seed=3)[0], b.sample(labels, seed=3)[0])


def test_fitted_directions_are_the_default_ones(gen):
    sampler, dirs, source = make_sampler(gen, "t=1,k=4,s=1")
    expected = default_directions(gen, k=4)
    assert np.array_equal(dirs.components, expected.components)
    assert source == "fitted (shortcut)"
    assert _same_images(sampler, InterventionSampler(gen, parse_strategy("t=1,k=4,s=1"),
                                                     expected))


def test_observational_strategies_move_along_nothing(gen):
    setup = make_sampler(gen, "observational:t=0.5", directions=shortcut_directions(gen))
    assert setup.directions is None and setup.source is None
    assert setup.sampler.num_offsets == 0


def test_saved_directions_are_written_once_then_read_back(gen, tmp_path):
    saved = tmp_path / "directions.npz"
    first = make_sampler(gen, "t=1,k=4,s=1", saved=saved)
    assert saved.is_file() and first.source == f"{saved} (shortcut)"
    again = make_sampler(gen, "t=1,k=4,s=1", saved=saved)
    assert again.source == str(saved)
    assert _same_images(first.sampler, again.sampler)
    with pytest.raises(CausalKitError, match="use a new --out folder"):
        make_sampler(gen, "t=1,k=4,s=1", saved=saved, layer="generator.gen_z.other")


def test_given_directions_win_and_exclude_a_layer(gen, tmp_path):
    path = shortcut_directions(gen).save(tmp_path / "d.npz")
    assert make_sampler(gen, "t=1,k=4,s=1", directions=path).source == str(path)
    assert make_sampler(gen, "t=1,k=4,s=1",
                        directions=shortcut_directions(gen)).source == "given"
    with pytest.raises(CausalKitError, match="not both"):
        make_sampler(gen, "t=1,k=4,s=1", directions=path, layer="generator.gen_z")


def test_top_k_keeps_the_strategy_s_directions_and_names_k(gen):
    setup = make_sampler(gen, "t=1,k=4,s=1", fit="shortcut", top_k=True)
    assert setup.directions.k == 4
    # the top k are what sampling moves along anyway: the images do not change
    assert _same_images(setup.sampler, make_sampler(gen, "t=1,k=4,s=1").sampler)
    with pytest.raises(CausalKitError, match="k=60 directions but only 8 are available"):
        make_sampler(gen, "t=1,k=60,s=1", top_k=True)
    with pytest.raises(CausalKitError, match="only 8 are stored"):
        make_sampler(gen, "t=1,k=60,s=1")
    with pytest.raises(CausalKitError, match="unknown fit"):
        make_sampler(gen, "t=1,k=4,s=1", fit="pca")
