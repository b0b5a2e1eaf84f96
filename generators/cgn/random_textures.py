"""Random-feature textures: mechanism values from outside every training texture.

A CGN's counterfactuals recombine the textures its mechanisms learned, and on Wildlife
MNIST those are ten fills and ten grounds: a classifier trained on every combination of
them is invariant to *those* textures, and an unseen ground still breaks it
(``docs/texture_ood.md``). Widening the set means giving the texture or background
node values no training image has. A *random-feature texture* is white noise passed
through a small convolutional network with random weights, drawn afresh for each
texture: its scale, its pattern (smooth blobs, bands, mazes, speckle) and its colours
all vary, and none of it depends on any label.

:func:`random_texture_interventions` replaces the value of a mechanism node with such a
texture for a fraction ``p`` of the counterfactuals, drawn per counterfactual from the
node's own random stream, and keeps the node's value for the others:
``{"B": Do(PerBatch(...))}`` in the vocabulary of :mod:`causalkit.interventions`, built
by :func:`generators.cgn.node_values.transformed` on whatever already sets the node
(its mechanism, or the real backgrounds). The counterfactual keeps the label the
mechanism was given; for a replaced value that label no longer names what the image
shows, so a head trained on it has nothing to learn on those rows.

How a texture is drawn (:func:`random_feature_textures`): eight channels of Gaussian
noise on a grid of cells of 1, 2 or 4 pixels, bilinearly upsampled; a 5x5 convolution
to 16 channels, each standardised and put through ``sin(a h)`` with ``a ~ U[0.5, 3]``
(small ``a``: smooth; large: bands and mazes); a 3x3 convolution to three channels,
each standardised, scaled by ``g ~ U[0.5, 2.5]``, shifted by an offset ``~ U[-1, 1]``
and squashed by ``tanh`` into [-1, 1]. Weights are Gaussian over the square root of the
fan-in; every draw comes from one ``numpy`` generator.

>>> import numpy as np
>>> t = random_feature_textures(4, (32, 32), np.random.default_rng(0))
>>> tuple(t.shape), bool(t.abs().max() <= 1)
((4, 3, 32, 32), True)
>>> bool((t == random_feature_textures(4, (32, 32), np.random.default_rng(0))).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from generators.cgn.node_values import transformed

__all__ = ["REPLACEABLE", "check_random_textures", "random_feature_textures",
           "random_texture_interventions"]

#: the mechanisms whose values a random-feature texture can replace
REPLACEABLE = ("texture", "background")
_CELLS = (2, 4, 8)  # noise grid cell sizes, in pixels
_NOISE, _HIDDEN = 8, 16  # channels of the noise and of the hidden layer


def check_random_textures(rates: Mapping[str, float]) -> None:
    """Raise :class:`CausalKitError` unless every key of ``rates`` is one of
    :data:`REPLACEABLE` and every value a fraction in [0, 1]."""
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


def _replace(p: float):
    def replace(v: Any, rng: np.random.Generator) -> Any:
        import torch

        pick = rng.random(v.shape[0]) < p
        if not pick.any():
            return v
        textures = random_feature_textures(int(pick.sum()), tuple(v.shape[-2:]), rng)
        v = v.clone()
        v[torch.as_tensor(pick, device=v.device)] = textures.to(dtype=v.dtype, device=v.device)
        return v
    return replace


def random_texture_interventions(cgn: Any, rates: Mapping[str, float],
                                 interventions: Mapping[str, Any] | None = None
                                 ) -> dict[str, Any]:
    """``interventions`` with the value of each mechanism named in ``rates`` (a key of
    :data:`REPLACEABLE`) replaced by a random-feature texture for that fraction of the
    counterfactuals; a fraction of 0 leaves the node as it is."""
    from generators.cgn.protocol import mechanism_nodes_by_name

    check_random_textures(rates)
    out = dict(interventions or {})
    nodes = mechanism_nodes_by_name(cgn)
    for name, p in rates.items():
        if not p:
            continue
        node = nodes.get(name)
        if node is None:
            raise CausalKitError(f"random-feature textures replace the {name} mechanism's "
                                 "values; the CGN has no mechanism of that name")
        out[node] = transformed(out.get(node), _replace(float(p)), node=node)
    return out
