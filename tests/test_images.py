"""The one image-conversion and grid module (generators.images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from causalkit.errors import CausalKitError
from generators.images import make_grid, save_grid, save_strip, to_float, to_uint8


def test_conversions_round_trip_and_clamp():
    u8 = torch.arange(256, dtype=torch.uint8)
    x = to_float(u8)
    assert x.dtype == torch.float32 and x[0] == -1 and x[-1] == 1
    assert torch.equal(to_uint8(x), u8)  # every grey level survives the round trip
    out = to_uint8(torch.tensor([-5.0, -1.0001, 1.0001, 7.0, float("inf"), float("-inf")]))
    assert out.tolist() == [0, 0, 255, 255, 255, 0]
    assert to_uint8(torch.zeros(1)).tolist() == [128]  # 127.5 rounds half to even


def test_keep_float_passes_float_images_through():
    f = torch.rand(2, 3, 4, 4, dtype=torch.float64) * 2 - 1
    assert torch.equal(to_float(f, keep_float=True), f.float())
    assert torch.equal(to_float(f), f.float().div(127.5).sub(1.0))  # the default rescales
    u8 = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(to_float(u8, keep_float=True), to_float(u8))


def test_grid_layout_4d_and_5d_agree(tmp_path):
    x = torch.rand(2, 5, 3, 6, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    grid = make_grid(x)
    assert grid.shape == (2 * 8 + 2, 5 * 8 + 2, 3)
    assert np.array_equal(grid, make_grid(x.flatten(0, 1), nrow=5))
    assert (grid[:2] == 255).all()  # white frame
    assert np.array_equal(grid[2:8, 2:8], to_uint8(x[0, 0]).permute(1, 2, 0).numpy())
    partial = make_grid(to_uint8(x.flatten(0, 1))[:7, :1], nrow=5)  # grey, last row partial
    assert partial.shape == grid.shape and (partial[10:16, 18:] == 255).all()
    path = save_grid(x, tmp_path / "g.png", upscale=2, pad=1)
    assert Image.open(path).size == (2 * (5 * 7 + 1), 2 * (2 * 7 + 1))
    with pytest.raises(CausalKitError, match="nrow"):
        save_grid(x[0], tmp_path / "bad.png")
    with pytest.raises(CausalKitError, match="columns"):
        make_grid(x, nrow=3)


def test_strip_rows_of_different_lengths(tmp_path):
    rows = [torch.zeros(3, 3, 4, 4), torch.ones(1, 3, 4, 4), torch.zeros(0, 3, 4, 4)]
    path = save_strip(rows, tmp_path / "s.png", upscale=1)
    img = np.asarray(Image.open(path))
    assert img.shape == (3 * 6 + 2, 3 * 6 + 2, 3)
    assert (img[8:12, 2:6] == 255).all() and (img[8:12, 8:12] == 255).all()
    assert (img[2:6, 2:6] == 128).all()
    with pytest.raises(CausalKitError, match="at least one row"):
        save_strip([], tmp_path / "none.png")
