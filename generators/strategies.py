"""GenInt's latent interventions, realised on a :class:`~generators.base.ConditionalGenerator`.

A :class:`~causalkit.interventions.LatentStrategy` ``(t, k, s, per_sample, centered)``
becomes, for ``n`` samples and seeded randomness:

1. noise ``z ~ t * truncnorm(-2, 2)`` (``n x z_dim``);
2. for every sample, ``per_sample`` of the top-``k`` directions chosen uniformly without
   replacement;
3. for every chosen direction ``j`` an offset ``o_j ~ U[-s r_j, s r_j]``, with
   ``r_j = 2 std_j`` (:meth:`~generators.directions.Directions.ranges`);
4. the edit ``z* = z + sum_j o_j u_j`` (GenInt) or, with ``centered``, GANSpace's edit
   that first removes the sample's own coordinate on the chosen directions, so that the
   coordinate *becomes* ``o_j`` instead of moving by it.

The offsets, an ``(n, k)`` matrix with zeros for unused directions, are each image's
nuisance manipulation ``z`` -- the value of ``do(Z := z)``.

Why ``r_j = 2 std_j``: ``std_j`` is the spread of the latent coordinate ``z . u_j``
under the full prior (truncation 1), 0.88 for BigGAN's truncated normal. Two standard
deviations cover almost all of the prior's support along ``u_j`` (``|z_i| <= 2``), so at
``s = 1`` an edit moves a sample about as far as the generator's own training
distribution varies along that direction: large enough to change the nuisance visibly,
small enough to stay where the generator was trained. ``s`` scales from there. The
ranges come from the directions' fit, not from the strategy's truncation, so truncating
the noise (fewer artefacts) does not also shrink the intervention.

Nothing here looks at the class: for the same seed, every class gets the same noise,
the same directions and the same offsets. That is what makes the manipulated nuisances
independent of the label.

The observational baseline ("GAN augmentation") is :class:`Observational`: truncated
noise and no edit. For the same seed it draws the same ``z`` as an interventional
strategy with the same truncation, so the two are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.interventions import LatentStrategy
from generators.base import ConditionalGenerator, check_truncation, make_generator
from generators.base import truncated_normal as _truncnorm
from generators.directions import RANGE_FACTOR, Directions

__all__ = ["Observational", "LatentBatch", "sample_latents", "parse_strategy",
           "InterventionSampler", "Strategy"]


@dataclass(frozen=True)
class Observational:
    """Plain sampling with truncation ``t``: the GAN-augmentation baseline (no ``do``)."""

    truncation: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "truncation", check_truncation(self.truncation))

    def __str__(self) -> str:
        return f"observational:t={self.truncation:g}"


Strategy = LatentStrategy | Observational


def parse_strategy(text: str) -> Strategy:
    """Parse ``"t=1,k=60,s=1"`` (interventional) or ``"observational:t=0.2"``."""
    text = text.strip()
    if text.startswith("observational"):
        rest = text[len("observational"):].lstrip(":")
        t = 0.2
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, _, value = part.partition("=")
            if key.strip() not in ("t", "truncation"):
                raise CausalKitError(f"observational strategies take only t=..., got "
                                     f"{part!r}; e.g. 'observational:t=0.2'")
            try:
                t = float(value)
            except ValueError:
                raise CausalKitError(f"t={value!r} is not a number") from None
        return Observational(t)
    return LatentStrategy.parse(text)


@dataclass
class LatentBatch:
    """Latents of one batch, before and after the intervention.

    Attributes
    ----------
    z
        ``(n, z_dim)`` noise as drawn.
    z_star
        ``(n, z_dim)`` intervened latents (equal to ``z`` for observational sampling).
    offsets
        ``(n, k)`` offset along each of the top-``k`` directions, zero where unused
        (``(n, 0)`` for observational sampling): the nuisance manipulation ``z``.
    chosen
        ``(n, per_sample)`` indices of the directions each sample moved along.
    truncation
        The truncation to pass to the generator.
    """

    z: torch.Tensor
    z_star: torch.Tensor
    offsets: torch.Tensor
    chosen: torch.Tensor
    truncation: float


def sample_latents(strategy: Strategy, n: int, z_dim: int, *,
                   directions: Directions | None = None,
                   seed: int | torch.Generator | None = None) -> LatentBatch:
    """Draw ``n`` intervened (or observational) latents; same seed, same latents.

    Parameters
    ----------
    strategy
        A :class:`~causalkit.interventions.LatentStrategy` or :class:`Observational`.
    n, z_dim
        Batch size and latent size.
    directions
        Required for a LatentStrategy: at least ``strategy.components`` directions.
    seed
        An int or a CPU :class:`torch.Generator` (advanced in place).
    """
    gen = make_generator(seed)
    z = _truncnorm(n, z_dim, strategy.truncation, generator=gen)
    if isinstance(strategy, Observational):
        return LatentBatch(z, z.clone(), torch.zeros(n, 0), torch.zeros(n, 0, dtype=torch.long),
                           strategy.truncation)
    if not isinstance(strategy, LatentStrategy):
        raise CausalKitError(f"unknown strategy {strategy!r}; use LatentStrategy or "
                             "Observational")
    if directions is None:
        raise CausalKitError("an interventional strategy needs directions; compute them "
                             "with generators.directions (or pass --directions FILE.npz)")
    if directions.z_dim != z_dim:
        raise CausalKitError(f"directions live in {directions.z_dim} dimensions but the "
                             f"generator's z has {z_dim}; fit directions on this generator")
    top = directions.top(strategy.components)
    k, p = top.k, min(strategy.per_sample, top.k)
    u = torch.from_numpy(top.components)  # (k, d)
    r = torch.from_numpy(top.ranges(RANGE_FACTOR)) * strategy.scale  # (k,)
    # Random subset per sample: the first p of a random permutation of the k directions.
    chosen = torch.rand(n, k, generator=gen).argsort(dim=1)[:, :p]
    amount = (2.0 * torch.rand(n, p, generator=gen) - 1.0) * r[chosen]
    offsets = torch.zeros(n, k).scatter_(1, chosen, amount)
    if strategy.centered:
        u_s = u[chosen]  # (n, p, d)
        gram = u_s @ u_s.transpose(1, 2)  # (n, p, p); identity for orthonormal u
        coords = torch.linalg.solve(gram, (u_s @ z.unsqueeze(-1))).squeeze(-1)
        z_star = z + ((amount - coords).unsqueeze(1) @ u_s).squeeze(1)
    else:
        z_star = z + offsets @ u
    return LatentBatch(z, z_star, offsets, chosen, strategy.truncation)


class InterventionSampler:
    """Images under a strategy: ``sampler.sample(labels, seed) -> (images, LatentBatch)``.

    Parameters
    ----------
    generator
        The class-conditional generator.
    strategy
        A LatentStrategy (needs ``directions``) or :class:`Observational`.
    directions
        Latent directions of this generator.
    """

    def __init__(self, generator: ConditionalGenerator, strategy: Strategy,
                 directions: Directions | None = None) -> None:
        self.generator = generator
        self.strategy = strategy
        self.directions = directions
        # Validate early (directions present, enough of them, right size).
        sample_latents(strategy, 0, generator.z_dim, directions=directions, seed=0)

    @property
    def num_offsets(self) -> int:
        """Columns of the offsets matrix (``k``; 0 for observational sampling)."""
        return 0 if isinstance(self.strategy, Observational) else self.strategy.components

    def latents(self, n: int, seed: int | torch.Generator) -> LatentBatch:
        """The latents of ``n`` samples (see :func:`sample_latents`)."""
        return sample_latents(self.strategy, n, self.generator.z_dim,
                              directions=self.directions, seed=seed)

    @torch.no_grad()
    def sample(self, labels: list[int] | np.ndarray | torch.Tensor,
               seed: int | torch.Generator, *, batch_size: int = 64
               ) -> tuple[torch.Tensor, LatentBatch]:
        """Images (CPU, float in [-1, 1]) for ``labels`` and the latents behind them."""
        labels = torch.as_tensor(labels)
        batch = self.latents(int(labels.shape[0]), seed)
        images = self.generator.generate(batch.z_star, labels, batch.truncation,
                                         batch_size=batch_size)
        return images, batch
