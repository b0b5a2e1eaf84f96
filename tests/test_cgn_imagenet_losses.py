"""The ImageNet CGN's losses, each against its formula (the official shared/losses.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from causalkit.errors import CausalKitError
from generators.cgn.imagenet import losses as L


class _Maps(nn.Module):
    """Two fixed feature maps of a [0, 1] image: the image and its 2x2 average pool."""

    def forward(self, x):
        return [x * 2.0, F.avg_pool2d(x, 2)]


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_l1_binary_mask_and_background_formulas():
    x, y = _rand(2, 3, 4, 4, seed=1) * 2 - 1, _rand(2, 3, 4, 4, seed=2) * 2 - 1
    assert torch.isclose(L.reconstruction_l1(x, y), 100 * (x - y).abs().mean())
    m = _rand(2, 1, 4, 4, seed=3).clamp(0.01, 0.99)
    h = [-p * math.log2(p) - (1 - p) * math.log2(1 - p) for p in m.flatten().tolist()]
    assert L.binary_entropy(m).item() == pytest.approx(300 * sum(h) / len(h), rel=1e-5)
    assert L.binary_entropy(torch.full((1, 1, 2, 2), 0.5)).item() == pytest.approx(300.0)
    means = torch.tensor([0.05, 0.5, 0.95, 0.1])
    masks = means[:, None, None, None].expand(4, 1, 3, 3)
    got = L.mask_interval(masks)
    assert got.tolist() == pytest.approx([500 * 0.05, 0.0, 500 * 0.05, 0.0], abs=1e-4)
    sal = _rand(3, 1, 5, 5, seed=4)
    assert torch.allclose(L.background_saliency(sal), 2000 * sal.mean(dim=(1, 2, 3)))


def test_gram_and_perceptual_formula():
    f = _rand(2, 3, 4, 5, seed=5)
    ref = torch.einsum("bchw,bdhw->bcd", f, f) / (3 * 4 * 5)
    assert torch.allclose(L.gram_matrix(f), ref)
    x, y = _rand(1, 3, 8, 8, seed=6) * 2 - 1, _rand(1, 3, 8, 8, seed=7) * 2 - 1
    feats = _Maps()
    fx, fy = feats((x + 1) / 2), feats((y + 1) / 2)
    w = (4.0, 3.0)
    ref = sum(wi ** 2 * 5e3 * (L.gram_matrix(a) - L.gram_matrix(b)).abs().mean()
              for wi, a, b in zip(w, fx, fy, strict=True))
    assert torch.isclose(L.perceptual(feats, x, y, weights=w), ref)
    content = sum(c * (a - b).abs().mean() for c, a, b in zip((1.0, 2.0), fx, fy, strict=True))
    assert torch.isclose(L.perceptual(feats, x, y, weights=(0, 0), content=(1.0, 2.0)),
                         content)
    x.requires_grad_(True)
    y.requires_grad_(True)
    L.perceptual(feats, x, y, weights=w).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and y.grad is None
    with pytest.raises(CausalKitError, match="weight per"):
        L.perceptual(feats, x, y, weights=(1.0, 1.0, 1.0))


def _official_patch_grid(mask, image, patch, top, n_up, work, generator):
    """The official get_sampled_patches (unfold over every window, argsort, make_grid)."""
    size = image.shape[-2:]
    prob = F.interpolate(mask, (work, work), mode="bicubic", align_corners=False)
    paint = F.interpolate(image, (work, work), mode="bicubic", align_corners=False)
    out = []
    for p, pr in zip(paint, prob, strict=True):
        windows = pr[None].unfold(2, patch, 1).unfold(3, patch, 1)   # 1,1,n,n,p,p
        n = windows.shape[2]
        means = windows.reshape(n * n, patch, patch).mean((1, 2))
        best = torch.argsort(means)[-top:]
        idx = best[torch.randint(len(best), (n_up ** 2,), generator=generator)]
        pw = p[None].unfold(2, patch, 1).unfold(3, patch, 1)         # 1,C,n,n,p,p
        pw = pw.permute(0, 2, 3, 1, 4, 5).reshape(n * n, p.shape[0], patch, patch)
        chosen = pw[idx]
        rows = [torch.cat(list(chosen[r * n_up:(r + 1) * n_up]), dim=2) for r in range(n_up)]
        grid = torch.cat(rows, dim=1)
        out.append(F.interpolate(grid[None], size, mode="bicubic", align_corners=False))
    return torch.cat(out)


def test_patch_grid_matches_the_official_sampling():
    mask, image = _rand(2, 1, 40, 40, seed=8), _rand(2, 3, 40, 40, seed=9)
    got = L.sample_patch_grid(mask, image, patch_size=5, top=7, grid=3, work_size=32,
                              generator=torch.Generator().manual_seed(0))
    ref = _official_patch_grid(mask, image, 5, 7, 3, 32, torch.Generator().manual_seed(0))
    assert got.shape == image.shape
    assert torch.allclose(got, ref, atol=1e-6)


def test_patches_come_from_where_the_mask_is_highest():
    # The image encodes each pixel's column; the mask is high only on columns 20..27.
    size = 32
    image = torch.arange(size).float().expand(1, 3, size, size) / size
    mask = torch.zeros(1, 1, size, size)
    mask[..., 4:28, 20:28] = 1.0
    grid = L.sample_patch_grid(mask, image, patch_size=7, top=10, grid=4, work_size=size,
                               generator=torch.Generator().manual_seed(1))
    cols = (grid * size).round()
    assert cols.min() >= 19 and cols.max() <= 28        # bicubic overshoot of 1 column
    first = L.sample_patch_grid(mask, image, patch_size=7, top=10, grid=4, work_size=size,
                                generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, grid)                      # same generator, same grid


def test_texture_loss_is_perceptual_against_the_patch_grid():
    feats = _Maps()
    fg, x_gt = _rand(1, 3, 16, 16, seed=10) * 2 - 1, _rand(1, 3, 16, 16, seed=11) * 2 - 1
    mask = _rand(1, 1, 16, 16, seed=12)
    kw = dict(patch_size=3, top=5, grid=2, work_size=16)
    target = L.sample_patch_grid(mask, x_gt, generator=torch.Generator().manual_seed(2), **kw)
    ref = L.perceptual(feats, fg, target, weights=(0.0, 5.0))
    got = L.texture(feats, fg, x_gt, mask, weights=(0.0, 5.0),
                    generator=torch.Generator().manual_seed(2), **kw)
    assert torch.isclose(got, ref)


def test_official_defaults_and_the_sum():
    w = L.LossWeights()
    assert (w.l1, w.perc, w.binary, w.mask, w.mask_interval, w.text, w.bg) == (
        100, (4, 4, 4, 4), 300, 500, (0.1, 0.9), (0, 5, 5, 0), 2000)
    assert (w.patch_size, w.patch_top, w.patch_grid, w.patch_work_size) == (15, 100, 6, 128)
    with pytest.raises(CausalKitError, match="mask_interval"):
        L.LossWeights(mask_interval=(0.9, 0.1))
    feats = _Maps()
    x_gen, x_gt = _rand(1, 3, 32, 32, seed=13) * 2 - 1, _rand(1, 3, 32, 32, seed=14) * 2 - 1
    mask, fg = _rand(1, 1, 32, 32, seed=15).clamp(0.01, 0.99), _rand(1, 3, 32, 32) * 2 - 1
    sal = _rand(1, 1, 32, 32, seed=16)
    small = L.LossWeights(perc=(1.0, 1.0), text=(0.0, 5.0), patch_size=5, patch_top=10,
                          patch_grid=2, patch_work_size=32)
    out = L.cgn_losses(features=feats, x_gen=x_gen, x_gt=x_gt, mask=mask, foreground=fg,
                       bg_saliency=sal, weights=small,
                       generator=torch.Generator().manual_seed(0))
    assert tuple(out) == L.LOSS_NAMES
    assert torch.isclose(out["l1"], L.reconstruction_l1(x_gen, x_gt))
    assert torch.isclose(out["mask"], L.mask_interval(mask).mean())
    assert torch.isclose(out["bg"], L.background_saliency(sal).mean())
