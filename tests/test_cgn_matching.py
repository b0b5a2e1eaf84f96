"""The texture-phase abduction of generators.cgn.mnist.matching."""

import pytest
import torch

from generators.cgn.mnist.matching import best_shift, shift_errors
from generators.cgn.mnist.model import random_shift


def test_shift_errors_equal_brute_force():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 3, 6, 8, generator=g)
    texture = torch.randn(2, 3, 3, 6, 8, generator=g)
    weight = torch.rand(2, 1, 6, 8, generator=g)
    err = shift_errors(target, texture, weight)
    assert err.shape == (2, 3, 6, 8)
    for n in range(2):
        for k in range(3):
            for dy in range(6):
                for dx in range(8):
                    shifted = random_shift(texture[n, k][None], torch.tensor([[dy, dx]]))[0]
                    want = (weight[n] * (target[n] - shifted) ** 2).sum()
                    assert err[n, k, dy, dx] == pytest.approx(float(want), abs=1e-3)


def test_best_shift_recovers_a_planted_draw_and_shift():
    g = torch.Generator().manual_seed(1)
    texture = torch.randn(4, 5, 3, 16, 16, generator=g)
    draws = torch.tensor([0, 4, 2, 3])
    shifts = torch.tensor([[0, 0], [3, 15], [8, 1], [15, 7]])
    target = random_shift(texture[torch.arange(4), draws], shifts)
    target = target + 0.05 * torch.randn(target.shape, generator=g)
    index, offsets = best_shift(target, texture, torch.ones(4, 1, 16, 16))
    assert index.tolist() == draws.tolist()
    assert offsets.tolist() == shifts.tolist()


def test_weight_restricts_the_match_to_its_region():
    # left half matches draw 0 at shift (0, 0); right half matches draw 1 at (2, 5)
    g = torch.Generator().manual_seed(2)
    texture = torch.randn(1, 2, 3, 8, 8, generator=g)
    left = texture[:, 0]
    right = random_shift(texture[:, 1], torch.tensor([[2, 5]]))
    target = torch.cat([left[..., :4], right[..., 4:]], dim=3)
    w_left = torch.zeros(1, 1, 8, 8)
    w_left[..., :4] = 1
    assert best_shift(target, texture, w_left)[0].item() == 0
    index, offsets = best_shift(target, texture, 1 - w_left)
    assert index.item() == 1 and offsets.tolist() == [[2, 5]]


def test_a_shared_bank_equals_the_per_image_candidates():
    # the training's bank: K draws per class, image n compared with its class's draws
    g = torch.Generator().manual_seed(3)
    bank = torch.randn(3, 4, 3, 8, 8, generator=g)
    slot = torch.tensor([2, 0, 2, 1, 0])
    target = torch.randn(5, 3, 8, 8, generator=g)
    weight = torch.rand(5, 1, 8, 8, generator=g)
    shared = shift_errors(target, bank, weight, slot=slot)
    torch.testing.assert_close(shared, shift_errors(target, bank[slot], weight))
    index, offsets = best_shift(target, bank, weight, slot=slot)
    want_index, want_offsets = best_shift(target, bank[slot], weight)
    assert index.tolist() == want_index.tolist() and offsets.tolist() == want_offsets.tolist()


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="N, K, C, H, W"):
        shift_errors(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), torch.ones(2, 1, 8, 8))
    with pytest.raises(ValueError, match="N, K, C, H, W"):  # one candidate set, two images
        shift_errors(torch.zeros(2, 3, 8, 8), torch.zeros(1, 4, 3, 8, 8), torch.ones(2, 1, 8, 8))
    with pytest.raises(ValueError, match="slot"):
        shift_errors(torch.zeros(2, 3, 8, 8), torch.zeros(3, 4, 3, 8, 8),
                     torch.ones(2, 1, 8, 8), slot=torch.tensor([0, 1, 2]))
