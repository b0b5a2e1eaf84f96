"""Colored, double-colored and Wildlife MNIST as structural causal models.

Each variant is a :class:`~causalkit.scm.StructuralCausalModel` over a pool of grey
MNIST digits. The nodes, for colored MNIST::

    digit    -> label          which MNIST image (exogenous); its annotated class
    label    -> fg_class       the colour class, tied to the label with strength rho
    fg_class -> fg_color       class mean colour + Gaussian jitter (std sigma), in [0, 1]
    digit, fg_color -> image   the grey level is the stroke's alpha over black

Double-colored MNIST adds ``bg_class -> bg_color`` (the background colour, tied to the
label independently with the same rho); Wildlife MNIST replaces the colours by texture
ids ``obj_texture`` / ``bg_texture`` and their random 32x32 patch offsets ``obj_offset``
/ ``bg_offset``.

**rho.** With probability ``rho`` a nuisance class equals the label, otherwise it is
uniform over the *other* nine classes. ``rho = 1`` is fully biased (the papers'
training set), ``rho = 0.1`` makes the nuisance independent of the label, and values
below 0.1 anti-correlate them.

**OOD.** The out-of-distribution test set is the *same* SCM under
``do(nuisance_class := uniform over 0..9)`` for every nuisance class node -- one
vocabulary for datasets, CGNs and GANs. With the same seed, the in-distribution and the
OOD test samples share all other noise (digit, jitter, patch offsets): the OOD split is
the counterfactual of the test split with its nuisances re-drawn.

Images are 3x32x32 uint8: the 28x28 digits are zero-padded by two pixels on each side
(no resampling, so strokes keep MNIST's exact grey levels); the digit mask is the grey
level divided by 255. ``rendering="paper"`` draws them as the official CGN code does
instead (:data:`RENDERINGS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from causalkit.datasets.palettes import COLORED_PALETTE, DOUBLE_BG_PALETTE, DOUBLE_FG_PALETTE
from causalkit.errors import DataError

__all__ = ["Variant", "ColoredMNIST", "DoubleColoredMNIST", "WildlifeMNIST", "VARIANTS",
           "IMAGE_SIZE", "PATCH", "RENDERINGS", "check_rendering", "pad_digits", "upscale_digits",
           "render_digits", "tie_to_label", "uniform_classes"]

IMAGE_SIZE = 32
PATCH = 32
_CHUNK = 1024  # samples composited at once: keeps the uint16 temporaries in cache


def pad_digits(images: np.ndarray) -> np.ndarray:
    """Zero-pad ``(N, 28, 28)`` digits to ``(N, 32, 32)`` (centred, no resampling)."""
    if images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        return images
    dy, dx = IMAGE_SIZE - images.shape[1], IMAGE_SIZE - images.shape[2]
    if dy < 0 or dx < 0:
        raise DataError(f"digits of shape {images.shape[1:]} are larger than 32x32")
    return np.pad(images, ((0, 0), (dy // 2, dy - dy // 2), (dx // 2, dx - dx // 2)))


def upscale_digits(images: np.ndarray, binarise: bool = False) -> np.ndarray:
    """Nearest-neighbour resize of ``(N, 28, 28)`` digits to ``(N, 32, 32)``, as the
    official CGN code does (``F.interpolate``'s default mode: source pixel
    ``floor(i * 28 / 32)``); ``binarise`` then sets every pixel above 0.1 x 255 to 255
    and the rest to 0 (its double-colored and Wildlife loaders)."""
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        rows = np.floor(np.arange(IMAGE_SIZE) * images.shape[1] / IMAGE_SIZE).astype(int)
        cols = np.floor(np.arange(IMAGE_SIZE) * images.shape[2] / IMAGE_SIZE).astype(int)
        images = images[:, rows][:, :, cols]
    if binarise:
        images = np.where(images > 25.5, 255, 0).astype(np.uint8)
    return images


#: How the grey digits become 32x32 alpha masks. ``pad`` (ours, the default) keeps
#: MNIST's strokes and grey levels exactly; ``paper`` is the official CGN code's
#: rendering, which the paper's figures and the official checkpoints come from:
#: digits nearest-upscaled to 32x32, binarised except on colored MNIST (whose official
#: loader resizes a precomputed array and does not binarise it).
RENDERINGS = ("pad", "paper")


def check_rendering(rendering: str) -> None:
    """Raise :class:`DataError` unless ``rendering`` is one of :data:`RENDERINGS`."""
    if rendering not in RENDERINGS:
        raise DataError(f"unknown rendering {rendering!r}; choose one of {list(RENDERINGS)} "
                        "('pad': ours, 'paper': the official CGN code's)")


def render_digits(images: np.ndarray, rendering: str = "pad",
                  binarise: bool = False) -> np.ndarray:
    """The ``(N, 32, 32)`` alpha masks of grey digits under a rendering (:data:`RENDERINGS`)."""
    check_rendering(rendering)
    return upscale_digits(images, binarise) if rendering == "paper" else pad_digits(images)


def tie_to_label(label: np.ndarray, u: np.ndarray, rho: float) -> np.ndarray:
    """Nuisance class from the label: equal with probability ``rho``, else another class.

    ``u`` holds two uniforms per sample: ``u[:, 0]`` decides alignment, ``u[:, 1]``
    picks one of the nine other classes uniformly.
    """
    other = (label + 1 + np.minimum((u[:, 1] * 9).astype(np.int64), 8)) % 10
    return np.where(u[:, 0] < rho, label, other).astype(np.int64)


def uniform_classes(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` classes uniform over 0..9: the OOD intervention's distribution."""
    return rng.integers(0, 10, size=n, dtype=np.int64)


def _two_uniforms(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((n, 2))


def _digit_noise(pool_size: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    def draw(n: int, rng: np.random.Generator) -> np.ndarray:
        # Without replacement while the pool lasts, so a full-size split uses every digit once.
        if n <= pool_size:
            return rng.permutation(pool_size)[:n].astype(np.int64)
        return rng.integers(0, pool_size, size=n, dtype=np.int64)

    return draw


def _to_u8(colors: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] -> uint8 (c, 3, 1, 1), ready to broadcast over NCHW pixels."""
    return np.rint(colors * 255.0).astype(np.uint8)[:, :, None, None]


def _blend(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray | None) -> np.ndarray:
    """Composite ``alpha * fg + (1 - alpha) * bg`` in integer arithmetic -> uint8.

    ``alpha`` is uint8 and broadcasts against ``fg`` / ``bg`` (uint8; ``bg=None`` is
    black); 255 means digit. uint16 holds 255 * 255, and integer maths keeps a 60k build
    fast and bit-exact across machines.
    """
    a = alpha.astype(np.uint16)
    out = a * fg
    if bg is not None:
        out += (255 - a) * bg
    out += 128  # exact round(x / 255) for x <= 255 * 255, without a division
    out += out >> 8
    out >>= 8
    return out.astype(np.uint8)


class Variant:
    """A biased MNIST variant: its graph, its SCM over a digit pool, its OOD intervention.

    Subclasses declare ``name``, the nuisance ``class_nodes`` tied to the label, the
    node ``roles`` and ``edges``, and implement :meth:`_mechanisms`.
    """

    name: ClassVar[str]
    class_nodes: ClassVar[tuple[str, ...]]
    edges: ClassVar[tuple[tuple[str, str], ...]]
    roles: ClassVar[Mapping[str, str]]
    default_sigma: ClassVar[float | None] = None
    uses_textures: ClassVar[bool] = False
    #: the official loader binarises the digits (rendering ``paper``)
    paper_binarises: ClassVar[bool] = True
    description: ClassVar[str] = ""
    #: Node positions (x, y) for drawing the graph (docs, ``causalkit data show``).
    positions: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def graph(self) -> Any:
        """The variant's :class:`~causalkit.graph.CausalGraph` (roles attached)."""
        from causalkit.graph import CausalGraph

        return CausalGraph(edges=list(self.edges), roles=dict(self.roles))

    def check_params(self, rho: float, sigma: float | None) -> float | None:
        """Validate ``rho`` and ``sigma``; returns the effective sigma."""
        if not (isinstance(rho, (int, float)) and 0.0 <= float(rho) <= 1.0):
            raise DataError(f"rho must be a probability in [0, 1], got {rho!r}; 1.0 is fully "
                            "biased, 0.1 makes the nuisance independent of the label")
        if self.default_sigma is None:
            if sigma is not None:
                raise DataError(f"{self.name} has no colour jitter; leave sigma unset")
            return None
        sigma = self.default_sigma if sigma is None else sigma
        if not (isinstance(sigma, (int, float)) and 0.0 <= float(sigma) < 10):
            raise DataError(f"sigma (the jitter's standard deviation) must be >= 0, got "
                            f"{sigma!r}")
        return float(sigma)

    def scm(self, digits: np.ndarray, labels: np.ndarray, *, rho: float = 1.0,
            sigma: float | None = None, textures: tuple[np.ndarray, np.ndarray] | None = None,
            rendering: str = "pad") -> Any:
        """The variant's SCM over a pool of grey ``digits`` (N, 28|32, 28|32) and ``labels``.

        Parameters
        ----------
        rho
            Strength of the label-nuisance tie (see the module docstring).
        sigma
            Standard deviation of the colour jitter (colour variants only).
        textures
            ``(object_bank, background_bank)``, each (10, S, S, 3) uint8 (Wildlife only).
        rendering
            How digits become alpha masks (:data:`RENDERINGS`, :func:`render_digits`).
        """
        from causalkit.scm import StructuralCausalModel

        sigma = self.check_params(rho, sigma)
        alpha_pool = self.alpha_masks(digits, rendering)
        labels = np.asarray(labels, dtype=np.int64)
        mech, noise = self._mechanisms(rho=float(rho), sigma=sigma, textures=textures)
        mech = {"digit": lambda pa, u: u,
                "label": lambda pa, u: labels[pa["digit"]], **mech}
        mech["image"] = self._image_mechanism(alpha_pool, textures)
        noise = {"digit": _digit_noise(len(labels)), **noise}
        return StructuralCausalModel(self.graph(), mech, noise)

    def alpha_masks(self, digits: np.ndarray, rendering: str = "pad") -> np.ndarray:
        """The 32x32 uint8 alpha masks this variant draws grey ``digits`` with (255 =
        digit), under ``rendering`` (:func:`render_digits`)."""
        return render_digits(np.asarray(digits, dtype=np.uint8), rendering,
                             binarise=self.paper_binarises)

    def ood(self, scm: Any) -> Any:
        """``scm`` under do(every nuisance class := uniform over 0..9)."""
        from causalkit.interventions import Draw

        return scm.do({node: Draw(uniform_classes) for node in self.class_nodes})

    # subclass hooks
    def _mechanisms(self, *, rho: float, sigma: float | None,
                    textures: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    def _image_mechanism(self, alpha_pool: np.ndarray, textures: Any) -> Callable:
        raise NotImplementedError


def _class_node(rho: float) -> Callable:
    return lambda pa, u: tie_to_label(pa["label"], u, rho)


def _color_node(palette: np.ndarray, parent: str, sigma: float) -> Callable:
    def colour(pa: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
        return np.clip(palette[pa[parent]] + np.float32(sigma) * u, 0.0, 1.0).astype(np.float32)

    return colour


def _gauss3(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, 3), dtype=np.float32)


class ColoredMNIST(Variant):
    """Colored MNIST: the stroke takes its colour class's mean colour plus jitter, on black."""

    name = "colored-mnist"
    class_nodes = ("fg_class",)
    edges = (("digit", "label"), ("label", "fg_class"), ("fg_class", "fg_color"),
             ("digit", "image"), ("fg_color", "image"))
    roles = {"digit": "object", "label": "label", "fg_class": "nuisance",
             "fg_color": "nuisance", "image": "image"}
    default_sigma = float(np.sqrt(0.020))
    paper_binarises = False
    positions = {"digit": (0, 1.4), "label": (0, 0), "fg_class": (1, 0), "fg_color": (2, 0),
                 "image": (3, 1.4)}
    description = "digit stroke coloured by class (jitter std sqrt(0.020)), black background"

    def _mechanisms(self, *, rho, sigma, textures):
        return ({"fg_class": _class_node(rho),
                 "fg_color": _color_node(COLORED_PALETTE, "fg_class", sigma)},
                {"fg_class": _two_uniforms, "fg_color": _gauss3})

    def _image_mechanism(self, alpha_pool, textures):
        def image(pa: dict[str, np.ndarray], u: Any) -> np.ndarray:
            idx, col = pa["digit"], pa["fg_color"]
            out = np.empty((len(idx), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            for s in range(0, len(idx), _CHUNK):
                out[s:s + _CHUNK] = _blend(alpha_pool[idx[s:s + _CHUNK], None],
                                           _to_u8(col[s:s + _CHUNK]), None)
            return out

        return image


class DoubleColoredMNIST(Variant):
    """Double-colored MNIST: digit and background colours both encode the label (CGN)."""

    name = "double-colored-mnist"
    class_nodes = ("fg_class", "bg_class")
    edges = (("digit", "label"), ("label", "fg_class"), ("label", "bg_class"),
             ("fg_class", "fg_color"), ("bg_class", "bg_color"), ("digit", "image"),
             ("fg_color", "image"), ("bg_color", "image"))
    roles = {"digit": "object", "label": "label", "fg_class": "nuisance",
             "fg_color": "nuisance", "bg_class": "nuisance", "bg_color": "nuisance",
             "image": "image"}
    default_sigma = 0.01
    positions = {"digit": (0, 1.4), "label": (0, 0), "fg_class": (1, 0.7),
                 "bg_class": (1, -0.7), "fg_color": (2, 0.7), "bg_color": (2, -0.7),
                 "image": (3, 1.4)}
    description = "digit and background coloured by class (CGN palette, jitter std 0.01)"

    def _mechanisms(self, *, rho, sigma, textures):
        return ({"fg_class": _class_node(rho), "bg_class": _class_node(rho),
                 "fg_color": _color_node(DOUBLE_FG_PALETTE, "fg_class", sigma),
                 "bg_color": _color_node(DOUBLE_BG_PALETTE, "bg_class", sigma)},
                {"fg_class": _two_uniforms, "bg_class": _two_uniforms,
                 "fg_color": _gauss3, "bg_color": _gauss3})

    def _image_mechanism(self, alpha_pool, textures):
        def image(pa: dict[str, np.ndarray], u: Any) -> np.ndarray:
            idx, fg, bg = pa["digit"], pa["fg_color"], pa["bg_color"]
            out = np.empty((len(idx), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            for s in range(0, len(idx), _CHUNK):
                out[s:s + _CHUNK] = _blend(alpha_pool[idx[s:s + _CHUNK], None],
                                           _to_u8(fg[s:s + _CHUNK]), _to_u8(bg[s:s + _CHUNK]))
            return out

        return image


_LOW = np.uint32(0x00FF00FF)  # selects two 8-bit channels of a packed pixel, 16 bits apart


def _pack_rgb(bank: np.ndarray) -> np.ndarray:
    """(10, S, S, 3) uint8 -> flat uint32 words ``R | G << 8 | B << 16``, so that one
    ``take`` moves a whole pixel and two channels blend at once (see :func:`_blend_packed`)."""
    b = bank.astype(np.uint32)
    return (b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)).reshape(-1)


def _patches(packed: np.ndarray, size: int, ids: np.ndarray,
             offsets: np.ndarray) -> np.ndarray:
    """Gather 32x32 patches from a packed bank of ``size x size`` textures: ids (c,),
    offsets (c, 2) as (row, col) -> packed uint32 (c, 32, 32)."""
    r = np.arange(PATCH)
    start = (ids * size + offsets[:, 0]) * size + offsets[:, 1]
    flat = start[:, None, None] + (r * size)[None, :, None] + r[None, None, :]
    return packed.take(flat)


def _div255(x: np.ndarray) -> np.ndarray:
    """Exact ``round(v / 255)`` of both 16-bit fields of ``x`` (each v <= 255 * 255)."""
    x += np.uint32(0x00800080)
    x += (x >> 8) & _LOW
    x >>= 8
    x &= _LOW
    return x


def _blend_packed(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                  out: np.ndarray) -> None:
    """``alpha * fg + (255 - alpha) * bg`` on packed pixels, written into ``out``
    (uint8 NCHW). R and B blend together in one uint32 (products stay below 2**16 per
    field), G on its own: the same exact integer result as :func:`_blend`, in a third of
    the memory traffic."""
    a = alpha.astype(np.uint32)
    ia = np.uint32(255) - a
    rb = _div255((fg & _LOW) * a + (bg & _LOW) * ia)
    g = _div255(((fg >> 8) & _LOW) * a + ((bg >> 8) & _LOW) * ia)
    out[:, 0] = rb
    out[:, 1] = g
    out[:, 2] = rb >> 16


class WildlifeMNIST(Variant):
    """Wildlife MNIST: the digit filled with an object texture, the rest with a background
    texture; in training the label picks both textures (each tied with strength rho)."""

    name = "wildlife-mnist"
    class_nodes = ("obj_texture", "bg_texture")
    edges = (("digit", "label"), ("label", "obj_texture"), ("label", "bg_texture"),
             ("digit", "image"), ("obj_texture", "image"), ("bg_texture", "image"),
             ("obj_offset", "image"), ("bg_offset", "image"))
    roles = {"digit": "object", "label": "label", "obj_texture": "nuisance",
             "bg_texture": "nuisance", "obj_offset": "noise", "bg_offset": "noise",
             "image": "image"}
    uses_textures = True
    positions = {"digit": (0, 1.4), "label": (0, 0), "obj_texture": (1, 0.7),
                 "bg_texture": (1, -0.7), "obj_offset": (2, -0.3), "bg_offset": (2, -1.2),
                 "image": (3, 1.4)}
    description = "digit filled with a striped texture, background veined, both by class"

    def _mechanisms(self, *, rho, sigma, textures):
        if textures is None:
            raise DataError("wildlife-mnist needs texture banks; see "
                            "causalkit.datasets.textures.texture_banks")
        size = textures[0].shape[1]
        if size < PATCH or textures[1].shape[1] < PATCH:
            raise DataError(f"textures must be at least {PATCH}x{PATCH}")

        def offsets(bank_size: int) -> Callable:
            return lambda n, rng: rng.integers(0, bank_size - PATCH + 1, size=(n, 2),
                                               dtype=np.int64)

        return ({"obj_texture": _class_node(rho), "bg_texture": _class_node(rho),
                 "obj_offset": lambda pa, u: u, "bg_offset": lambda pa, u: u},
                {"obj_texture": _two_uniforms, "bg_texture": _two_uniforms,
                 "obj_offset": offsets(size), "bg_offset": offsets(textures[1].shape[1])})

    def _image_mechanism(self, alpha_pool, textures):
        (obj_bank, s_obj), (bg_bank, s_bg) = ((_pack_rgb(t), t.shape[1]) for t in textures)

        def image(pa: dict[str, np.ndarray], u: Any) -> np.ndarray:
            idx = pa["digit"]
            out = np.empty((len(idx), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            for s in range(0, len(idx), _CHUNK):
                sl = slice(s, s + _CHUNK)
                fg = _patches(obj_bank, s_obj, pa["obj_texture"][sl], pa["obj_offset"][sl])
                bg = _patches(bg_bank, s_bg, pa["bg_texture"][sl], pa["bg_offset"][sl])
                _blend_packed(alpha_pool[idx[sl]], fg, bg, out[sl])
            return out

        return image


#: The variants by name.
VARIANTS: dict[str, Variant] = {v.name: v for v in (ColoredMNIST(), DoubleColoredMNIST(),
                                                     WildlifeMNIST())}
