"""How likely are real images under a strategy's generated images? (GenInt Section 5.4)

Theorem 1 of GenInt: the nuisance intervention ``do(z)`` that makes the observed image
``x`` more likely gives the tighter bound on ``P(y | do(x))``, whose width is
``1 - P(x | do(z))``. This module estimates ``P(x | do(z))`` for held-out *real*
images from ``M`` images the generator makes under the strategy, with a kernel density::

    log P(x | z) = sum_i log( 1/M sum_j K(x_i, x'_j) ),
    K(x, x') = exp( -||phi(x) - phi(x')||^2 / (2 h^2) )

evaluated with ``logsumexp`` so that tiny kernel values do not underflow.

**Feature map phi** (:class:`RandomConvFeatures`): a *fixed*, seeded random network --
two strided 3x3/5x5 convolutions with ReLU (3 -> 16 -> 32 channels, He-normal weights,
seed 0), average-pooled to 4x4 and flattened (512 numbers), on images resized to 32x32
in [-1, 1]. Random convolutional features keep local colour and edge statistics (what
nuisances change) without any training, so no strategy is favoured by a learned
embedding, and the same seed gives the same map everywhere. ``feature="pixels"`` uses
16x16 average-pooled pixels instead.

**Bandwidth h** (:func:`median_bandwidth`): the median heuristic -- the median distance
between real and generated features, pooled over *all* strategies being compared, so
every strategy is scored with the same kernel (a per-strategy bandwidth would make
their likelihoods incomparable).

**Probabilities.** The kernel is not normalised: ``K <= 1``, so ``p_i = 1/M sum_j K``
lies in ``(0, 1]`` and reads as the probability that a generated image falls in a soft
neighbourhood of ``x_i``. That makes it usable as ``P(x | do(z))`` in
:func:`causalkit.bounds.nuisance_bounds`: with ``P(y, x | do(z)) = 1/M sum_j K [y'_j =
y_i]`` (the generated image was made for the real image's class), each real image gets
an interval on ``P(y_i | do(x_i))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.imagesets import resize
from causalkit.errors import CausalKitError
from generators.images import to_float

__all__ = ["RandomConvFeatures", "featurize", "median_bandwidth", "log_kernel_matrix",
           "log_likelihood", "kernel_bounds", "StrategyScore", "score_strategies"]


class RandomConvFeatures(nn.Module):
    """The fixed random feature map ``phi`` (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 16, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen)
                                  * math.sqrt(2.0 / fan_in))
                conv.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)


@torch.no_grad()
def featurize(images: torch.Tensor, feature: str = "random-conv", *,
              batch_size: int = 512) -> np.ndarray:
    """``phi(x)`` for uint8 or float images: float64 ``(N, D)``.

    Parameters
    ----------
    feature
        ``"random-conv"`` (default) or ``"pixels"``.
    """
    if feature not in ("random-conv", "pixels"):
        raise CausalKitError(f"unknown feature map {feature!r}; use random-conv or pixels")
    net = RandomConvFeatures(0) if feature == "random-conv" else None
    out = []
    for s in range(0, len(images), batch_size):
        x = resize(to_float(images[s:s + batch_size], keep_float=True), 32)
        f = net(x) if net is not None else nn.functional.avg_pool2d(x, 2).flatten(1)
        out.append(f.double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def median_bandwidth(real: np.ndarray, generated: list[np.ndarray], *, max_points: int = 1000,
                     seed: int = 0) -> float:
    """Median real-to-generated feature distance (pooled over every generated set)."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(generated)
    a = real[rng.permutation(len(real))[:max_points]]
    b = pooled[rng.permutation(len(pooled))[:max_points]]
    h = float(np.sqrt(np.median(_sq_dists(a, b))))
    if not h > 0:
        raise CausalKitError("all real and generated features coincide; the median "
                             "bandwidth is 0 (are the images constant?)")
    return h


def log_kernel_matrix(real: np.ndarray, generated: np.ndarray, h: float) -> np.ndarray:
    """``log K(x_i, x'_j) = -||phi_i - phi'_j||^2 / (2 h^2)``, shape ``(N, M)``."""
    return -_sq_dists(real, generated) / (2.0 * h * h)


def log_likelihood(real: np.ndarray, generated: np.ndarray, h: float,
                   *, chunk: int = 1024) -> np.ndarray:
    """Per-image ``log(1/M sum_j K(x_i, x'_j))`` (``logsumexp``); sum it for log P(x|z)."""
    from scipy.special import logsumexp

    if len(generated) == 0:
        raise CausalKitError("no generated images to evaluate the likelihood with")
    out = [logsumexp(log_kernel_matrix(real[s:s + chunk], generated, h), axis=1)
           for s in range(0, len(real), chunk)]
    return np.concatenate(out) - math.log(len(generated))


def kernel_bounds(real: np.ndarray, real_labels: np.ndarray, generated: np.ndarray,
                  gen_labels: np.ndarray, h: float, *, chunk: int = 1024
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per real image, ``log P(x_i | do(z))`` and ``log P(y_i, x_i | do(z))`` under the kernel.

    ``P(y, x | do(z))`` counts only generated images made for class ``y_i``; it is
    ``-inf`` when none of them are.
    """
    from scipy.special import logsumexp

    log_px, log_pxy = [], []
    same = real_labels[:, None] == gen_labels[None, :]
    for s in range(0, len(real), chunk):
        lk = log_kernel_matrix(real[s:s + chunk], generated, h)
        log_px.append(logsumexp(lk, axis=1))
        masked = np.where(same[s:s + chunk], lk, -np.inf)
        log_pxy.append(logsumexp(masked, axis=1))
    m = math.log(len(generated))
    return np.concatenate(log_px) - m, np.concatenate(log_pxy) - m


@dataclass
class StrategyScore:
    """One strategy's likelihood of the real images and the bounds it gives."""

    strategy: str
    params: dict[str, float]
    log_likelihood: float
    mean_log_likelihood: float
    se_mean_log_likelihood: float
    p_x_do: float
    lower: float
    upper: float
    width: float
    n_real: int
    n_generated: int
    per_image_log_px: np.ndarray
    per_image_lower: np.ndarray
    per_image_upper: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (per-image arrays left out)."""
        return {"strategy": self.strategy, **self.params,
                "log_likelihood": self.log_likelihood,
                "mean_log_likelihood": self.mean_log_likelihood,
                "se_mean_log_likelihood": self.se_mean_log_likelihood,
                "p_x_do_geometric_mean": self.p_x_do, "mean_lower": self.lower,
                "mean_upper": self.upper, "mean_width": self.width, "n_real": self.n_real,
                "n_generated": self.n_generated}


def score_strategies(generator: Any, strategies: list[Any], real_images: torch.Tensor,
                     real_labels: np.ndarray, *, directions: Any = None,
                     n_generated: int = 2000, feature: str = "random-conv", seed: int = 0,
                     progress: bool = False) -> tuple[list[StrategyScore], float]:
    """Score each strategy by the likelihood of held-out real images (Theorem 1).

    Parameters
    ----------
    generator
        A :class:`~generators.base.ConditionalGenerator` or a spec string.
    strategies
        LatentStrategy objects or their text (``"t=1,k=8,s=1"``).
    real_images, real_labels
        Held-out real images (uint8 or float NCHW) and their classes, which must be
        classes of the generator.
    directions
        :class:`~generators.directions.Directions`, a path to one, or ``None`` (SVD
        shortcut).
    n_generated
        ``M``, images generated per strategy (classes uniform).
    feature
        The feature map (see :func:`featurize`).
    seed
        The same seed is used for every strategy, so they share their latent noise.

    Returns
    -------
    scores, bandwidth
        One :class:`StrategyScore` per strategy (input order) and the shared ``h``.
    """
    from analysis.sources import resolve_source
    from causalkit.bounds import nuisance_bounds

    if not strategies:
        raise CausalKitError("give at least one strategy, e.g. t=1,k=8,s=1")
    real_labels = np.asarray(real_labels)
    gen = generator
    if isinstance(generator, str):
        from analysis.sources import load_generator_spec

        gen = load_generator_spec(generator)
    bad = real_labels[(real_labels < 0) | (real_labels >= gen.num_classes)]
    if bad.size:
        raise CausalKitError(f"real labels {sorted(set(bad.tolist()))[:5]} are not classes "
                             f"of the generator (0..{gen.num_classes - 1})")
    real_f = featurize(real_images, feature)
    gen_sets = []
    from causalkit.progress import progress as progress_bar

    for st in progress_bar(strategies, desc="generate per strategy", leave=False,
                           enabled=progress):
        src = resolve_source(gen, st, directions=directions)
        batch = src.sample(n_generated, seed=seed)
        gen_sets.append((src, featurize(batch.images, feature), batch.labels))
    h = median_bandwidth(real_f, [g[1] for g in gen_sets], seed=seed)
    scores = []
    for src, feats, labels in gen_sets:
        log_px, log_pxy = kernel_bounds(real_f, real_labels, feats, labels, h)
        p_x, p_xy = np.exp(log_px), np.exp(log_pxy)
        ivs = [nuisance_bounds(min(a, b), b) for a, b in zip(p_xy, p_x, strict=True)]
        lo = np.array([i.lower for i in ivs])
        hi = np.array([i.upper for i in ivs])
        st = src.strategy
        params = {"t": st.truncation}
        if hasattr(st, "components"):
            params.update(k=st.components, s=st.scale)
        # standard error over the real images (the generated set is held fixed)
        se = float(log_px.std(ddof=1) / math.sqrt(len(log_px))) if len(log_px) > 1 else 0.0
        scores.append(StrategyScore(str(st), params, float(log_px.sum()),
                                    float(log_px.mean()), se, float(np.exp(log_px.mean())),
                                    float(lo.mean()), float(hi.mean()),
                                    float((hi - lo).mean()), len(real_f), len(feats),
                                    log_px, lo, hi))
    return scores, h
