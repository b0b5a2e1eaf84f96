"""Texture sets that Wildlife MNIST never trains on: its texture-OOD benchmark.

Wildlife MNIST's OOD split (:func:`~causalkit.datasets.build_split`, ``split="ood"``)
draws each digit's object and background texture independently of the label, but from
the same ten object and ten background textures the training split uses. A classifier
that learned "any of these ten textures, in any combination" passes it without
recognising shapes. The sets here hold textures from a photo source disjoint from
training, in the layout :func:`~causalkit.datasets.textures.load_texture_folder` reads
(``object/k_*.png``, ``background/k_*.png``), so that the same rendering code (the
project's geometry, its 32x32 patches of 150x150 textures) draws the same test digits
with unseen textures:

``photos``
    Colour photographs from scikit-image's and matplotlib's sample data: objects from
    five photos, backgrounds from five others (two crops each).
``photos-gray``
    Grey-level texture photographs (brick, grass, gravel, ...) from scikit-image:
    texture without colour, objects and backgrounds from disjoint images.

The *validation* sets, on which a change that aims at the texture-OOD gap is chosen, so
that the two photo sets above stay untouched by every choice and are only reported:

``photos-val``
    Colour photographs again, from the two sample photos scikit-learn ships
    (``china.jpg``, ``flower.jpg``), which neither reported set uses: objects from the
    first, backgrounds from the second, ten crops each from a 3x4 grid of disjoint
    squares a third of the shorter edge wide.
``procedural``
    Seeded textures drawn by formula (smooth multi-scale noise or warped stripes, each
    through a random two-colour palette), disjoint from every photo source.

A spec ``NAME:object`` (``NAME:background``) replaces only the object (background)
textures and keeps the training ones for the other role, which tells the two effects
apart. :func:`texture_set_folder` writes a set once under
``data_home()/texture_sets/`` and returns the folder for ``textures=``.

No setting of any model is chosen on ``photos`` or ``photos-gray``: they are for
reporting only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from causalkit.errors import DataError

__all__ = ["TEXTURE_SETS", "VALIDATION_SETS", "texture_set_folder", "check_texture_spec",
           "procedural_texture"]

# (image, top, left, side): a square crop (see _crop), two disjoint ones per photo
_Crop = tuple[str, float, float, float]
_A, _B = (0.0, 0.0, 0.5), (1.0, 1.0, 0.5)


def _grid(photo: str, n: int = 10) -> list[_Crop]:
    """The first ``n`` squares, row by row, of a 3x4 grid of disjoint crops a third of the
    shorter edge wide (a 3:2 landscape photo holds them with room between columns)."""
    return [(photo, r / 2, c / 3, 1 / 3) for r in range(3) for c in range(4)][:n]


TEXTURE_SETS: dict[str, dict[str, list[_Crop]]] = {
    "photos": {
        "object": [(n, *c) for n in ("astronaut", "chelsea", "coffee", "rocket", "retina")
                   for c in (_A, _B)],
        "background": [(n, *c) for n in ("hubble_deep_field", "ihc", "motorcycle_left",
                                         "grace_hopper", "color") for c in (_A, _B)],
    },
    "photos-gray": {
        "object": [(n, *c) for n in ("brick", "grass", "gravel", "moon", "coins")
                   for c in (_A, _B)],
        "background": [(n, *c) for n in ("camera", "page", "text", "cell", "clock_motion")
                       for c in (_A, _B)],
    },
    "photos-val": {"object": _grid("china"), "background": _grid("flower")},
}
_ROLES = ("object", "background")
_FORMULA = "procedural"  # the set drawn by formula, not cut from photos
#: the sets for choosing settings on (see the module docstring); the others are reported
VALIDATION_SETS = ("photos-val", _FORMULA)
_SKLEARN_PHOTOS = ("china", "flower")


def check_texture_spec(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"photos"`` -> ``("photos", ("object", "background"))``; ``"photos:object"`` ->
    ``("photos", ("object",))``. Raises :class:`DataError` for an unknown set or role."""
    name, _, role = spec.partition(":")
    if name not in TEXTURE_SETS and name != _FORMULA:
        raise DataError(f"unknown texture set {name!r}; choose one of "
                        f"{sorted(TEXTURE_SETS) + [_FORMULA]}")
    if role and role not in _ROLES:
        raise DataError(f"unknown texture role {role!r} in {spec!r}; use NAME, "
                        "NAME:object or NAME:background")
    return name, (role,) if role else _ROLES


def _photo(name: str) -> np.ndarray:
    from PIL import Image

    if name in _SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    else:
        try:
            import skimage
        except ImportError:
            raise DataError("the photo texture sets read scikit-image's sample photos; "
                            "pip install scikit-image (or causalkit[test]), or pass a "
                            "texture folder of your own") from None
        folder = Path(skimage.__file__).parent / "data"
        matches = sorted(folder.glob(f"{name}.*"))
        if not matches:
            raise DataError(f"scikit-image has no sample photo {name!r} in {folder}")
        path = matches[0]
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def procedural_texture(role: str, k: int, side: int = 150) -> np.ndarray:
    """Texture ``k`` (0-9) of ``role`` in the ``procedural`` set: uint8 (side, side, 3).

    Even ``k``: smooth noise summed over four scales; odd ``k``: stripes of a random
    angle and frequency, warped by such noise. Either field goes through a palette of
    two colours drawn uniformly in RGB. Seeded by ``(role, k)`` alone.
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng([2026, _ROLES.index(role), k])
    noise = sum(gaussian_filter(rng.normal(size=(side, side)), sigma, mode="wrap") * sigma
                for sigma in (1.5, 3.0, 6.0, 12.0))
    noise = (noise - noise.mean()) / (noise.std() + 1e-9)
    if k % 2 == 0:
        t = 0.5 + 0.5 * np.tanh(noise)
    else:
        yy, xx = np.mgrid[:side, :side] / side
        angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 14)
        phase = 2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle))
        t = 0.5 + 0.5 * np.sin(phase + 1.5 * noise)
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _crop(image: np.ndarray, top: float, left: float, side: float) -> np.ndarray:
    """A square of ``side`` times the shorter edge, placed at fractions ``top``/``left``
    of the room left for it."""
    h, w = image.shape[:2]
    s = int(side * min(h, w))
    y, x = int(top * (h - s)), int(left * (w - s))
    return image[y:y + s, x:x + s]


_DONE = ".complete"  # written last, so a folder that has it was written whole


def _complete(folder: Path) -> bool:
    return (folder / _DONE).is_file()


def texture_set_folder(spec: str, *, training: str | os.PathLike | None = None,
                       root: str | os.PathLike | None = None) -> Path:
    """The folder (``object/``, ``background/``) of texture set ``spec``, written once.

    For ``NAME:object`` or ``NAME:background`` the other role's textures are copied
    from ``training`` (the folder the model was trained with), which is then required.
    """
    from PIL import Image

    from causalkit.datasets.mnist import data_home

    name, roles = check_texture_spec(spec)
    if len(roles) == 1 and training is None:
        raise DataError(f"{spec!r} keeps the training textures for one role: pass the "
                        "training texture folder (textures=...)")
    base = Path(root) if root is not None else data_home() / "texture_sets"
    tag = spec.replace(":", "-") + ("" if len(roles) == 2 else
                                    "-" + Path(training).expanduser().resolve().name)
    out = base / tag
    if _complete(out):
        return out
    tmp = base / f".{tag}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for role in _ROLES:
        (tmp / role).mkdir(parents=True)
        if role in roles:
            if name == _FORMULA:
                for k in range(10):
                    Image.fromarray(procedural_texture(role, k)).save(
                        tmp / role / f"{k}_{name}.png")
                continue
            for k, (photo, top, left, side) in enumerate(TEXTURE_SETS[name][role]):
                Image.fromarray(_crop(_photo(photo), top, left, side)).save(
                    tmp / role / f"{k}_{photo}.png")
        else:
            src = Path(training).expanduser() / role
            if not src.is_dir():
                raise DataError(f"training texture folder {training} has no {role}/")
            for f in sorted(src.iterdir()):
                if f.name[:1].isdigit():
                    shutil.copy(f, tmp / role / f.name)
    (tmp / _DONE).touch()
    if out.exists() and not _complete(out):
        shutil.rmtree(out, ignore_errors=True)
    try:
        tmp.rename(out)
    except OSError:  # another process wrote the same set first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return out
