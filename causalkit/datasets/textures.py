"""Textures of Wildlife MNIST: the DTD images from a folder, or procedural stand-ins.

A texture bank is a uint8 array ``(10, S, S, 3)``: texture ``k`` encodes class ``k``.
From a folder, class ``k`` is the one image whose file name starts with the digit ``k``
(CGN's layout: ``textures/object/0_striped_0001.jpg`` ... and ``textures/background/``),
resized to ``S x S`` (150 by default); Wildlife MNIST then cuts a random 32x32 patch per
sample. Without a folder, :func:`procedural_textures` draws seeded stripes (objects) and
veins (backgrounds) so that everything works offline.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from causalkit.datasets.variants import check_rendering
from causalkit.errors import DataError

__all__ = ["TEXTURE_SIZE", "PAPER_PAD", "load_texture_folder", "procedural_textures",
           "texture_banks"]

TEXTURE_SIZE = 150
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_texture_folder(folder: str | os.PathLike, size: int = TEXTURE_SIZE,
                        resample: str = "bilinear") -> np.ndarray:
    """Load ten class textures from ``folder``, resized to ``size x size`` (``resample``:
    ``"bilinear"``, or ``"nearest"`` as the official CGN code does).

    Raises
    ------
    DataError
        If the folder is missing, or does not hold exactly one image per class 0..9.
    """
    from PIL import Image

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"texture folder {folder} does not exist; pass a folder with ten "
                        "images named 0_*.jpg .. 9_*.jpg, or no folder for the procedural "
                        "textures")
    by_class: dict[int, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in _IMAGE_SUFFIXES and path.name[:1].isdigit():
            by_class.setdefault(int(path.name[0]), []).append(path)
    missing = [k for k in range(10) if k not in by_class]
    doubled = {k: [p.name for p in v] for k, v in by_class.items() if len(v) > 1}
    if missing or doubled:
        problem = (f"no image for class(es) {missing}" if missing else
                   f"several images for one class: {doubled}")
        raise DataError(f"texture folder {folder} needs its ten images, one per class, "
                        f"named with the class digit first (0_*.jpg .. 9_*.jpg): {problem}")
    if resample not in ("bilinear", "nearest"):
        raise DataError(f"unknown resample {resample!r}; use 'bilinear' or 'nearest'")
    mode = getattr(Image.Resampling, resample.upper())
    bank = np.empty((10, size, size, 3), dtype=np.uint8)
    for k in range(10):
        try:
            with Image.open(by_class[k][0]) as im:
                bank[k] = np.asarray(im.convert("RGB").resize((size, size), mode))
        except OSError as exc:
            raise DataError(f"cannot read texture {by_class[k][0]}: {exc}") from None
    return bank


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Bilinearly upsampled random grid: smooth noise in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _two_tone(pattern: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    img = dark[None, None, :] * (1 - pattern[..., None]) + light[None, None, :] * pattern[..., None]
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def procedural_textures(kind: str, seed: int = 0, size: int = TEXTURE_SIZE) -> np.ndarray:
    """Ten seeded textures per ``kind``: ``"stripes"`` (objects) or ``"veins"`` (backgrounds).

    Class ``k`` differs in orientation, frequency and hue, so the texture id is as
    recognisable as the DTD images; the same ``seed`` gives the same bytes.
    """
    if kind not in ("stripes", "veins"):
        raise DataError(f"unknown procedural texture kind {kind!r}; use 'stripes' or 'veins'")
    rng = np.random.default_rng([seed, 0 if kind == "stripes" else 1])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    bank = np.empty((10, size, size, 3), dtype=np.uint8)
    for k in range(10):
        # Objects: saturated stripes on near-black, hue opposite to the same class's
        # background; backgrounds: pale veins. So a digit stands out on any background.
        if kind == "stripes":
            hue = (k / 10 + 0.5) % 1.0
            light, dark = np.array(_hsv(hue, 0.9, 1.0)), np.array(_hsv(hue, 0.9, 0.15))
        else:
            hue = k / 10
            light, dark = np.array(_hsv(hue, 0.35, 0.95)), np.array(_hsv(hue, 0.5, 0.45))
        angle = np.pi * k / 10 + rng.uniform(-0.05, 0.05)
        coord = xx * np.cos(angle) + yy * np.sin(angle)
        if kind == "stripes":
            period = 6.0 + 2.0 * (k % 4) + rng.uniform(0, 1)
            wobble = 2.0 * _smooth_noise(rng, size, 6)
            pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (coord + wobble) / period)
        else:
            turbulence = sum(_smooth_noise(rng, size, c) / i
                             for i, c in enumerate((4, 8, 16, 32), start=1))
            pattern = np.abs(np.sin(coord / (10.0 + k) + 6.0 * turbulence)) ** 0.3
        bank[k] = _two_tone(pattern, dark, light)
    return bank


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, s, v)


#: reflect padding of the official Wildlife loader's crops (RandomCrop(32, padding=3))
PAPER_PAD = 3


def texture_banks(folder: str | os.PathLike | None, seed: int = 0,
                  rendering: str = "pad") -> tuple[np.ndarray, np.ndarray, str]:
    """The object and background banks and a short fingerprint of their bytes.

    ``folder`` holds ``object/`` and ``background/`` (CGN's layout); ``None`` gives the
    procedural stripes and veins. ``rendering="paper"`` follows the official loader:
    nearest-neighbour resizing, and a reflect padding of :data:`PAPER_PAD` pixels, so
    that a 32x32 patch may reach past the texture's edge.
    """
    check_rendering(rendering)
    resample = "nearest" if rendering == "paper" else "bilinear"
    if folder is None:
        obj, bg = procedural_textures("stripes", seed), procedural_textures("veins", seed)
    else:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise DataError(f"texture folder {folder} does not exist; it must hold object/ "
                            "and background/ with ten images each (CGN's layout)")
        obj = load_texture_folder(folder / "object", resample=resample)
        bg = load_texture_folder(folder / "background", resample=resample)
    if rendering == "paper":
        obj, bg = (np.pad(b, ((0, 0), (PAPER_PAD,) * 2, (PAPER_PAD,) * 2, (0, 0)),
                          mode="reflect") for b in (obj, bg))
    digest = hashlib.sha256(obj.tobytes() + bg.tobytes()).hexdigest()[:16]
    return obj, bg, digest
