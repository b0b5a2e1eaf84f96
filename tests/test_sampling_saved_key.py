"""``make_sampler(saved=...)`` reuses a saved directions file only when its key says this
very request made it; a file of another generator, ``k`` or fit, an unkeyed or a damaged
file is fitted again and overwritten (what ``causalkit generate`` does with its cache)."""

from __future__ import annotations

import numpy as np
import pytest

from generators.biggan import tiny_biggan
from generators.directions import Directions, directions_key, shortcut_directions
from generators.sampling import make_sampler


@pytest.fixture(scope="module")
def gen():
    return tiny_biggan(0)


def _refitted(setup, saved) -> bool:
    return setup.source == f"{saved} ({setup.directions.method})"


def test_matching_key_is_reused(gen, tmp_path):
    saved = tmp_path / "directions.npz"
    first = make_sampler(gen, "t=1,k=4,s=1", saved=saved)
    assert _refitted(first, saved)
    assert Directions.load(saved).matches(directions_key(gen, k=4))
    before = saved.read_bytes()
    again = make_sampler(gen, "t=1,k=4,s=1", saved=saved)
    assert again.source == str(saved) and saved.read_bytes() == before


def test_file_of_another_generator_is_refitted(gen, tmp_path):
    saved = tmp_path / "directions.npz"
    other = tiny_biggan(1)
    make_sampler(other, "t=1,k=4,s=1", saved=saved)
    stale = Directions.load(saved).components
    setup = make_sampler(gen, "t=1,k=4,s=1", saved=saved)
    assert _refitted(setup, saved)
    mine = shortcut_directions(gen).components
    assert not np.allclose(stale, mine)
    np.testing.assert_array_equal(Directions.load(saved).components, mine)
    assert Directions.load(saved).matches(directions_key(gen, k=4))


def test_other_k_or_fit_is_refitted(gen, tmp_path):
    saved = tmp_path / "directions.npz"
    make_sampler(gen, "t=1,k=4,s=1", saved=saved)
    assert _refitted(make_sampler(gen, "t=1,k=3,s=1", saved=saved), saved)
    assert Directions.load(saved).matches(directions_key(gen, k=3))
    assert _refitted(make_sampler(gen, "t=1,k=3,s=1", saved=saved, fit="shortcut"), saved)
    assert make_sampler(gen, "t=1,k=3,s=1", saved=saved, fit="shortcut").source == str(saved)


def test_unkeyed_and_damaged_files_are_refitted(gen, tmp_path):
    saved = tmp_path / "directions.npz"
    shortcut_directions(gen).save(saved)  # no key: what made it is unknown
    assert _refitted(make_sampler(gen, "t=1,k=4,s=1", saved=saved), saved)
    saved.write_bytes(b"not an npz file")
    assert _refitted(make_sampler(gen, "t=1,k=4,s=1", saved=saved), saved)
    assert Directions.load(saved).matches(directions_key(gen, k=4))
