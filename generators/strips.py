"""Image strips: what moving along a latent direction does, one row per direction.

>>> from generators.biggan import tiny_biggan
>>> from generators.directions import shortcut_directions
>>> g = tiny_biggan(0)
>>> rows = direction_strips(g, shortcut_directions(g), label=3, seed=0, directions=[0, 1])
>>> rows.shape  # (directions, steps, 3, H, W)
torch.Size([2, 7, 3, 32, 32])

:func:`generators.images.save_grid` writes such a tensor as one PNG grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from causalkit.errors import CausalKitError
from generators.base import ConditionalGenerator
from generators.directions import RANGE_FACTOR, Directions

__all__ = ["direction_strips"]


@torch.no_grad()
def direction_strips(gen: ConditionalGenerator, dirs: Directions, *, label: int, seed: int,
                     directions: Sequence[int] = (0, 1, 2, 3), steps: int = 7,
                     scale: float = 1.0, truncation: float = 1.0) -> torch.Tensor:
    """Images of ``z + a u_j`` for ``a`` evenly spaced in ``[-s r_j, s r_j]``.

    One latent ``z`` (from ``seed``) and one class are shared by all rows, so the rows
    differ only in the direction moved along; ``r_j = 2 std_j`` as in the strategies.

    Returns
    -------
    torch.Tensor
        ``(len(directions), steps, 3, H, W)`` in [-1, 1], on the CPU.
    """
    if steps < 2:
        raise CausalKitError("steps must be >= 2")
    bad = [j for j in directions if not 0 <= j < dirs.k]
    if bad:
        raise CausalKitError(f"direction indices {bad} are outside 0..{dirs.k - 1}")
    z = gen.sample_noise(1, truncation, seed=seed).cpu()
    rows = []
    for j in directions:
        u = torch.from_numpy(dirs.components[j])
        r = scale * RANGE_FACTOR * float(dirs.stds[j])
        amounts = torch.linspace(-r, r, steps)
        rows.append(gen.generate(z + amounts[:, None] * u, [label] * steps, truncation))
    return torch.stack(rows)

