"""The ImageNet-C corruptions of Hendrycks & Dietterich (ICLR 2019) as pure functions.

ImageNet-C scores a classifier on 15 *benchmark* corruptions, each at 5 severities,
grouped as noise, blur, weather and digital, plus 4 *extra* corruptions held out for
validation. One function makes all 95 settings::

    >>> from skimage.data import chelsea
    >>> out = corrupt(chelsea(), "motion_blur", 3, seed=0)   # uint8 HxWx3, same shape

``corrupt`` is deterministic per ``seed``: every random draw (the noise, the blur
angle, the glass-blur pixel shuffle, the fog plasma, the frost crop) comes from
``numpy.random.default_rng(seed)``, never from numpy's global state, so images can be
corrupted in any order, in DataLoader workers, and reproduced one by one.
:func:`image_seed` derives a distinct seed per (image, corruption, severity).

Why an own implementation
-------------------------
The reference code (``hendrycks/robustness``, ``ImageNet-C/create_c/make_imagenet_c.py``)
needs ImageMagick through Wand and OpenCV, and calls ``skimage.filters.gaussian`` with
``multichannel=True``, which current scikit-image rejects; the pip package
``imagecorruptions`` 1.1.2 inherits that break. The maintained alternative on PyPI,
``corrupt-tta``, fixes the scikit-image call but still needs ``opencv-python``, draws from
numpy's global random state (no per-call seed), and keeps the reference's per-pixel
Python loop for glass blur. This module therefore re-implements each corruption on
numpy, scipy, Pillow and scikit-image (all already causalkit dependencies), transcribing
the reference constants per severity and the reference formula, and the tests
(``tests/test_corruptions.py``) check each one against that formula. Where the reference
leans on a C routine, the routine is re-derived:

* **motion blur** (ImageMagick ``MotionBlurImage``): a one-sided Gaussian line kernel of
  ``2*ceil(radius)+1`` taps, ``k_i ∝ exp(-i²/2σ²)``, tap ``i`` sampled at
  ``(ceil(i·cos a - ½), ceil(i·sin a - ½))`` with edge pixels repeated, rounded to 8 bit
  like the PNG the reference decodes;
* **defocus blur**: the reference disk kernel, anti-aliased with OpenCV's Gaussian
  kernel formula, applied by FFT over a reflect-101 padding (OpenCV's border);
* **elastic transform**: the 3-point affine solved with numpy and warped with
  ``scipy.ndimage.affine_transform`` (bilinear, reflect-101 border), then the smoothed
  random displacement field of the reference;
* **spatter**: OpenCV's Canny, distance transform, histogram equalisation and filters
  are replaced by ``skimage.feature.canny``, ``scipy.ndimage.distance_transform_edt``
  (exact instead of OpenCV's 5×5-mask approximation), an own histogram equalisation
  with OpenCV's lookup formula, and ``scipy.ndimage`` filters. The water drops therefore
  differ from the released ones in pixel detail, not in the recipe.
* **glass blur**: the reference's loop over every pixel is replaced by an equivalent
  vectorised form (see :func:`_glass_shuffle`). The reference's "swap" line
  ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` acts on numpy *views*, so it copies
  ``x[h', w']`` into ``x[h, w]`` and leaves ``x[h', w']`` unchanged; the released
  ImageNet-C images were made by that copy, and this module reproduces it (the test
  compares with a literal transcription of the loop).

The output is truncated to uint8 like the reference's ``np.uint8(img)``. The released
ImageNet-C files were then stored as JPEG of quality :data:`RELEASE_JPEG_QUALITY`; a
writer that wants to match them saves at that quality.

Frost
-----
Frost blends a random crop of one of five frost photographs that ship with the reference
repository (Apache-2.0). They are not part of causalkit. ``frost_source`` picks them:

* ``"reference"``: the reference photographs, from the folder in the environment variable
  ``CAUSALKIT_FROST_DIR`` or downloaded once with pooch into the user cache, each checked
  against its SHA-256; a failed download raises :class:`~causalkit.errors.DataError`.
* ``"procedural"``: a **deviation** from ImageNet-C: five textures of ice crystals
  generated from fixed seeds (streaks of motion-blurred sparse noise over a fractal haze,
  tinted to the reference photographs' mean colour and contrast). Use it offline; its
  frost scores are not comparable with published ImageNet-C frost errors.
* ``"auto"`` (the default): ``"reference"`` when the photographs are available (cached,
  in ``CAUSALKIT_FROST_DIR``, or downloadable), else ``"procedural"`` with a warning.
  :func:`frost_texture_source` says which one ``"auto"`` resolves to, so a result can
  record it.

Image sizes
-----------
The reference assumes 224×224. Here every corruption takes any size of at least 32×32:
the plasma map of fog grows to the next power of two, zoom crops keep the aspect ratio,
frost textures are rescaled by ``max(H, W)/224`` so the crystals keep their size
relative to the image, and the elastic transform's pixel constants scale by
``min(H, W)/224``. At 224×224 all of these reduce to the reference.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage, signal

from causalkit.errors import CausalKitError, DataError

__all__ = [
    "BENCHMARK",
    "CATEGORIES",
    "EXTRA",
    "FROST_FILES",
    "RELEASE_JPEG_QUALITY",
    "SEVERITIES",
    "corrupt",
    "frost_texture_source",
    "image_seed",
]

BENCHMARK: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
"""The 15 benchmark corruptions, spelled as the released ImageNet-C folders."""

EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
"""The 4 held-out corruptions of the paper's validation set."""

CATEGORIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "extra": EXTRA,
}
"""The paper's grouping (and the released archives' folders), plus ``"extra"``."""

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
RELEASE_JPEG_QUALITY = 85
"""The JPEG quality the released ImageNet-C images were saved with."""

MIN_SIZE = 32

# The reference frost photographs, pinned to one commit of hendrycks/robustness.
_FROST_COMMIT = "8190fe329f5f072a06e3a2aea02bb5dda69aed9f"
_FROST_URL = (f"https://raw.githubusercontent.com/hendrycks/robustness/{_FROST_COMMIT}"
              "/ImageNet-C/create_c/")
FROST_FILES: dict[str, str] = {
    "frost1.png": "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
    "frost2.png": "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
    "frost3.png": "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
    "frost4.jpg": "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
    "frost5.jpg": "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2",
}
"""SHA-256 of the five frost photographs the reference draws from (it never draws its
sixth, ``frost6.jpg``: ``np.random.randint(5)``)."""


# ---------------------------------------------------------------------------- helpers

def _gaussian(x: np.ndarray, sigma: float, *, mode: str = "nearest",
              truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian`` over the two image axes (channels kept apart)."""
    sig = (sigma, sigma) + (0,) * (x.ndim - 2)
    return ndimage.gaussian_filter(x, sig, mode=mode, truncate=truncate)


def _gaussian_reflect_fft(x: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """``_gaussian(x, sigma, mode="reflect")`` of a 2-D array by FFT: the same sampled,
    normalised kernel and half-sample-symmetric border, fast for kernels wider than the
    image (the elastic transform's sigma reaches 171 px)."""
    r = int(truncate * float(sigma) + 0.5)
    t = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    if sigma < 10:  # short kernels: direct separable filtering is faster
        return ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=truncate)
    out = signal.fftconvolve(np.pad(x, ((r, r), (0, 0)), mode="symmetric"), k[:, None],
                             mode="valid")
    return signal.fftconvolve(np.pad(out, ((0, 0), (r, r)), mode="symmetric"), k[None, :],
                              mode="valid")


def _cv2_gaussian_kernel(ksize: int, sigma: float) -> np.ndarray:
    """OpenCV's ``getGaussianKernel``: sampled, normalised 1-D Gaussian."""
    t = np.arange(ksize) - (ksize - 1) / 2
    k = np.exp(-t * t / (2 * sigma * sigma))
    return k / k.sum()


def _disk(radius: int, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk kernel of defocus blur."""
    if radius <= 8:
        half, ksize = 8, 3
    else:
        half, ksize = radius, 5
    t = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    g = _cv2_gaussian_kernel(ksize, alias_blur)
    # OpenCV blurs the kernel itself with its default reflect-101 border.
    disk = ndimage.convolve1d(disk, g, axis=0, mode="mirror")
    return ndimage.convolve1d(disk, g, axis=1, mode="mirror")


def _filter2d_reflect101(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D`` (correlation, reflect-101 border) of each channel, by FFT."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    padded = np.pad(x, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="reflect")
    flipped = kernel[::-1, ::-1, None]
    return signal.fftconvolve(padded, flipped, mode="valid", axes=(0, 1))


def _motion_kernel(radius: float, sigma: float, angle: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ImageMagick's motion-blur taps: weights and integer (dy, dx) offsets."""
    width = int(2 * np.ceil(radius) + 1)
    i = np.arange(width, dtype=np.float64)
    w = np.exp(-(i * i) / (2 * sigma * sigma))
    w /= w.sum()
    a = np.deg2rad(angle)
    px, py = width * np.sin(a), width * np.cos(a)
    norm = np.hypot(px, py)
    dx = np.ceil(i * py / norm - 0.5).astype(int)
    dy = np.ceil(i * px / norm - 0.5).astype(int)
    return w, dy, dx


def _motion_blur_array(x: np.ndarray, radius: float, sigma: float, angle: float
                       ) -> np.ndarray:
    """Motion blur of a float HxW or HxWxC array, edge pixels repeated (float out)."""
    w, dy, dx = _motion_kernel(radius, sigma, angle)
    h, wd = x.shape[:2]
    m = int(max(np.abs(dy).max(), np.abs(dx).max()))
    pad = ((m, m), (m, m)) + ((0, 0),) * (x.ndim - 2)
    xp = np.pad(x, pad, mode="edge")
    out = np.zeros(x.shape, dtype=np.float64)
    for wi, oy, ox in zip(w, dy, dx, strict=True):
        out += wi * xp[m + oy:m + oy + h, m + ox:m + ox + wd]
    return out


def _to_u8_round(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _lerp_axis(n_in: int, n_out: int, start: int, count: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``start..start+count`` of a linear resize ``n_in -> n_out`` that maps the end
    samples onto each other (``scipy.ndimage.zoom(order=1)``'s grid): lower index, upper
    index and weight of the upper one."""
    pos = np.arange(start, start + count) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre by ``factor`` (bilinear) and crop back to the input size.

    Equal to the reference's ``scipy.ndimage.zoom(crop, factor, order=1)`` followed by the
    centre trim, but computes only the rows and columns that the trim keeps, as two
    separable linear interpolations.
    """
    h, w = x.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[top:top + ch, left:left + cw]
    oh, ow = int(round(ch * factor)), int(round(cw * factor))
    tt, tl = (oh - h) // 2, (ow - w) // 2
    lo, hi, t = _lerp_axis(ch, oh, tt, min(h, oh - tt))
    t = t.reshape((-1,) + (1,) * (x.ndim - 1))
    rows = crop[lo] * (1 - t) + crop[hi] * t
    lo, hi, t = _lerp_axis(cw, ow, tl, min(w, ow - tl))
    t = t.reshape((1, -1) + (1,) * (x.ndim - 2))
    return rows[:, lo] * (1 - t) + rows[:, hi] * t


def _plasma_fractal(rng: np.random.Generator, mapsize: int, wibbledecay: float
                    ) -> np.ndarray:
    """Diamond-square height map in [0, 1] (the reference's fog texture)."""
    if mapsize & (mapsize - 1):
        raise CausalKitError(f"plasma map size {mapsize} is not a power of two")
    a = np.zeros((mapsize, mapsize), dtype=np.float64)
    step = mapsize
    wibble = 100.0

    def wibbled(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = a[0::step, 0::step]
        # squares: centre of each square = mean of its 4 corners + noise
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        a[half::step, half::step] = wibbled(square)
        # diamonds: edge midpoints = mean of 2 corners and 2 square centres + noise
        centres = a[half::step, half::step]
        corners = a[0::step, 0::step]
        top = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        a[0::step, half::step] = wibbled(top)
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        a[half::step, 0::step] = wibbled(left)
        step //= 2
        wibble /= wibbledecay
    a -= a.min()
    return a / a.max()


def _rgb_to_gray(x: np.ndarray) -> np.ndarray:
    """OpenCV's ``COLOR_RGB2GRAY`` weights."""
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _equalize_hist_cv2(img: np.ndarray) -> np.ndarray:
    """OpenCV's ``equalizeHist`` lookup on a uint8 image."""
    hist = np.bincount(img.ravel(), minlength=256)
    nz = np.flatnonzero(hist)
    total = img.size
    if len(nz) == 0 or hist[nz[0]] == total:
        return img.copy()
    cdf = np.cumsum(hist)
    scale = 255.0 / (total - hist[nz[0]])
    lut = np.clip(np.round((cdf - hist[nz[0]]) * scale), 0, 255).astype(np.uint8)
    lut[: nz[0]] = 0
    return lut[img]


# ------------------------------------------------------------------------------ glass

def _glass_offsets(rng: np.random.Generator, h: int, w: int, delta: int) -> np.ndarray:
    """Random offsets (dy, dx) in ``[-delta, delta)`` for the loop's (h, w) positions,
    indexed ``[h - delta - 1, w - delta - 1]``."""
    n_h, n_w = max(h - 2 * delta, 0), max(w - 2 * delta, 0)
    return rng.integers(-delta, delta, size=(n_h, n_w, 2))


def _glass_shuffle(h: int, w: int, delta: int, offsets: np.ndarray) -> np.ndarray:
    """Flat source index of every pixel after one pass of the reference's pixel loop.

    The loop visits ``(r, c)`` for ``r = h-δ … δ+1`` and ``c = w-δ … δ+1`` (descending)
    and sets ``x[r, c] = x[r+dy, c+dx]`` (see the module docstring). Let ``q`` be that
    source. If ``q`` was visited earlier in the pass (it lies later in raster order and
    inside the visited block), its value is already the value of *its* source; otherwise
    it still holds its original value. So ``src(p) = src(q)`` when ``q`` was visited
    before ``p``, and ``q`` otherwise: chains that always move forward in raster order.
    They are resolved for all pixels at once by pointer doubling (``log2`` of the longest
    chain rounds of numpy indexing) instead of ``h·w`` Python steps.
    """
    idx = np.arange(h * w)
    n_h, n_w = offsets.shape[:2]
    if n_h == 0 or n_w == 0:
        return idx
    rows = np.arange(delta + 1, h - delta + 1)[:, None]
    cols = np.arange(delta + 1, w - delta + 1)[None, :]
    rows, cols = np.broadcast_to(rows, (n_h, n_w)), np.broadcast_to(cols, (n_h, n_w))
    qr, qc = rows + offsets[..., 0], cols + offsets[..., 1]
    p = (rows * w + cols).ravel()
    q = (qr * w + qc).ravel()
    q_visited = ((qr >= delta + 1) & (qr <= h - delta) & (qc >= delta + 1)
                 & (qc <= w - delta)).ravel()
    follow = q_visited & (q > p)
    # For every pixel: result (terminal source) and, while active, the node to follow.
    result = idx.copy()
    result[p] = q
    pointer = idx.copy()
    active = np.zeros(h * w, dtype=bool)
    active[p[follow]] = True
    pointer[p[follow]] = q[follow]
    nodes = np.flatnonzero(active)
    while nodes.size:
        nxt = pointer[nodes]
        cont = active[nxt]
        done = nodes[~cont]
        result[done] = result[nxt[~cont]]
        active[done] = False
        keep = nodes[cont]
        pointer[keep] = pointer[nxt[cont]]
        nodes = keep
    return result


# ------------------------------------------------------------------------------ frost

def _frost_cache_dir() -> Path:
    env = os.environ.get("CAUSALKIT_FROST_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("causalkit")) / "imagenet-c-frost"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_frost_paths(*, download: bool) -> list[Path] | None:
    folder = _frost_cache_dir()
    paths = [folder / name for name in FROST_FILES]
    if all(p.is_file() and _sha256(p) == FROST_FILES[p.name] for p in paths):
        return paths
    if not download or os.environ.get("CAUSALKIT_FROST_DIR"):
        return None
    import pooch

    try:
        return [Path(pooch.retrieve(_FROST_URL + name, known_hash=f"sha256:{digest}",
                                    fname=name, path=folder, progressbar=False))
                for name, digest in FROST_FILES.items()]
    except Exception:  # noqa: BLE001 - any network or checksum failure means "not here"
        return None


def _procedural_frost(seed: int, size: int = 640) -> np.ndarray:
    """One ice-crystal texture (uint8, size x size x 3) from a fixed seed."""
    rng = np.random.default_rng(seed)
    haze = _plasma_fractal(rng, 1024, 2.2)[:size, :size]
    crystals = np.zeros((size, size))
    for _ in range(6):
        seeds = (rng.random((size, size)) < 0.004).astype(np.float64)
        length = rng.uniform(6, 22)
        streak = _motion_blur_array(seeds, length, length / 2.5, rng.uniform(0, 360))
        crystals = np.maximum(crystals, streak / max(streak.max(), 1e-12))
    crystals = _gaussian(crystals, 0.7)
    detail = _gaussian(rng.random((size, size)), 1.0)
    tex = 0.45 * haze + 0.9 * crystals ** 0.6 + 0.25 * (detail - detail.mean())
    tex = (tex - tex.mean()) / tex.std()
    # The reference photographs' mean colour and contrast (frost1-5, per channel).
    mean = np.array([146.0, 167.0, 179.0])
    std = np.array([28.0, 26.0, 26.0])
    return np.clip(tex[..., None] * std + mean, 0, 255).astype(np.uint8)


def _frost_textures(source: str) -> tuple[str, tuple[np.ndarray, ...]]:
    return _frost_textures_in(source, str(_frost_cache_dir()))


@functools.lru_cache(maxsize=4)
def _frost_textures_in(source: str, folder: str) -> tuple[str, tuple[np.ndarray, ...]]:
    if source in ("auto", "reference"):
        paths = _reference_frost_paths(download=True)
        if paths is not None:
            return "reference", tuple(
                np.asarray(Image.open(p).convert("RGB")) for p in paths)
        if source == "reference":
            raise DataError(
                "the ImageNet-C frost photographs are not available (no cache, download "
                "failed); put frost1.png..frost5.jpg from hendrycks/robustness "
                "ImageNet-C/create_c/ into a folder and set CAUSALKIT_FROST_DIR to it, "
                "or pass frost_source='procedural'")
        warnings.warn(
            "ImageNet-C frost photographs unavailable: using causalkit's procedural frost "
            "textures (a deviation; frost scores are not comparable with published "
            "ImageNet-C). Set CAUSALKIT_FROST_DIR to the reference files to avoid it.",
            stacklevel=5)
    return "procedural", tuple(_procedural_frost(1000 + k) for k in range(5))


def frost_texture_source(frost_source: str = "auto") -> str:
    """``"reference"`` or ``"procedural"``: which frost textures ``frost_source`` uses."""
    _check_frost_source(frost_source)
    return _frost_textures(frost_source)[0]


def _check_frost_source(frost_source: str) -> None:
    if frost_source not in ("auto", "reference", "procedural"):
        raise CausalKitError(
            f"unknown frost_source {frost_source!r}; use 'auto', 'reference' or "
            "'procedural'")


# ------------------------------------------------------------------------ corruptions
# Each takes x (float64 HxWx3 in [0, 1]), the severity's constants and a Generator, and
# returns float in [0, 1] (or uint8, returned as is). Constants: make_imagenet_c.py.

def gaussian_noise(x, s, rng, **_):
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[s - 1]
    return np.clip(x + rng.normal(0.0, c, x.shape), 0, 1)


def shot_noise(x, s, rng, **_):
    c = (60, 25, 12, 5, 3)[s - 1]
    return np.clip(rng.poisson(x * c) / c, 0, 1)


def impulse_noise(x, s, rng, **_):
    from skimage.util import random_noise

    c = (0.03, 0.06, 0.09, 0.17, 0.27)[s - 1]
    return np.clip(random_noise(x, mode="s&p", amount=c, rng=rng), 0, 1)


def speckle_noise(x, s, rng, **_):
    c = (0.15, 0.2, 0.35, 0.45, 0.6)[s - 1]
    return np.clip(x + x * rng.normal(0.0, c, x.shape), 0, 1)


def gaussian_blur(x, s, rng, **_):
    c = (1, 2, 3, 4, 6)[s - 1]
    return np.clip(_gaussian(x, c), 0, 1)


def glass_blur(x, s, rng, **_):
    sigma, delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2),
                                (1.5, 4, 2))[s - 1]
    u8 = (_gaussian(x, sigma) * 255).astype(np.uint8)
    h, w = u8.shape[:2]
    src = np.arange(h * w)
    for _ in range(iterations):
        src = src[_glass_shuffle(h, w, delta, _glass_offsets(rng, h, w, delta))]
    shuffled = u8.reshape(h * w, 3)[src].reshape(h, w, 3)
    return np.clip(_gaussian(shuffled / 255.0, sigma), 0, 1)


def defocus_blur(x, s, rng, **_):
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[s - 1]
    return np.clip(_filter2d_reflect101(x, _disk(radius, alias)), 0, 1)


def motion_blur(x, s, rng, **_):
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[s - 1]
    u8 = (x * 255).astype(np.uint8).astype(np.float64)
    return _to_u8_round(_motion_blur_array(u8, radius, sigma, rng.uniform(-45, 45)))


def zoom_blur(x, s, rng, **_):
    factors = (np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
               np.arange(1, 1.21, 0.02), np.arange(1, 1.26, 0.02),
               np.arange(1, 1.31, 0.03))[s - 1]
    x = x.astype(np.float32)
    out = np.zeros_like(x)
    for f in factors:
        out += _clipped_zoom(x, f)
    return np.clip((x + out) / (len(factors) + 1), 0, 1)


def snow(x, s, rng, **_):
    loc, scale, zoom, thresh, radius, sigma, mix = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))[s - 1]
    x = x.astype(np.float32)
    layer = rng.normal(loc, scale, x.shape[:2])
    layer = _clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < thresh] = 0
    layer_u8 = (np.clip(layer, 0, 1) * 255).astype(np.uint8).astype(np.float64)
    flakes = _to_u8_round(_motion_blur_array(layer_u8, radius, sigma,
                                             rng.uniform(-135, -45)))
    flakes = (flakes / 255.0)[..., None]
    gray = _rgb_to_gray(x)[..., None]
    x = mix * x + (1 - mix) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + flakes + np.rot90(flakes, k=2), 0, 1)


def frost(x, s, rng, *, frost_source="auto", **_):
    keep, amount = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[s - 1]
    _, textures = _frost_textures(frost_source)
    tex = textures[int(rng.integers(len(textures)))]
    h, w = x.shape[:2]
    scale = max(h, w) / 224
    th, tw = tex.shape[:2]
    scale = max(scale, (h + 1) / th, (w + 1) / tw)
    if scale != 1:
        size = (int(np.ceil(tw * scale)), int(np.ceil(th * scale)))
        tex = np.asarray(Image.fromarray(tex).resize(size, Image.BICUBIC))
    top = int(rng.integers(0, tex.shape[0] - h))
    left = int(rng.integers(0, tex.shape[1] - w))
    crop = tex[top:top + h, left:left + w].astype(np.float64)
    return np.clip(keep * (x * 255).astype(np.uint8) + amount * crop, 0, 255
                   ).astype(np.uint8)


def fog(x, s, rng, **_):
    strength, decay = ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4))[s - 1]
    h, w = x.shape[:2]
    mapsize = max(256, 1 << int(np.ceil(np.log2(max(h, w)))))
    max_val = x.max()
    x = x + strength * _plasma_fractal(rng, mapsize, decay)[:h, :w, None]
    return np.clip(x * max_val / (max_val + strength), 0, 1)


def spatter(x, s, rng, **_):
    from skimage.feature import canny

    loc, scale, sigma, thresh, intensity, mud = (
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1))[s - 1]
    x = x.astype(np.float32)
    liquid = _gaussian(rng.normal(loc, scale, x.shape[:2]), sigma)
    liquid[liquid < thresh] = 0
    if not mud:
        liquid_u8 = (liquid * 255).astype(np.uint8)
        edges = canny(liquid_u8.astype(np.float64), sigma=0.0, low_threshold=50,
                      high_threshold=150)
        dist = ndimage.distance_transform_edt(~edges)
        dist = np.minimum(dist, 20)
        dist = ndimage.uniform_filter(dist, 3, mode="mirror").astype(np.uint8)
        dist = _equalize_hist_cv2(dist).astype(np.float64)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
        dist = np.clip(np.round(ndimage.correlate(dist, ker, mode="mirror")), 0, 255)
        dist = ndimage.uniform_filter(dist, 3, mode="mirror")
        m = liquid_u8.astype(np.float64) * dist
        m = m / max(m.max(), 1e-12) * intensity
        water = np.array([175, 238, 238]) / 255.0  # pale turquoise
        return np.clip(x + m[..., None] * water, 0, 1)
    m = _gaussian((liquid > thresh).astype(np.float32), intensity)
    m[m < 0.8] = 0
    brown = np.array([63, 42, 20]) / 255.0  # mud
    return np.clip(x * (1 - m[..., None]) + brown * m[..., None], 0, 1)


def contrast(x, s, rng, **_):
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[s - 1]
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1)


def brightness(x, s, rng, **_):
    from skimage.color import hsv2rgb, rgb2hsv

    c = (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1]
    hsv = rgb2hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1)


def saturate(x, s, rng, **_):
    from skimage.color import hsv2rgb, rgb2hsv

    mul, add = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))[s - 1]
    hsv = rgb2hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * mul + add, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1)


def jpeg_compression(x, s, rng, *, image=None, **_):
    quality = (25, 18, 15, 10, 7)[s - 1]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def pixelate(x, s, rng, *, image=None, **_):
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.BOX))


def elastic_transform(x, s, rng, **_):
    alpha, sigma, shift = (
        (244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
        (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
        (244 * 0.12, 244 * 0.01, 244 * 0.02))[s - 1]
    h, w = x.shape[:2]
    k = min(h, w) / 224
    alpha, sigma, shift = alpha * k, sigma * k, shift * k
    x = x.astype(np.float32)
    # random affine: move three points around the centre by up to `shift` pixels
    centre = np.array([w // 2, h // 2], dtype=np.float64)  # (x, y)
    sq = min(h, w) // 3
    src = np.array([centre + sq, [centre[0] + sq, centre[1] - sq], centre - sq])
    dst = src + rng.uniform(-shift, shift, size=src.shape)
    # dst = A @ src + b, solved from the three point pairs
    sol = np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst)  # 3x2
    a, b = sol[:2].T, sol[2]
    a_inv = np.linalg.inv(a)
    # output (row, col) = (y, x) -> input: a_inv @ ((x, y) - b), in (row, col) order
    perm = np.array([[0, 1], [1, 0]])
    matrix = perm @ a_inv @ perm
    offset = perm @ (-a_inv @ b)
    warped = np.stack([ndimage.affine_transform(x[..., ch], matrix, offset, order=1,
                                                mode="mirror") for ch in range(3)], -1)
    dx = (_gaussian_reflect_fft(rng.uniform(-1, 1, (h, w)), sigma, 3) * alpha
          ).astype(np.float32)
    dy = (_gaussian_reflect_fft(rng.uniform(-1, 1, (h, w)), sigma, 3) * alpha
          ).astype(np.float32)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.array([yy + dy, xx + dx])
    out = np.stack([ndimage.map_coordinates(warped[..., ch], coords, order=1,
                                            mode="reflect") for ch in range(3)], -1)
    return np.clip(out, 0, 1)


_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    name: globals()[name] for name in BENCHMARK + EXTRA}


# -------------------------------------------------------------------------- interface

def image_seed(seed: int, index: int, name: str, severity: int) -> int:
    """A seed for image ``index`` under ``(name, severity)``, derived from ``seed``.

    Distinct settings draw independent noise, and any one image can be remade alone.
    """
    key = np.random.SeedSequence([int(seed), int(index), zlib.crc32(name.encode()),
                                  int(severity)])
    return int(key.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def corrupt(image: np.ndarray, name: str, severity: int, *, seed: int,
            frost_source: str = "auto") -> np.ndarray:
    """Corrupt an RGB image with ImageNet-C's ``name`` at ``severity`` (1..5).

    ``image`` is a uint8 array of shape (H, W, 3), H, W >= 32; the result has the same
    shape and dtype. The same ``seed`` gives the same output. ``frost_source`` chooses
    the frost textures (see the module docstring); other corruptions ignore it.
    """
    fn = _FUNCTIONS.get(name)
    if fn is None:
        raise CausalKitError(
            f"unknown corruption {name!r}; valid names: {', '.join(BENCHMARK + EXTRA)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= severity <= 5:
        raise CausalKitError(f"severity must be an integer 1..5, got {severity!r}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        got = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
               else type(image).__name__)
        raise CausalKitError(
            f"corrupt needs a uint8 RGB array of shape (H, W, 3), got {got}; convert "
            "with causalkit.datasets.image_folder.read_image or np.asarray(pil.convert('RGB'))")
    if min(image.shape[:2]) < MIN_SIZE:
        raise CausalKitError(
            f"image of {image.shape[0]}x{image.shape[1]} is too small for ImageNet-C "
            f"corruptions; resize it to at least {MIN_SIZE}x{MIN_SIZE} (224x224 is the "
            "reference size)")
    _check_frost_source(frost_source)
    rng = np.random.default_rng(seed)
    x = image.astype(np.float64) / 255.0
    out = fn(x, int(severity), rng, image=image, frost_source=frost_source)
    if out.dtype == np.uint8:
        return np.ascontiguousarray(out)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)
