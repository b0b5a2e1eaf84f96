"""Direction strips and image grids."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from causalkit.errors import CausalKitError
from generators.biggan import tiny_biggan
from generators.directions import shortcut_directions
from generators.images import save_grid
from generators.strips import direction_strips


def test_strips_move_only_along_one_direction(tmp_path):
    gen = tiny_biggan(0)
    dirs = shortcut_directions(gen)
    rows = direction_strips(gen, dirs, label=3, seed=0, directions=[0, 5], steps=5)
    assert rows.shape == (2, 5, 3, 32, 32)
    # The middle column is the unedited sample, shared by every row.
    assert torch.allclose(rows[0, 2], rows[1, 2], atol=1e-6)
    assert not torch.allclose(rows[0, 0], rows[0, 4], atol=1e-3)
    path = save_grid(rows, tmp_path / "g.png", upscale=2, pad=1)
    assert Image.open(path).size == (2 * (5 * 33 + 1), 2 * (2 * 33 + 1))
    with pytest.raises(CausalKitError, match="outside 0..7"):
        direction_strips(gen, dirs, label=0, seed=0, directions=[8])
    with pytest.raises(CausalKitError, match="expected"):
        save_grid(rows[0], tmp_path / "bad.png")
