"""Label-free colour shifts of counterfactuals (generators.cgn.palette) and the
procedural validation texture set (causalkit.datasets.texture_sets)."""

import numpy as np
import pytest
from _cgn_helpers import flat_pair

from causalkit.datasets.texture_sets import (
    check_texture_spec,
    procedural_texture,
    texture_set_folder,
)
from causalkit.errors import CausalKitError, DataError
from generators.cgn.palette import palette_interventions, shift_colours, widen_palette


def _images(n=400, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)


def test_invert_flips_about_half_and_nothing_else():
    x = _images()
    y = widen_palette(x, "invert", seed=3)
    same = (y == x).all(axis=(1, 2, 3))
    flipped = (y == 255 - x).all(axis=(1, 2, 3))
    assert (same | flipped).all()
    assert 0.4 < flipped.mean() < 0.6


def test_hue_keeps_value_and_moves_hue():
    from skimage.color import rgb2hsv

    x = _images()
    y = widen_palette(x, "hue", seed=1)
    hx = rgb2hsv(x.transpose(0, 2, 3, 1) / 255.0)
    hy = rgb2hsv(y.transpose(0, 2, 3, 1) / 255.0)
    assert np.abs(hx[..., 2] - hy[..., 2]).max() <= 1.5 / 255
    # one rotation per image: the hue shift of its saturated pixels agrees
    sat = (hx[..., 1] > 0.5) & (hx[..., 2] > 0.3)
    shift = (hy[..., 0] - hx[..., 0]) % 1.0
    spread = [np.ptp(np.angle(np.exp(2j * np.pi * shift[i][sat[i]]))) for i in range(20)]
    assert max(spread) < 0.2
    assert np.std([np.median(shift[i][sat[i]]) for i in range(50)]) > 0.2


def test_seeded_and_checked():
    x = _images(50)
    assert np.array_equal(widen_palette(x, "hue+invert", seed=5),
                          widen_palette(x, "hue+invert", seed=5))
    assert not np.array_equal(widen_palette(x, "hue+invert", seed=5),
                              widen_palette(x, "hue+invert", seed=6))
    assert widen_palette(x, "none", seed=0) is x
    with pytest.raises(CausalKitError, match="unknown palette"):
        widen_palette(x, "rainbow", seed=0)
    with pytest.raises(CausalKitError, match="uint8 RGB"):
        widen_palette(x.astype(np.float32), "invert", seed=0)


def test_procedural_set(tmp_path):
    a = procedural_texture("object", 3)
    assert a.shape == (150, 150, 3) and a.dtype == np.uint8
    assert np.array_equal(a, procedural_texture("object", 3))
    assert not np.array_equal(a, procedural_texture("background", 3))
    assert a.std() > 10  # a texture, not a flat colour
    assert check_texture_spec("procedural:background") == ("procedural", ("background",))
    folder = texture_set_folder("procedural", root=tmp_path)
    for role in ("object", "background"):
        assert len(list((folder / role).glob("*.png"))) == 10
    with pytest.raises(DataError, match="unknown texture set"):
        check_texture_spec("noise")


def test_shift_colours_on_mechanism_values():
    import torch

    x = torch.as_tensor(_images(200, seed=2)).float() / 127.5 - 1.0
    rng = np.random.default_rng
    assert shift_colours(x, "none", rng(0)) is x
    y = shift_colours(x, "invert", rng(0))
    same = (y == x).flatten(1).all(1)
    flipped = torch.isclose(y, -x, atol=1e-6).flatten(1).all(1)
    assert bool((same | flipped).all()) and 0.35 < float(flipped.float().mean()) < 0.65
    assert torch.equal(y, shift_colours(x, "invert", rng(0)))
    h = shift_colours(x, "hue", rng(1))
    assert h.dtype == x.dtype and h.shape == x.shape
    value = lambda t: t.amax(dim=1)  # HSV value, kept by a hue rotation  # noqa: E731
    assert torch.allclose(value(h), value(x), atol=1e-5)
    assert (h - x).abs().amax() > 0.5
    with pytest.raises(CausalKitError, match="RGB"):
        shift_colours(x[:, :1], "hue", rng(0))


def test_mechanism_palette_shifts_digit_and_ground_independently():
    """Each counterfactual is m f' + (1 - m) b' with f' = +-f and b' = -+b drawn apart:
    all four sign pairs occur, which a shift of the composed image cannot give."""
    import torch

    from causalkit.interventions import Do

    f, b = -0.25, 0.5
    cgn, flat, plain, shifted = flat_pair(
        lambda cgn, flat: palette_interventions(cgn, "invert", flat), f, b)
    x = plain.images.astype(np.float64) / 127.5 - 1.0
    m = (b - x) / (b - f)  # the mask, from the unshifted image
    pairs = {(sf, sb): m * sf * f + (1 - m) * sb * b for sf in (1, -1) for sb in (1, -1)}
    x2 = shifted.images.astype(np.float64) / 127.5 - 1.0
    err = {k: np.abs(x2 - v).reshape(len(x2), -1).max(1) for k, v in pairs.items()}
    best = np.stack(list(err.values())).min(0)
    assert best.max() < 0.03
    seen = {k for k, e in err.items() if (e == best).any()}
    assert seen == set(pairs)
    with pytest.raises(CausalKitError, match="cannot transform the values"):
        palette_interventions(cgn, "hue", {"F": Do(torch.zeros(1, 3, 32, 32))})


def test_saturation_scales_each_image_by_one_factor():
    from skimage.color import rgb2hsv

    from generators.cgn.palette import PALETTES

    assert "hue+saturation+invert" in PALETTES and "invert+hue" not in PALETTES
    x = _images(100, seed=4)
    y = widen_palette(x, "saturation", seed=2)
    hx = rgb2hsv(x.transpose(0, 2, 3, 1) / 255.0)
    hy = rgb2hsv(y.transpose(0, 2, 3, 1) / 255.0)
    assert np.abs(hx[..., 2] - hy[..., 2]).max() <= 1.5 / 255  # value kept
    sat = hx[..., 1] > 0.5
    ratio = [np.median(hy[i][..., 1][sat[i]] / hx[i][..., 1][sat[i]]) for i in range(100)]
    assert min(ratio) < 0.1 and max(ratio) > 0.9  # from grey to the image's own colours
    assert all(0.0 <= r <= 1.0 + 1e-6 for r in ratio)
    # the inversion draws do not move when saturation joins the hue rotation
    both = widen_palette(x, "hue+saturation+invert", seed=2)
    hs = widen_palette(x, "hue+saturation", seed=2)
    flips = (widen_palette(x, "invert", seed=2) != x).any(axis=(1, 2, 3))
    assert np.array_equal(both[flips], 255 - hs[flips])
    assert np.array_equal(both[~flips], hs[~flips])


def test_contrast_scales_each_mask_by_one_draw():
    """With flat f and b, a counterfactual is b + c m (f - b): c per image, in [low, 1]."""

    from generators.cgn.contrast import contrast_interventions

    f, b = -0.8, 0.8
    cgn, flat, plain, low = flat_pair(
        lambda cgn, flat: contrast_interventions(cgn, 0.3, flat), f, b)
    depth = lambda s: b - (s.images.astype(np.float64) / 127.5 - 1.0)  # = m (b - f) c  # noqa: E731
    d0, d1 = depth(plain), depth(low)
    strong = d0 > 0.5  # pixels well inside the digit
    c = np.array([np.median(d1[i][strong[i]] / d0[i][strong[i]]) for i in range(len(d0))])
    assert c.min() >= 0.3 - 0.02 and c.max() <= 1.0 + 1e-6
    assert c.min() < 0.45 and c.max() > 0.85  # the draws spread over [low, 1]
    assert contrast_interventions(cgn, 1.0, flat) == flat
    with pytest.raises(CausalKitError, match=r"\(0, 1\]"):
        contrast_interventions(cgn, 0.0)
