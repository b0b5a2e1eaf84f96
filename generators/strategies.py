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

GenInt's own ImageNet strategy is :class:`GenIntStrategy` (``"genint:t=1,k=60"``): one
component per image, each component with its own offset range from the official code
(:data:`GENINT_RANGES`, in latent units), GANSpace's centred edit, and five images per
noise seed along five distinct components (:func:`sample_seed_edits`). Its docstring
lists the official facts it follows.

:func:`sample_rows` draws every sample from its own seed, so that a sample never depends
on which other samples share its batch (data-parallel ranks, resumed runs).

The observational baseline ("GAN augmentation") is :class:`Observational`: truncated
noise and no edit. For the same seed it draws the same ``z`` as an interventional
strategy with the same truncation, so the two are paired.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.interventions import LatentStrategy, parse_strategy_fields
from generators.base import ConditionalGenerator, check_truncation, make_generator
from generators.base import truncated_normal as _truncnorm
from generators.directions import RANGE_FACTOR, Directions

__all__ = ["Observational", "LatentBatch", "sample_latents", "parse_strategy",
           "InterventionSampler", "Strategy", "GenIntStrategy", "GENINT_RANGES",
           "sample_rows", "sample_seed_edits"]


@dataclass(frozen=True)
class Observational:
    """Plain sampling with truncation ``t``: the GAN-augmentation baseline (no ``do``)."""

    truncation: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "truncation", check_truncation(self.truncation))

    def __str__(self) -> str:
        return f"observational:t={self.truncation:g}"


#: GenInt's offset range ``(low, high)`` for each of the top 60 GANSpace components of
#: BigGAN-deep-256's ``generator.gen_z``, in latent units, read off the official
#: ``IntervenedGAN/gen_intervene_data_withfix_seed.py`` (its ``scale_pair_updown``: for
#: component ``c`` an entry ``(m, v_1 .. v_m, names...)``, the offset drawn uniformly
#: between ``min(v)`` and ``max(v)``). Component 51 reads ``(2, 12, 6, -12, ...)``: with
#: ``m = 2`` only ``12, 6`` count, so its offsets lie in ``[6, 12]``; kept as the code
#: ran. :class:`GenIntStrategy` is the strategy these ranges make.
GENINT_RANGES: tuple[tuple[float, float], ...] = (
    (-3, 3), (-4, 2), (-3, 3), (-4, 3), (-3, 5), (-4, 4), (-5, 5), (-5, 5), (-6, 6),
    (-6, 6), (-7, 7), (-8, 8), (-8, 10), (-10, 7), (-10, 10), (-8, 8), (-10, 10),
    (-10, 10), (-5, 10), (-10, 8), (-8, 12), (-10, 10), (-10, 7), (-10, 10), (-12, 10),
    (-7, 10), (-10, 8), (-10, 10), (-8, 8), (-8, 8), (-8, 8), (-8, 12), (-10, 9),
    (-10, 10), (-10, 10), (-10, 10), (-12, 12), (-10, 12), (-12, 12), (-12, 10),
    (-12, 12), (-12, 10), (-10, 12), (-12, 12), (-12, 8), (-12, 12), (-12, 12),
    (-12, 12), (-13, 12), (-12, 12), (-12, 12), (6, 12), (-13, 12), (-12, 13),
    (-12, 12), (-12, 15), (-12, 15), (-12, 15), (-12, 12), (-10, 12),
)


@dataclass(frozen=True)
class GenIntStrategy:
    """GenInt's ImageNet intervention: one GANSpace component per image, its own range.

    The facts, from the official ``IntervenedGAN/gen_intervene_data_withfix_seed.py``
    (run as its README says: ``--model=BigGAN-256 --layer=generator.gen_z -n=1000000
    --truncation 1.0 --random_num_start 0 --random_num_end 1000 --global_seed 10319
    --class_start 0 --class_end 1000``):

    * **Layer and directions.** GANSpace on ``generator.gen_z`` of BigGAN-deep-256: PCA
      of its activations (80 components, from 10^6 samples of one class), mapped back
      to unit latent directions by regression. ``gen_z`` is affine, so
      :func:`generators.directions.shortcut_directions` gives those directions exactly.
    * **Truncation** ``t = 1`` (no truncation of the ``truncnorm(-2, 2)`` noise).
    * **Components.** The top 60 (``k = 60``), each with its own offset range
      (:data:`GENINT_RANGES`), the same for every class.
    * **Units.** Offsets are in latent units: GANSpace's ``lat_stdev`` is 1 for BigGAN
      (it is only estimated for StyleGAN's W), so ``delta = offset * u_c``.
    * **The edit** is GANSpace's centred one: ``z* = z - ((z - mean) . u_c) u_c +
      offset * u_c``, i.e. the coordinate along ``u_c`` *becomes* the offset (``mean``,
      the latent mean of the fit, is 0 up to sampling noise; we take 0).
    * **Per image, one component** (``per_sample = 1``), ``offset ~ U[low_c, high_c]``.
    * **Per seed, five components.** Each noise seed ``z`` (1,000 per class,
      ``rand_seed_0..999``) makes five images, along five distinct components drawn
      without replacement from the 60 (``random.sample(keys, 5)``): 5,000 images per
      class, 5M in all. :func:`sample_seed_edits` makes such a group; the
      pre-generation (:mod:`generators.pregenerate`) lays them out per class.

    What differs: the official directions' signs (and the mean) come from its own PCA
    fit, so an asymmetric range such as component 1's ``[-4, 2]`` points the same way
    only for directions whose sign convention agrees; ours are fixed by
    :mod:`generators.directions`. Its noise comes from one global ``torch`` stream
    (seeded ``global_seed`` 10319) and its components and offsets from Python's
    ``random``, which it never seeds; ours are keyed per image (same seed, same image,
    on any number of workers).

    Written ``"genint:t=1,k=60"`` (optional ``s`` scales every range, ``n`` sets
    ``per_sample``, ``centered=0`` GenInt's plain additive edit instead). ``k`` below 60
    keeps the first ``k`` ranges (small generators in tests); above 60 there are none.
    """

    truncation: float = 1.0
    components: int = 60
    scale: float = 1.0
    per_sample: int = 1
    centered: bool = True

    PREFIX = "genint"
    def __post_init__(self) -> None:
        # the checks of LatentStrategy (one message per bad value) ...
        base = LatentStrategy(self.truncation, self.components, self.scale, self.per_sample,
                              bool(self.centered))
        # ... and the table's size
        if base.components > len(GENINT_RANGES):
            raise CausalKitError(f"GenInt's table has ranges for {len(GENINT_RANGES)} "
                                 f"components, got k={base.components}; use k <= "
                                 f"{len(GENINT_RANGES)}")
        object.__setattr__(self, "truncation", base.truncation)
        object.__setattr__(self, "scale", base.scale)
        object.__setattr__(self, "components", int(base.components))
        object.__setattr__(self, "per_sample", int(base.per_sample))
        object.__setattr__(self, "centered", bool(self.centered))

    @property
    def ranges(self) -> np.ndarray:
        """``(k, 2)`` offset range ``[low, high]`` per component, times ``scale``."""
        return np.asarray(GENINT_RANGES[:self.components], dtype=np.float64) * self.scale

    @classmethod
    def parse(cls, text: str) -> GenIntStrategy:
        """Parse ``"genint"`` or ``"genint:t=1,k=60[,s=1][,n=1][,centered=1]"``."""
        head, _, rest = text.strip().partition(":")
        if head.strip() != cls.PREFIX:
            raise CausalKitError(f"a GenInt strategy starts with 'genint', got {text!r}; "
                                 "e.g. 'genint:t=1,k=60'")
        return cls(**parse_strategy_fields(
            rest, text, usage="GenInt strategies take t, k, s, n, centered; e.g. "
            "'genint:t=1,k=60'"))

    def __str__(self) -> str:
        text = f"{self.PREFIX}:t={self.truncation:g},k={self.components}"
        if self.scale != 1.0:
            text += f",s={self.scale:g}"
        if self.per_sample != 1:
            text += f",n={self.per_sample}"
        if not self.centered:
            text += ",centered=0"
        return text


Strategy = LatentStrategy | Observational | GenIntStrategy


def parse_strategy(text: str) -> Strategy:
    """Parse ``"t=1,k=60,s=1"`` (interventional), ``"genint:t=1,k=60"`` (GenInt's own
    per-component ranges, :class:`GenIntStrategy`) or ``"observational:t=0.2"``."""
    text = text.strip()
    if text.split(":", 1)[0].strip() == GenIntStrategy.PREFIX:
        return GenIntStrategy.parse(text)
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
    if isinstance(strategy, GenIntStrategy):
        u, lo, hi = _genint_setup(strategy, directions, z_dim)
        p = min(strategy.per_sample, strategy.components)
        chosen = torch.rand(n, strategy.components, generator=gen).argsort(dim=1)[:, :p]
        amount = lo[chosen] + (hi - lo)[chosen] * torch.rand(n, p, generator=gen)
        return _edited(strategy, z, u, chosen, amount)
    if not isinstance(strategy, LatentStrategy):
        raise CausalKitError(f"unknown strategy {strategy!r}; use LatentStrategy or "
                             "Observational")
    top = _check_directions(directions, z_dim).top(strategy.components)
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


# -- GenInt's edits, rows keyed one by one -------------------------------------------------
def _check_directions(directions: Directions | None, z_dim: int) -> Directions:
    if directions is None:
        raise CausalKitError("an interventional strategy needs directions; compute them "
                             "with generators.directions (or pass --directions FILE.npz)")
    if directions.z_dim != z_dim:
        raise CausalKitError(f"directions live in {directions.z_dim} dimensions but the "
                             f"generator's z has {z_dim}; fit directions on this generator")
    return directions


def _genint_setup(strategy: GenIntStrategy, directions: Directions | None, z_dim: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # unit directions (k, d) and the low / high offset per component (k,)
    top = _check_directions(directions, z_dim).top(strategy.components)
    bounds = torch.from_numpy(strategy.ranges.astype(np.float32))
    return torch.from_numpy(top.components), bounds[:, 0], bounds[:, 1]


def _edited(strategy: GenIntStrategy | LatentStrategy, z: torch.Tensor, u: torch.Tensor,
            chosen: torch.Tensor, amount: torch.Tensor) -> LatentBatch:
    """Move each row of ``z`` along its ``chosen`` directions by ``amount``.

    Computed row by row in elementwise products and sums (no matrix product across
    rows), so a row's latents have the same bytes in a batch of any size.
    """
    u_s = u[chosen]  # (n, p, d)
    if strategy.centered:
        coords = (u_s * z.unsqueeze(1)).sum(-1)  # (n, p)
        if chosen.shape[1] > 1:  # directions need not be orthogonal: solve for them
            gram = u_s @ u_s.transpose(1, 2)
            coords = torch.linalg.solve(gram, coords.unsqueeze(-1)).squeeze(-1)
        step = amount - coords
    else:
        step = amount
    z_star = z + (step.unsqueeze(-1) * u_s).sum(1)
    offsets = torch.zeros(z.shape[0], u.shape[0]).scatter_(1, chosen, amount)
    return LatentBatch(z, z_star, offsets, chosen, strategy.truncation)


def _amounts(strategy: Strategy, directions: Directions | None, z_dim: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # (u, low, high) of the strategy's k directions
    if isinstance(strategy, GenIntStrategy):
        return _genint_setup(strategy, directions, z_dim)
    top = _check_directions(directions, z_dim).top(strategy.components)
    r = torch.from_numpy(top.ranges(RANGE_FACTOR)) * strategy.scale
    return torch.from_numpy(top.components), -r, r


def _truncnorm_from(u: np.ndarray, truncation: float) -> torch.Tensor:
    # BigGAN's noise from given uniforms, by the inverse CDF (as generators.base does)
    lo = 0.5 * (1.0 + math.erf(-2.0 / math.sqrt(2.0)))
    z = torch.special.ndtri(torch.from_numpy(lo + u * (1.0 - 2.0 * lo))).clamp_(-2.0, 2.0)
    return (z * truncation).to(torch.float32)


def sample_rows(strategy: Strategy, keys: np.ndarray | Sequence[int], z_dim: int, *,
                directions: Directions | None = None) -> LatentBatch:
    """Latents of ``len(keys)`` samples, row ``i`` drawn from its own key ``keys[i]``.

    Every row's draws are a counter-based function of its ``uint64`` key
    (:func:`generators.keyed.uniforms`): the noise from draws ``0 .. z_dim - 1``, the
    choice of directions from the next ``k``, the offsets from the next ``per_sample``.
    A sample therefore never depends on which other rows share its batch: data-parallel
    ranks that each make a slice of a batch make the samples one process makes, and the
    whole batch is computed in a few vectorised operations. Keys come from
    :func:`generators.keyed.row_keys`.
    """
    from generators.keyed import uniforms

    keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
    n = len(keys)
    if isinstance(strategy, Observational):
        z = _truncnorm_from(uniforms(keys, z_dim), strategy.truncation)
        return LatentBatch(z, z.clone(), torch.zeros(n, 0),
                           torch.zeros(n, 0, dtype=torch.long), strategy.truncation)
    if not isinstance(strategy, (LatentStrategy, GenIntStrategy)):
        raise CausalKitError(f"unknown strategy {strategy!r}; use GenIntStrategy, "
                             "LatentStrategy or Observational")
    u, lo, hi = _amounts(strategy, directions, z_dim)
    k = u.shape[0]
    p = min(strategy.per_sample, k)
    draws = uniforms(keys, z_dim + k + p)
    z = _truncnorm_from(draws[:, :z_dim], strategy.truncation)
    chosen = torch.from_numpy(draws[:, z_dim:z_dim + k]).argsort(dim=1)[:, :p]
    draw = torch.from_numpy(draws[:, z_dim + k:]).to(torch.float32)
    if isinstance(strategy, GenIntStrategy):
        amount = lo[chosen] + (hi - lo)[chosen] * draw
    else:
        amount = (2.0 * draw - 1.0) * hi[chosen]
    return _edited(strategy, z, u, chosen, amount)


def sample_seed_edits(strategy: Strategy, z_dim: int, *, edits: int,
                      directions: Directions | None = None,
                      seed: int | torch.Generator) -> LatentBatch:
    """``edits`` images of one noise seed: GenInt's "five components per seed".

    One ``z`` is drawn, then ``edits`` groups of ``per_sample`` directions, all distinct
    (the first ``edits * per_sample`` of a random permutation of the ``k``), each group
    with its own offsets: row ``e`` is ``z`` moved along group ``e``. For the official
    layout (:class:`GenIntStrategy`, ``edits=5``) that is five images along five
    different components. An observational strategy has nothing to edit: ``edits``
    must be 1 and the row is ``z``.
    """
    gen = make_generator(seed)
    if isinstance(edits, bool) or not isinstance(edits, int) or edits < 1:
        raise CausalKitError(f"edits per seed must be an integer >= 1, got {edits!r}")
    z = _truncnorm(1, z_dim, strategy.truncation, generator=gen)
    if isinstance(strategy, Observational):
        if edits != 1:
            raise CausalKitError(f"an observational strategy edits nothing, so a seed makes "
                                 f"one image; got {edits} edits per seed (use 1)")
        return LatentBatch(z, z.clone(), torch.zeros(1, 0), torch.zeros(1, 0, dtype=torch.long),
                           strategy.truncation)
    u, lo, hi = _amounts(strategy, directions, z_dim)
    k = u.shape[0]
    p = min(strategy.per_sample, k)
    if edits * p > k:
        raise CausalKitError(f"{edits} edits of {p} distinct directions each need "
                             f"{edits * p} directions, but the strategy has k={k}; lower "
                             "the edits per seed or raise k")
    chosen = torch.rand(k, generator=gen).argsort()[:edits * p].reshape(edits, p)
    draw = torch.rand(edits, p, generator=gen)
    if isinstance(strategy, GenIntStrategy):
        amount = lo[chosen] + (hi - lo)[chosen] * draw
    else:
        amount = (2.0 * draw - 1.0) * hi[chosen]
    return _edited(strategy, z.expand(edits, -1).clone(), u, chosen, amount)


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
