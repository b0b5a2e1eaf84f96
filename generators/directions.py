"""Interpretable latent directions of a generator (GANSpace), and their exact shortcut.

GANSpace (Härkönen et al., 2020) finds the main axes of variation of a generator by PCA
on the activations of one layer, then maps each principal axis back to a direction in the
latent space ``z`` by least squares. :func:`fit_pca_directions` does exactly that:

1. draw latents ``z`` (seeded) and run the generator up to ``layer`` (a forward hook
   captures the activations and stops the pass there, so deep layers are not computed);
2. incremental PCA on the flattened activations, batch by batch
   (:class:`sklearn.decomposition.IncrementalPCA`);
3. regress ``z`` on the principal coordinates: ``z ~ C B`` with ``C`` the ``(n, k)``
   coordinates; row ``j`` of ``B``, unit-normalised, is direction ``u_j``.

Each batch holds a single class and is centred on its own mean, so the PCA sees
*within-class* variation: the class embedding moves activations too, but no latent
direction can produce that, and a strategy that must be the same for every class should
not chase it.

When the layer is the affine first layer ``gen_z`` of BigGAN-deep, which maps
``cat(z, embedding)`` linearly, the answer is known in closed form: within a class the
activations are ``W_z z + const``, their principal axes are the left singular vectors of
the z-block ``W_z`` and the regression returns its right singular vectors.
:func:`shortcut_directions` computes those from one SVD.

Every :class:`Directions` carries per-direction standard deviations ``stds``: the spread
of the latent coordinate ``z . u_j`` over the fitting samples (latent units, the units of
an intervention offset). :meth:`Directions.ranges` turns them into the offset ranges
``r_j`` of a :class:`~causalkit.interventions.LatentStrategy`.

**Which directions a saved file holds.** A directions file in a run folder is a cache:
a rerun reads it instead of fitting again. It must then belong to the same request, or
the rerun would silently move along another generator's directions. Each saved
:class:`Directions` therefore carries a ``key`` (:func:`directions_key`): the SHA-256 of
the generator's weights (:func:`generator_digest`), the layer, the number of directions
asked for, how they were fitted and with which settings, or the digest of the file they
were given as. A reader reuses a file only when its key equals the key of its own
request (:meth:`Directions.matches`).

**Determinism.** The regression of step 3 is solved with the SVD-based ``gelsd``
driver of ``torch.linalg.lstsq``. When a layer is asked for more directions than the
rank of its part of ``z`` (a hierarchical latent whose layer sees only a chunk of
``z``), the normal equations are singular, and the default ``gelsy`` driver (a
pivoted QR) returned different minimum-norm solutions in different processes; ``gelsd``
returns the same bytes every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write
from generators.base import (
    TRUNCNORM_STD,
    ConditionalGenerator,
    as_label_list,
    check_truncation,
    make_generator,
    truncated_normal,
)

__all__ = ["Directions", "fit_pca_directions", "shortcut_directions", "subspace_overlap",
           "interleave_directions", "fit_layerwise_directions", "default_directions",
           "generator_digest", "directions_key", "RANGE_FACTOR", "DEFAULT_LAYER",
           "LAYERWISE_K"]

DEFAULT_LAYER = "generator.gen_z"
#: ``r_j = RANGE_FACTOR * std_j``: offsets up to two standard deviations of the latent
#: coordinate, i.e. about the whole support of the truncated-normal prior (``|z| <= 2``).
RANGE_FACTOR = 2.0
#: Directions fitted per layer by :func:`fit_layerwise_directions` (at least).
LAYERWISE_K = 16


@dataclass
class Directions:
    """Unit latent directions ``u_j`` (rows of ``components``) with their statistics.

    Attributes
    ----------
    components
        ``(k, z_dim)`` unit vectors, most important first.
    stds
        ``(k,)`` standard deviation of the latent coordinate ``z . u_j`` under the
        prior used for fitting (truncation ``fit_truncation``).
    explained_variance
        ``(k,)`` variance of the hooked layer's activations along each principal axis.
    layer, method, fit_truncation, n_samples
        How they were obtained (``method`` is ``"pca"`` or ``"shortcut"``).
    key
        What made them (:func:`directions_key`); ``""`` when unknown (files written
        before keys, directions built by hand).
    """

    components: np.ndarray
    stds: np.ndarray
    explained_variance: np.ndarray
    layer: str = DEFAULT_LAYER
    method: str = "pca"
    fit_truncation: float = 1.0
    n_samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        self.components = np.asarray(self.components, dtype=np.float32)
        self.stds = np.asarray(self.stds, dtype=np.float32)
        self.explained_variance = np.asarray(self.explained_variance, dtype=np.float32)
        k = self.components.shape[0] if self.components.ndim == 2 else -1
        if k < 1 or self.stds.shape != (k,) or self.explained_variance.shape != (k,):
            raise DataError(f"directions need components (k, z_dim) and stds / "
                            f"explained_variance (k,), got {self.components.shape}, "
                            f"{self.stds.shape}, {self.explained_variance.shape}")
        norms = np.linalg.norm(self.components, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-4):
            raise DataError("direction vectors must have unit norm; got norms "
                            f"{np.round(norms, 4).tolist()[:5]}...")

    @property
    def k(self) -> int:
        """Number of directions."""
        return int(self.components.shape[0])

    @property
    def z_dim(self) -> int:
        """Latent size the directions live in."""
        return int(self.components.shape[1])

    def top(self, k: int) -> Directions:
        """The first ``k`` directions (an error if fewer are stored)."""
        if not 1 <= k <= self.k:
            raise CausalKitError(f"asked for the top {k} directions but only {self.k} are "
                                 "stored; fit at least that many or lower k in the strategy")
        return Directions(self.components[:k], self.stds[:k], self.explained_variance[:k],
                          self.layer, self.method, self.fit_truncation, self.n_samples,
                          dict(self.extra), self.key)

    def ranges(self, factor: float = RANGE_FACTOR) -> np.ndarray:
        """Offset ranges ``r_j = factor * std_j`` (see :data:`RANGE_FACTOR`)."""
        return factor * self.stds

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` file atomically."""
        arrays = dict(components=self.components, stds=self.stds,
                      explained_variance=self.explained_variance,
                      layer=np.array(self.layer), method=np.array(self.method),
                      fit_truncation=np.array(self.fit_truncation),
                      n_samples=np.array(self.n_samples), key=np.array(self.key))
        return atomic_write(path, lambda fh: np.savez(fh, **arrays))

    def matches(self, key: str) -> bool:
        """True when these directions were made by the request ``key`` describes."""
        return bool(self.key) and self.key == key

    @classmethod
    def load(cls, path: str | os.PathLike) -> Directions:
        """Read directions saved by :meth:`save` (no pickles)."""
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            with data:
                return cls(data["components"], data["stds"], data["explained_variance"],
                           str(data["layer"]), str(data["method"]),
                           float(data["fit_truncation"]), int(data["n_samples"]),
                           key=str(data["key"]) if "key" in data.files else "")
        except FileNotFoundError:
            raise
        except (KeyError, ValueError, OSError, EOFError, TypeError,
                zipfile.BadZipFile) as exc:
            why = " ".join(str(exc).split())[:120]
            raise DataError(f"{path} is not a directions file ({why}); create one with "
                            "Directions.save or `causalkit generate`") from None


class _Stop(Exception):
    """Raised by the capture hook to end a forward pass at the hooked layer."""


def _activations(gen: ConditionalGenerator, layer: str, z: torch.Tensor, y: int,
                 truncation: float) -> torch.Tensor:
    """Flattened activations of ``layer`` for latents ``z`` of class ``y``."""
    box: list[torch.Tensor] = []

    def hook(module, inputs, output):
        box.append(output.detach())
        raise _Stop

    handle = gen.hook_layer(layer, hook)
    try:
        with torch.no_grad():
            gen(z, [y] * z.shape[0], truncation)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not box:
        raise CausalKitError(f"layer {layer!r} did not run in the forward pass; pick a "
                             "layer the generator uses")
    return box[0].reshape(z.shape[0], -1).double().cpu()


def _batches(gen: ConditionalGenerator, classes: list[int], n_samples: int,
             batch_size: int, truncation: float, seed: int):
    """The same seeded (z, class) batches on every call."""
    rng = make_generator(seed)
    n_batches = -(-n_samples // batch_size)
    for b in range(n_batches):
        m = min(batch_size, n_samples - b * batch_size)
        z = truncated_normal(m, gen.z_dim, truncation, generator=rng)
        yield z, classes[b % len(classes)]


def _fix_signs(u: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of every row positive (a canonical sign)."""
    idx = np.abs(u).argmax(axis=1)
    return u * np.sign(u[np.arange(len(u)), idx])[:, None]


def fit_pca_directions(gen: ConditionalGenerator, *, k: int | None = None,
                       layer: str = DEFAULT_LAYER, n_samples: int = 20_000,
                       batch_size: int | None = None, truncation: float = 1.0,
                       classes: Sequence[int] | None = None, seed: int = 0,
                       progress: bool = True) -> Directions:
    """GANSpace directions: PCA on ``layer``'s activations, regressed back to ``z``.

    Parameters
    ----------
    gen
        The generator.
    k
        Number of directions (default and maximum: ``z_dim``).
    layer
        Name of the layer to hook (see ``gen.layers()``).
    n_samples, batch_size
        Samples for the PCA (and, regenerated from the same seed, the regression);
        each batch is one class, and ``batch_size`` must be at least ``k + 1``
        (default ``max(128, 2 k)``; incremental PCA costs about ``(k + b)^2 / b`` per
        sample, so batches much larger than ``k`` are slower, not faster).
    truncation
        Truncation of the latents used for fitting.
    classes
        Classes to cycle through, one per batch (default: all).
    seed
        Seed of the latents and the class order.
    progress
        Show tqdm progress bars.

    Returns
    -------
    Directions
        Unit directions in ``z``, most variance first, with per-direction stds.
    """
    from sklearn.decomposition import IncrementalPCA

    from causalkit.progress import progress as progress_bar

    truncation = check_truncation(truncation)
    k = gen.z_dim if k is None else int(k)
    if not 1 <= k <= gen.z_dim:
        raise CausalKitError(f"k must be in 1..{gen.z_dim} (the latent size), got {k}")
    batch_size = max(128, 2 * k) if batch_size is None else int(batch_size)
    if batch_size < k + 1 or n_samples < batch_size:
        raise CausalKitError(f"need batch_size >= k + 1 = {k + 1} and n_samples >= "
                             f"batch_size; got batch_size={batch_size}, n_samples={n_samples}")
    labels = as_label_list(classes, gen.num_classes)
    ipca = IncrementalPCA(n_components=k)
    n_batches = -(-n_samples // batch_size)
    for z, y in progress_bar(_batches(gen, labels, n_samples, batch_size, truncation, seed),
                             total=n_batches, desc="PCA", enabled=progress, leave=False):
        if z.shape[0] <= k:
            continue  # a short last batch cannot feed IncrementalPCA
        x = _activations(gen, layer, z, y, truncation)
        if x.shape[1] < k:
            raise CausalKitError(f"layer {layer!r} has {x.shape[1]} activations, fewer than "
                                 f"the k={k} directions asked for; lower k or pick a wider "
                                 "layer")
        ipca.partial_fit((x - x.mean(0)).numpy())
    comps = torch.from_numpy(ipca.components_)  # (k, D)
    mean = torch.from_numpy(ipca.mean_)

    # Second pass over the same samples: least squares z ~ coords @ B.
    ctc = torch.zeros(k, k, dtype=torch.float64)
    ctz = torch.zeros(k, gen.z_dim, dtype=torch.float64)
    ztz = torch.zeros(gen.z_dim, gen.z_dim, dtype=torch.float64)
    seen = 0
    for z, y in progress_bar(_batches(gen, labels, n_samples, batch_size, truncation, seed),
                             total=n_batches, desc="regression", enabled=progress,
                             leave=False):
        x = _activations(gen, layer, z, y, truncation)
        coords = (x - x.mean(0) - mean) @ comps.T
        zc = z.double() - z.double().mean(0)
        ctc += coords.T @ coords
        ctz += coords.T @ zc
        ztz += zc.T @ zc
        seen += z.shape[0]
    # gelsd (SVD): the same minimum-norm solution in every process, also when ctc is
    # singular (more directions than the rank of the layer's part of z)
    b = torch.linalg.lstsq(ctc, ctz, driver="gelsd").solution  # (k, z_dim)
    u = _fix_signs((b / b.norm(dim=1, keepdim=True)).numpy())
    u_t = torch.from_numpy(u)
    stds = torch.sqrt(torch.einsum("kd,de,ke->k", u_t, ztz, u_t) / seen).numpy()
    return Directions(u, stds, ipca.explained_variance_, layer=layer, method="pca",
                      fit_truncation=truncation, n_samples=seen)


def shortcut_directions(gen: ConditionalGenerator, *, k: int | None = None,
                        truncation: float = 1.0) -> Directions:
    """Exact directions for an affine first layer: top right singular vectors of ``W_z``.

    Needs a generator with ``z_weight()`` (the effective weight of the first layer on
    ``z``), such as :class:`~generators.biggan.BigGANGenerator`. The stds are exact: the
    prior is isotropic, so every unit direction has the truncated normal's std times
    ``truncation``.
    """
    truncation = check_truncation(truncation)
    if not hasattr(gen, "z_weight"):
        raise CausalKitError(f"{gen.name} has no affine first layer (z_weight); use "
                             "fit_pca_directions instead")
    k = gen.z_dim if k is None else int(k)
    if not 1 <= k <= gen.z_dim:
        raise CausalKitError(f"k must be in 1..{gen.z_dim} (the latent size), got {k}")
    w = gen.z_weight().double().cpu()
    _, s, vh = torch.linalg.svd(w, full_matrices=False)
    u = _fix_signs(vh[:k].numpy())
    std = TRUNCNORM_STD * truncation
    return Directions(u, np.full(k, std), (s[:k].numpy() * std) ** 2,
                      layer=getattr(gen, "affine_layer", DEFAULT_LAYER), method="shortcut",
                      fit_truncation=truncation, n_samples=0)


def interleave_directions(parts: Sequence[Directions]) -> Directions:
    """Join direction sets of several layers, rank by rank: ``a_1, b_1, a_2, b_2, ...``.

    With a hierarchical latent each layer's PCA directions live in that layer's chunk of
    ``z`` (GANSpace's layer-wise edits), so the sets are orthogonal and a strategy's
    top ``k`` then edits every layer's chunk alike. The sets must share ``z_dim`` and
    the fitting truncation; the joined set is as long as the shortest times their
    number, and its ``layer`` is the layer names joined by ``+``.
    """
    parts = list(parts)
    if not parts:
        raise CausalKitError("interleave_directions needs at least one direction set")
    if len({d.z_dim for d in parts}) > 1 or len({d.fit_truncation for d in parts}) > 1:
        raise CausalKitError("direction sets to join must share z_dim and fit_truncation; "
                             f"got {[(d.layer, d.z_dim, d.fit_truncation) for d in parts]}")
    k = min(d.k for d in parts)

    def weave(attr: str) -> np.ndarray:
        stacked = np.stack([getattr(d, attr)[:k] for d in parts], axis=1)
        return stacked.reshape(k * len(parts), *stacked.shape[2:])

    return Directions(weave("components"), weave("stds"), weave("explained_variance"),
                      layer="+".join(d.layer for d in parts), method=parts[0].method,
                      fit_truncation=parts[0].fit_truncation, n_samples=parts[0].n_samples)


def _width(gen: ConditionalGenerator, layer: str) -> int:
    """Number of activations of ``layer`` per sample (one forward pass of class 0)."""
    z = truncated_normal(2, gen.z_dim, 1.0, generator=torch.Generator().manual_seed(0))
    return int(_activations(gen, layer, z, 0, 1.0).shape[1])


def fit_layerwise_directions(gen: ConditionalGenerator, layers: str | Sequence[str], *,
                             k: int | None = None, n_samples: int = 20_000, seed: int = 0,
                             progress: bool = False) -> Directions:
    """GANSpace directions of one layer or of several, interleaved rank by rank.

    ``layers`` is a layer name, several joined by ``+``
    (``"blocks.0.affine+blocks.1.affine"``) or a list of names. Each layer gets its own
    :func:`fit_pca_directions` fit with the same seed; several are joined by
    :func:`interleave_directions`. ``k`` is how many directions the result must hold
    at least (a strategy's ``components``): each layer is fitted with
    ``max(LAYERWISE_K, ceil(k / layers))`` of them, at most ``z_dim``, so a given layer
    gets the same fit whatever strategy asks for it; a layer with fewer activations
    gets one direction per activation.
    """
    names = layers.split("+") if isinstance(layers, str) else list(layers)
    names = [n.strip() for n in names]
    if not names or not all(names):
        raise CausalKitError(f"no layer name in {layers!r}; pass e.g. 'blocks.0.affine' or "
                             "'blocks.0.affine+blocks.1.affine'")
    per_layer = min(gen.z_dim, max(LAYERWISE_K, -(-(k or 0) // len(names))))
    parts = [fit_pca_directions(gen, k=min(per_layer, _width(gen, name)), layer=name,
                                n_samples=n_samples, seed=seed, progress=progress)
             for name in names]
    return parts[0] if len(parts) == 1 else interleave_directions(parts)


def default_directions(gen: ConditionalGenerator, *, k: int,
                       layer: str | None = None) -> Directions:
    """The directions a strategy with ``k`` components moves along unless given others.

    GANSpace directions of ``layer`` (:func:`fit_layerwise_directions`, several layers
    joined by ``+``) when it is named; else the exact shortcut of an affine first layer
    (a generator with ``z_weight``); else a PCA fit of the default layer.
    """
    if layer is not None:
        return fit_layerwise_directions(gen, layer, k=k)
    if hasattr(gen, "z_weight"):
        return shortcut_directions(gen)
    return fit_pca_directions(gen, k=min(gen.z_dim, k))


def generator_digest(gen: ConditionalGenerator) -> str:
    """SHA-256 of a generator's weights: every tensor of its state dict (names, dtypes,
    shapes and bytes), so two generators with the same digest compute the same images."""
    h = hashlib.sha256()
    for name, tensor in gen.module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fit_defaults() -> dict[str, Any]:
    # the settings a default fit runs with: a change of them makes old files stale;
    # "regression" names the solver of step 3, whose driver changes rank-deficient fits
    import inspect

    params = inspect.signature(fit_pca_directions).parameters
    defaults = {name: params[name].default
                for name in ("n_samples", "batch_size", "truncation", "seed")}
    return {**defaults, "layerwise_k": LAYERWISE_K, "regression": "lstsq-gelsd"}


def directions_key(gen: ConditionalGenerator, *, k: int, layer: str | None = None,
                   fit: str = "auto", given: str | os.PathLike | None = None,
                   settings: Mapping[str, Any] | None = None) -> str:
    """The key of a request for directions: what a saved file must have been made by.

    ``k`` is the number of directions the strategy moves along, ``layer`` and ``fit`` as
    in :func:`generators.sampling.make_sampler`; ``given`` a directions file passed in
    (its bytes' digest enters the key); ``settings`` any other fit setting.
    """
    from causalkit.records import file_digest

    request = dict(generator=generator_digest(gen), k=int(k), layer=layer, fit=fit,
                   given=file_digest(given, 64) if given is not None else None,
                   fit_defaults=_fit_defaults(), **dict(settings or {}))
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def subspace_overlap(a: Directions | np.ndarray, b: Directions | np.ndarray) -> float:
    """Overlap of the spans of two direction sets, in [0, 1].

    ``||P_a P_b||_F^2 / k`` with orthogonal projectors onto the two spans (the mean
    squared cosine of the principal angles); 1 means the same subspace. Signs and order
    within the sets do not matter.
    """
    ua = a.components if isinstance(a, Directions) else np.asarray(a)
    ub = b.components if isinstance(b, Directions) else np.asarray(b)
    if ua.shape != ub.shape:
        raise CausalKitError(f"direction sets differ in shape: {ua.shape} vs {ub.shape}")
    qa = np.linalg.qr(ua.T.astype(np.float64))[0]
    qb = np.linalg.qr(ub.T.astype(np.float64))[0]
    return float(np.linalg.norm(qa.T @ qb) ** 2 / ua.shape[0])
