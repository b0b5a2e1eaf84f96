"""Build (or load from the cache) one split of a biased MNIST variant.

Three splits per variant, all frozen by ``seed``:

``train``
    The variant's SCM over the MNIST training pool, nuisances tied with strength rho.
``test``
    The same SCM over the test pool: in distribution.
``ood``
    The SCM over the test pool under do(nuisance classes := uniform): the nuisances are
    independent of the label. It shares the ``test`` split's seed, so its digits, jitter
    and patch offsets are those of ``test`` -- it is that split's counterfactual.

Sizes default to the whole pool: 60,000 / 10,000 for MNIST, 4,000 / 1,000 for the
embedded subset.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.datasets.cache import cache_file, load_arrays, save_arrays
from causalkit.datasets.mnist import MnistSource, data_home, resolve_source
from causalkit.datasets.textures import texture_banks
from causalkit.datasets.variants import VARIANTS, Variant, check_rendering
from causalkit.errors import DataError

__all__ = ["SPLITS", "BiasedSplit", "build_split", "get_scm", "get_variant", "split_seed"]

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "ood")

#: Meta entries that describe how a split was obtained, not the data.
_BUILD_META = ("build_seconds", "cache_path", "cached")


@dataclass
class BiasedSplit:
    """One built split: uint8 images, labels and the ground-truth nuisances.

    Attributes
    ----------
    images
        uint8 ``(N, 3, 32, 32)``.
    labels
        int64 ``(N,)``.
    nuisances
        node name -> per-sample values: class ids (int64), colours (float32 RGB in
        [0, 1]), patch offsets (int64 ``(N, 2)``), ``digit`` (index into the source
        pool) and ``aligned`` (bool: every nuisance class equals the label).
    meta
        variant, split, rho, sigma, seed, source, fingerprints, cache path.
    """

    images: np.ndarray
    labels: np.ndarray
    nuisances: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def arrays(self) -> dict[str, np.ndarray]:
        """All arrays by name (``images``, ``labels`` and each nuisance)."""
        return {"images": self.images, "labels": self.labels, **self.nuisances}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the split to an ``.npz`` (:func:`~causalkit.datasets.cache.save_arrays`),
        atomically, with its meta minus how this copy was obtained (``build_seconds``,
        ``cache_path``, ``cached``): what is stored describes the data, not the build."""
        return save_arrays(path, self.arrays(), {k: v for k, v in self.meta.items()
                                                 if k not in _BUILD_META})


def get_variant(name: str) -> Variant:
    """The :class:`~causalkit.datasets.variants.Variant` called ``name``."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise DataError(f"unknown dataset variant {name!r}; choose one of "
                        f"{sorted(VARIANTS)}") from None


def split_seed(seed: int, split: str) -> int:
    """The SCM seed of a split: train and the test pair (test, ood) get distinct streams."""
    group = 0 if split == "train" else 1
    return int(np.random.SeedSequence([int(seed), group]).generate_state(1, np.uint64)[0] >> 1)


def _textures_for(variant: Variant, textures: str | os.PathLike | None,
                  rendering: str = "pad"):
    if not variant.uses_textures:
        if textures is not None:
            raise DataError(f"{variant.name} uses no textures; leave textures unset")
        return None, None, None
    folder = textures if textures is not None else os.environ.get("CAUSALKIT_TEXTURES")
    obj, bg, digest = texture_banks(folder, rendering=rendering)
    name = f"folder:{Path(folder).expanduser().resolve()}" if folder else "procedural"
    return (obj, bg), name, digest


def get_scm(variant: str, split: str = "train", *, rho: float = 1.0,
            sigma: float | None = None, source: str | MnistSource | None = None,
            textures: str | os.PathLike | None = None, rendering: str = "pad") -> Any:
    """The SCM behind a split, for sampling, further interventions and counterfactuals.

    ``get_scm(v, s, ...).sample(n, seed=split_seed(seed, s))`` reproduces the samples
    of ``build_split(v, s, seed=seed, n=n, ...)``; ``scm.counterfactual(samples,
    do={"fg_class": 3})`` recolours the same digits with their jitter held fixed.
    """
    spec = get_variant(variant)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    check_rendering(rendering)
    tex, _, _ = _textures_for(spec, textures, rendering)
    src = source if isinstance(source, MnistSource) else resolve_source(source)
    pool = src.train if split == "train" else src.test
    scm = spec.scm(pool.images, pool.labels, rho=rho, sigma=sigma, textures=tex,
                   rendering=rendering)
    return spec.ood(scm) if split == "ood" else scm


def build_split(variant: str, split: str = "train", *, rho: float = 1.0,
                sigma: float | None = None, seed: int = 0,
                source: str | MnistSource | None = None,
                textures: str | os.PathLike | None = None, n: int | None = None,
                cache: bool = True, cache_dir: str | os.PathLike | None = None,
                rendering: str = "pad") -> BiasedSplit:
    """Build one split of a variant, or load it from the on-disk cache.

    Parameters
    ----------
    variant
        ``"colored-mnist"``, ``"double-colored-mnist"`` or ``"wildlife-mnist"``.
    split
        ``"train"``, ``"test"`` (in distribution) or ``"ood"``.
    rho
        P(nuisance class = label) in train and test; ``ood`` ignores it (its nuisances are
        intervened on), but it is kept in the key so splits of one setting sit together.
    sigma
        Colour jitter standard deviation; ``None`` is the variant's default
        (sqrt(0.020) for colored, 0.01 for double-colored; Wildlife has none).
    seed
        Freezes the split: same arguments, same bytes.
    source
        MNIST source string (see :func:`~causalkit.datasets.mnist.resolve_source`) or an
        already resolved :class:`~causalkit.datasets.mnist.MnistSource`.
    textures
        Wildlife only: a folder with ``object/`` and ``background/`` (default
        ``$CAUSALKIT_TEXTURES``, else the procedural textures).
    n
        Number of samples; default the whole pool.
    cache, cache_dir
        Read and write ``cache_dir`` (default ``data_home()/"datasets"``).
    rendering
        ``"pad"`` (default): the 28x28 digits zero-padded, grey levels kept, textures
        resized bilinearly. ``"paper"``: the official CGN code's images, which its
        checkpoints and the paper's Table 2 come from (digits nearest-upscaled and, but
        for colored MNIST, binarised; textures nearest-resized, crops reflect-padded);
        see :data:`~causalkit.datasets.variants.RENDERINGS`.
    """
    spec = get_variant(variant)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    sigma = spec.check_params(rho, sigma)
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise DataError(f"n must be a positive integer, got {n!r}")
    check_rendering(rendering)
    tex, tex_name, tex_digest = _textures_for(spec, textures, rendering)
    src = source if isinstance(source, MnistSource) else resolve_source(source)
    pool = src.train if split == "train" else src.test
    n = len(pool) if n is None else n
    key = {"variant": spec.name, "split": split, "rho": float(rho), "sigma": sigma,
           "seed": int(seed), "source": src.fingerprint, "textures": tex_digest, "n": int(n)}
    if rendering != "pad":  # keeps the cache keys of splits built before the option
        key["rendering"] = rendering
    meta = {**key, "source_name": src.name, "source_note": src.note,
            "textures_name": tex_name}
    path = cache_file(Path(cache_dir) if cache_dir else data_home() / "datasets", key)
    if cache and path.is_file():
        arrays, stored = load_arrays(path)
        log.info("loaded %s from the cache %s", spec.name, path)
        return _from_arrays(arrays, {**stored, "cache_path": str(path), "cached": True})

    start = time.perf_counter()
    scm = spec.scm(pool.images, pool.labels, rho=rho, sigma=sigma, textures=tex,
                   rendering=rendering)
    if split == "ood":
        scm = spec.ood(scm)
    samples = scm.sample(int(n), seed=split_seed(seed, split))
    nuisances = {k: np.asarray(samples[k]) for k in samples if k not in ("image", "label")}
    labels = np.asarray(samples["label"], dtype=np.int64)
    nuisances["aligned"] = np.logical_and.reduce(
        [nuisances[c] == labels for c in spec.class_nodes])
    meta["build_seconds"] = round(time.perf_counter() - start, 3)
    result = BiasedSplit(np.asarray(samples["image"]), labels, nuisances, meta)
    if cache:
        save_arrays(path, result.arrays(), {k: v for k, v in meta.items()
                                            if k != "build_seconds"})
        result.meta["cache_path"] = str(path)
    result.meta["cached"] = False
    return result


def _from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> BiasedSplit:
    try:
        images, labels = arrays.pop("images"), arrays.pop("labels")
    except KeyError:
        raise DataError(f"cached split {meta.get('cache_path')} lacks images or labels; "
                        "delete it to rebuild") from None
    return BiasedSplit(images, labels, arrays, meta)
