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
``"hue+invert"``
    both, the rotation first;
``"none"``
    the images as they are.

:func:`widen_palette` is a pure function of ``(images, mode, seed)``: the draw of image
``i`` depends on ``seed`` and ``i`` only.

>>> import numpy as np
>>> x = np.zeros((2, 3, 4, 4), np.uint8)
>>> widen_palette(x, "none", seed=0) is x
True
>>> set(np.unique(widen_palette(x, "invert", seed=0)).tolist()) <= {0, 255}
True
"""

from __future__ import annotations

import numpy as np

from causalkit.errors import CausalKitError

__all__ = ["PALETTES", "widen_palette", "check_palette"]

PALETTES = ("none", "invert", "hue", "hue+invert")


def check_palette(mode: str) -> None:
    """Raise :class:`CausalKitError` unless ``mode`` is one of :data:`PALETTES`."""
    if mode not in PALETTES:
        raise CausalKitError(f"unknown palette {mode!r}; choose one of {list(PALETTES)}")


def _rotate_hue(x: np.ndarray, turns: np.ndarray) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(x.transpose(0, 2, 3, 1).astype(np.float64) / 255.0)
    hsv[..., 0] = (hsv[..., 0] + turns[:, None, None]) % 1.0
    return np.clip(np.rint(hsv2rgb(hsv) * 255.0), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2)


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
    turns = rng.random(len(images))
    flips = rng.random(len(images)) < 0.5
    out = np.empty_like(images)
    for i in range(0, len(images), chunk):
        part = images[i:i + chunk]
        if "hue" in mode:
            part = _rotate_hue(part, turns[i:i + chunk])
        if "invert" in mode:
            part = np.where(flips[i:i + chunk, None, None, None], 255 - part, part)
        out[i:i + chunk] = part
    return out
