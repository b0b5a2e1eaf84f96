"""Random textures: mechanism values from outside every training texture.

A CGN's counterfactuals recombine the textures its mechanisms learned, and on Wildlife
MNIST those are ten fills and ten grounds: a classifier trained on every combination of
them is invariant to *those* textures, and an unseen ground still breaks it
(``docs/texture_ood.md``). Widening the set means giving the texture or background
node values no training image has, drawn afresh for each counterfactual and
independently of every label. Two families (:data:`FAMILIES`) draw them:

``features``, :func:`random_feature_textures`
    White noise through a small convolutional network with random weights: its scale,
    its pattern (smooth blobs, bands, mazes, speckle) and its colours all vary. Eight
    channels of Gaussian noise on a grid of cells of 2, 4 or 8 pixels, bilinearly
    upsampled; a 5x5 convolution to 16 channels, each standardised and put through
    ``sin(a h)`` with ``a ~ U[0.5, 3]`` (small ``a``: smooth; large: bands and mazes); a
    3x3 convolution to three channels, each standardised, mixed by a random 3x3 colour
    matrix, scaled by ``g ~ U[0.25, 1]``, shifted by an offset ``~ U[-0.8, 0.8]`` and
    squashed by ``tanh`` into [-1, 1]. Weights are Gaussian over the square root of
    the fan-in.
``dead-leaves``, :func:`dead_leaves_textures`
    The dead-leaves model of natural images (Lee, Mumford & Huang, 2001): opaque discs
    and squares dropped on top of each other, their sizes drawn from a power law
    ``p(r) ~ r^-3`` between 1/32 and 2/5 of the shorter side, both scaled per texture
    by a zoom drawn log-uniformly in [1, 6] (from fine clutter to a few large shapes;
    the largest is capped at the side), which gives the occlusion edges and the
    scale-free statistics of photographs rather than of noise. Each texture has its
    own palette, a mean colour ``~ U[-0.8, 0.8]^3`` and a spread ``~ U[0.1, 0.7]``, so
    some are nearly flat and some loud, and each leaf a colour drawn from it.

:func:`random_texture_interventions` replaces the value of a mechanism node with such a
texture for a fraction ``p`` of the counterfactuals, drawn per counterfactual from the
node's own random stream, and keeps the node's value for the others:
``{"B": Do(PerBatch(...))}`` in the vocabulary of :mod:`causalkit.interventions`, built
by :func:`generators.cgn.node_values.transformed` on whatever already sets the node
(its mechanism, or the real backgrounds). The counterfactual keeps the label the
mechanism was given; for a replaced value that label no longer names what the image
shows, so a head trained on it has nothing to learn on those rows.

Every draw comes from one ``numpy`` generator:

>>> import numpy as np
>>> for family in FAMILIES.values():
...     t = family(4, (32, 32), np.random.default_rng(0))
...     same = family(4, (32, 32), np.random.default_rng(0))
...     print(tuple(t.shape), bool(t.abs().max() <= 1), bool((t == same).all()))
(4, 3, 32, 32) True True
(4, 3, 32, 32) True True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from generators.cgn.node_values import transformed

__all__ = ["FAMILIES", "REPLACEABLE", "check_random_textures", "dead_leaves_textures",
           "random_feature_textures", "random_texture_interventions"]

#: the mechanisms whose values a random-feature texture can replace
REPLACEABLE = ("texture", "background")
_CELLS = (2, 4, 8)  # noise grid cell sizes, in pixels
_NOISE, _HIDDEN = 8, 16  # channels of the noise and of the hidden layer
_LEAVES = 96  # leaves dropped per dead-leaves texture, enough to cover it
_RADII = (1 / 32, 2 / 5)  # smallest and largest leaf, as fractions of the shorter side
_ZOOM = 6.0  # both scaled per texture by a factor drawn log-uniformly in [1, _ZOOM]


def check_random_textures(rates: Mapping[str, float], family: str = "features") -> None:
    """Raise :class:`CausalKitError` unless every key of ``rates`` is one of
    :data:`REPLACEABLE`, every value a fraction in [0, 1] and ``family`` a key of
    :data:`FAMILIES`."""
    if family not in FAMILIES:
        raise CausalKitError(f"unknown random-texture family {family!r}; use one of "
                             f"{sorted(FAMILIES)}")
    for name, p in rates.items():
        if name not in REPLACEABLE:
            raise CausalKitError(f"random-feature textures replace {list(REPLACEABLE)}, "
                                 f"not {name!r}")
        if not (isinstance(p, (int, float)) and 0.0 <= float(p) <= 1.0):
            raise CausalKitError(f"the fraction of {name} values replaced by random-feature "
                                 f"textures must lie in [0, 1], got {p!r} (0 is none)")


def _standardise(h: Any) -> Any:
    mean = h.mean(dim=(-2, -1), keepdim=True)
    return (h - mean) / (h.std(dim=(-2, -1), keepdim=True) + 1e-6)


def _grouped_conv(h: Any, weight: Any) -> Any:
    """Each image of ``h`` (k, c, H, W) through its own weights (k * out, c, s, s),
    reflect-padded to keep its size."""
    import torch.nn.functional as F

    k, c, height, width = h.shape
    pad = weight.shape[-1] // 2
    x = F.pad(h.reshape(1, k * c, height, width), (pad,) * 4, mode="reflect")
    return F.conv2d(x, weight, groups=k).reshape(k, -1, height, width)


def random_feature_textures(n: int, size: tuple[int, int], rng: np.random.Generator) -> Any:
    """``n`` random-feature textures, a float32 tensor ``(n, 3, H, W)`` in [-1, 1]; see
    the module docstring. A pure function of ``(n, size, rng's state)``."""
    import torch
    import torch.nn.functional as F

    height, width = size
    out = torch.empty(n, 3, height, width)
    if n == 0:
        return out
    cells = rng.choice(_CELLS, size=n)
    freq = rng.uniform(0.5, 3.0, n)
    gain, offset = rng.uniform(0.25, 1.0, n), rng.uniform(-0.8, 0.8, (n, 3))
    mix = rng.normal(size=(n, 3, 3)) / math.sqrt(3)
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
    for cell in _CELLS:
        idx = np.flatnonzero(cells == cell)
        k = len(idx)
        if not k:
            continue
        z = torch.randn(k, _NOISE, -(-height // cell), -(-width // cell), generator=gen)
        z = F.interpolate(z, size=(height, width), mode="bilinear", align_corners=False)
        w1 = torch.randn(k * _HIDDEN, _NOISE, 5, 5, generator=gen) / math.sqrt(_NOISE * 25)
        h = _standardise(_grouped_conv(z, w1))
        h = torch.sin(torch.as_tensor(freq[idx], dtype=h.dtype)[:, None, None, None] * h)
        w2 = torch.randn(k * 3, _HIDDEN, 3, 3, generator=gen) / math.sqrt(_HIDDEN * 9)
        y = _standardise(_grouped_conv(h, w2))
        y = torch.einsum("kij,kjhw->kihw", torch.as_tensor(mix[idx], dtype=y.dtype), y)
        g = torch.as_tensor(gain[idx], dtype=y.dtype)[:, None, None, None]
        b = torch.as_tensor(offset[idx], dtype=y.dtype)[:, :, None, None]
        out[torch.as_tensor(idx)] = torch.tanh(g * y + b)
    return out


def dead_leaves_textures(n: int, size: tuple[int, int], rng: np.random.Generator) -> Any:
    """``n`` dead-leaves textures, a float32 tensor ``(n, 3, H, W)`` in [-1, 1]; see the
    module docstring. A pure function of ``(n, size, rng's state)``."""
    import torch

    height, width = size
    side = min(height, width)
    zoom = np.exp(rng.uniform(0.0, np.log(_ZOOM), (n, 1)))  # each texture's scale
    lo, hi = zoom * _RADII[0] * side, np.minimum(zoom * _RADII[1], 1.0) * side
    u = rng.random((n, _LEAVES))
    # inverse CDF of p(r) ~ r^-3 on [lo, hi]
    radius = (lo ** -2 - u * (lo ** -2 - hi ** -2)) ** -0.5
    cy, cx = rng.uniform(0, height, (n, _LEAVES)), rng.uniform(0, width, (n, _LEAVES))
    square = rng.random((n, _LEAVES)) < 0.5
    mean, spread = rng.uniform(-0.8, 0.8, (n, 1, 3)), rng.uniform(0.1, 0.7, (n, 1, 1))
    colour = np.clip(mean + spread * rng.normal(size=(n, _LEAVES + 1, 3)), -1, 1)
    yy = torch.arange(height, dtype=torch.float32)[None, :, None] + 0.5
    xx = torch.arange(width, dtype=torch.float32)[None, None, :] + 0.5
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    radius, cy, cx, square, colour = t(radius), t(cy), t(cx), torch.as_tensor(square), t(colour)
    out = colour[:, 0, :, None, None].expand(n, 3, height, width).clone()
    for k in range(_LEAVES):  # back to front: a later leaf covers the earlier ones
        dy, dx = yy - cy[:, k, None, None], xx - cx[:, k, None, None]
        r = radius[:, k, None, None]
        inside = torch.where(square[:, k, None, None],
                             torch.maximum(dy.abs(), dx.abs()) <= r, dy * dy + dx * dx <= r * r)
        out = torch.where(inside[:, None], colour[:, k + 1, :, None, None], out)
    return out


#: the random-texture families by name (see the module docstring)
FAMILIES = {"features": random_feature_textures, "dead-leaves": dead_leaves_textures}


def _replace(p: float, draw: Any):
    def replace(v: Any, rng: np.random.Generator) -> Any:
        import torch

        pick = rng.random(v.shape[0]) < p
        if not pick.any():
            return v
        textures = draw(int(pick.sum()), tuple(v.shape[-2:]), rng)
        v = v.clone()
        v[torch.as_tensor(pick, device=v.device)] = textures.to(dtype=v.dtype, device=v.device)
        return v
    return replace


def random_texture_interventions(cgn: Any, rates: Mapping[str, float],
                                 interventions: Mapping[str, Any] | None = None, *,
                                 family: str = "features") -> dict[str, Any]:
    """``interventions`` with the value of each mechanism named in ``rates`` (a key of
    :data:`REPLACEABLE`) replaced by a random texture of ``family`` (a key of
    :data:`FAMILIES`) for that fraction of the counterfactuals; a fraction of 0 leaves
    the node as it is."""
    from generators.cgn.protocol import mechanism_nodes_by_name

    check_random_textures(rates, family)
    out = dict(interventions or {})
    nodes = mechanism_nodes_by_name(cgn)
    for name, p in rates.items():
        if not p:
            continue
        node = nodes.get(name)
        if node is None:
            raise CausalKitError(f"random textures replace the {name} mechanism's "
                                 "values; the CGN has no mechanism of that name")
        out[node] = transformed(out.get(node), _replace(float(p), FAMILIES[family]), node=node)
    return out
