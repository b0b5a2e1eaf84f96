"""Wider palettes for counterfactual images: a colour shift drawn independently of every label.

A CGN's counterfactuals recombine the training textures in every combination, so a
classifier trained on them stops reading *which* texture sits behind a digit, but it may
still read the colours those textures have: on Wildlife MNIST the ten training grounds
span a few palettes, and a ground outside them breaks the classifier (``docs/texture_ood.md``).
A counterfactual's colours are one more nuisance the label must not cause, so they can
be intervened on like the texture and background labels: each image gets a colour
transform drawn from a distribution that does not look at any label,

``"invert"``
    ``x -> 255 - x`` with probability 1/2: the digit's luminance relative to its ground
    changes sign, and every colour goes to its complement;
``"hue"``
    the hue of every pixel rotated by one angle drawn uniformly per image (saturation and
    value kept);
``"saturation"``
    the saturation of every pixel scaled by one factor drawn uniformly in [0, 1] per
    image (hue and value kept): from grey to the image's own colours;
``"hue+invert"``, ``"hue+saturation+invert"``, ...
    several, joined by ``+`` in that order (:data:`TRANSFORMS`) and applied in it;
``"none"``
    the images as they are.

:func:`widen_palette` is a pure function of ``(images, mode, seed)``: the draw of image
``i`` depends on ``seed`` and ``i`` only.

The shift can act on two places (the ``target``, :data:`TARGETS`):

``"image"``
    the composed counterfactual ``x = m f + (1 - m) b``, one draw per image
    (:func:`widen_palette`): digit and ground move together, so the colour *relation*
    between them stays one the training textures have;
``"mechanisms"``
    the texture mechanism's value ``f`` and the background mechanism's value ``b``,
    each with a draw of its own, before the composer (:func:`palette_interventions`):
    ``{"F": Do(PerBatch(shift of f)), "B": Do(PerBatch(shift of b))}`` in the
    vocabulary of :mod:`causalkit.interventions`. The digit and its ground then get
    unrelated colours, and a digit can be brighter or darker than its ground, similar
    or far from it in hue, whatever the training textures were.

>>> import numpy as np
>>> x = np.zeros((2, 3, 4, 4), np.uint8)
>>> widen_palette(x, "none", seed=0) is x
True
>>> set(np.unique(widen_palette(x, "invert", seed=0)).tolist()) <= {0, 255}
True
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from generators.cgn.node_values import transformed

__all__ = ["PALETTES", "TRANSFORMS", "TARGETS", "widen_palette", "check_palette", "shift_colours",
           "palette_interventions"]

#: the colour transforms, in the order in which a palette names and applies them
TRANSFORMS = ("hue", "saturation", "invert")
PALETTES = ("none", *("+".join(t for t, on in zip(TRANSFORMS, bits, strict=True) if on)
                      for bits in itertools.product((0, 1), repeat=len(TRANSFORMS))
                      if any(bits)))
TARGETS = ("image", "mechanisms")
#: the mechanisms whose values a ``"mechanisms"`` shift changes
SHIFTED = ("texture", "background")


def check_palette(mode: str, target: str = "image") -> None:
    """Raise :class:`CausalKitError` unless ``mode`` is one of :data:`PALETTES` and
    ``target`` one of :data:`TARGETS`."""
    if mode not in PALETTES:
        raise CausalKitError(f"unknown palette {mode!r}; choose one of {list(PALETTES)}")
    if target not in TARGETS:
        raise CausalKitError(f"unknown palette target {target!r}; choose one of "
                             f"{list(TARGETS)}")


def _draws(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per image: a hue rotation in turns, whether to invert, a saturation factor (drawn
    in this order, whatever the palette uses)."""
    turns, flips = rng.random(n), rng.random(n) < 0.5
    return {"hue": turns, "invert": flips, "saturation": rng.random(n)}


def _hsv01(x: np.ndarray, parts: list[str], draws: dict[str, np.ndarray]) -> np.ndarray:
    """Float ``(N, H, W, 3)`` images in [0, 1] with each image's hue rotated and/or
    saturation scaled by its draws."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(x)
    if "hue" in parts:
        hsv[..., 0] = (hsv[..., 0] + draws["hue"][:, None, None]) % 1.0
    if "saturation" in parts:
        hsv[..., 1] *= draws["saturation"][:, None, None]
    return hsv2rgb(hsv)


def _hsv_uint8(x: np.ndarray, parts: list[str], draws: dict[str, np.ndarray]) -> np.ndarray:
    shifted = _hsv01(x.transpose(0, 2, 3, 1).astype(np.float64) / 255.0, parts, draws)
    return np.clip(np.rint(shifted * 255.0), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2)


def widen_palette(images: np.ndarray, mode: str, *, seed: int,
                  chunk: int = 8192) -> np.ndarray:
    """``images`` (uint8 ``(N, 3, H, W)``) with each image's colours shifted by ``mode``.

    Returns the input itself for ``"none"``, else a new array.
    """
    check_palette(mode)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
        raise CausalKitError(f"widen_palette takes uint8 RGB images (N, 3, H, W), got "
                             f"{images.dtype} {images.shape}")
    if mode == "none":
        return images
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A1E77E]))
    draws, parts = _draws(rng, len(images)), mode.split("+")
    out = np.empty_like(images)
    for i in range(0, len(images), chunk):
        part, own = images[i:i + chunk], {k: v[i:i + chunk] for k, v in draws.items()}
        if "hue" in parts or "saturation" in parts:
            part = _hsv_uint8(part, parts, own)
        if "invert" in parts:
            part = np.where(own["invert"][:, None, None, None], 255 - part, part)
        out[i:i + chunk] = part
    return out


def shift_colours(x: Any, mode: str, rng: np.random.Generator) -> Any:
    """Float images ``x`` in [-1, 1] (a tensor ``(N, 3, H, W)``), each shifted by ``mode``
    with a draw from ``rng``; same dtype and device. ``"none"`` returns ``x``."""
    import torch

    check_palette(mode)
    if mode == "none":
        return x
    if x.ndim != 4 or x.shape[1] != 3:
        raise CausalKitError(f"a colour shift takes RGB images (N, 3, H, W), got {tuple(x.shape)}")
    draws, parts = _draws(rng, x.shape[0]), mode.split("+")
    y = ((x.detach().float().cpu().numpy().transpose(0, 2, 3, 1) + 1.0) / 2.0).clip(0.0, 1.0)
    if "hue" in parts or "saturation" in parts:
        y = _hsv01(y.astype(np.float64), parts, draws)
    if "invert" in parts:
        y = np.where(draws["invert"][:, None, None, None], 1.0 - y, y)
    out = torch.from_numpy(np.ascontiguousarray(y.transpose(0, 3, 1, 2) * 2.0 - 1.0))
    return out.to(dtype=x.dtype, device=x.device)


def palette_interventions(cgn: Any, mode: str,
                          interventions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``interventions`` with the texture and background mechanisms' values shifted by
    ``mode``, each node by draws from its own stream (target ``"mechanisms"``).

    What already sets a node (nothing, ``Do(PerBatch(f))`` such as real backgrounds, or
    per-sample values) is kept and its values shifted
    (:func:`generators.cgn.node_values.transformed`); any other intervention is refused.
    """
    from generators.cgn.protocol import mechanism_nodes_by_name

    check_palette(mode)
    out = dict(interventions or {})
    if mode == "none":
        return out
    nodes = mechanism_nodes_by_name(cgn)
    for name in SHIFTED:
        node = nodes.get(name)
        if node is None:
            raise CausalKitError(f"a mechanism palette shifts {list(SHIFTED)}; the CGN has no "
                                 f"mechanism named {name!r}")
        out[node] = transformed(out.get(node),
                                lambda v, rng: shift_colours(v, mode, rng), node=node)
    return out
