"""Intervention sources: images whose nuisance manipulation ``z`` is known.

The correlation probe learns ``g: x -> z`` from images made *under an intervention* on
the nuisances, so it needs a source of ``(image, z)`` pairs. Two kinds exist:

:class:`StrategySource`
    GenInt's source: a class-conditional generator, its latent directions and a
    :class:`~causalkit.interventions.LatentStrategy`. Each image is ``G(z + sum_j o_j u_j,
    y)`` with ``y`` uniform over the classes and offsets ``o_j`` uniform in
    ``[-s r_j, s r_j]`` on ``per_sample`` of the top-``k`` directions; the recorded
    nuisance vector is the ``k`` offsets (zero for directions not moved).
:class:`SCMSource`
    The ground-truth source for the biased MNIST variants: the variant's own SCM under
    ``do(colour := uniform RGB)`` (colour variants) or ``do(texture := uniform)``
    (Wildlife); the recorded nuisance vector is the rendered colour(s) or the one-hot
    texture ids. Its regressor recovers the very nuisances the datasets store, which
    is what the ground-truth validation needs.

Both return an :class:`InterventionBatch`; both are seeded end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from causalkit.errors import CausalKitError

__all__ = ["InterventionBatch", "InterventionSource", "StrategySource", "SCMSource",
           "resolve_source", "load_generator_spec"]


@dataclass
class InterventionBatch:
    """Images made under a nuisance intervention, with the manipulation that made them.

    Attributes
    ----------
    images
        float ``(n, 3, H, W)`` in [-1, 1].
    z
        float32 ``(n, d)``: each image's nuisance manipulation.
    labels
        int64 ``(n,)``: the class the image was generated for.
    z_names
        ``d`` names of the nuisance coordinates.
    """

    images: torch.Tensor
    z: np.ndarray
    labels: np.ndarray
    z_names: list[str] = field(default_factory=list)


class InterventionSource(Protocol):
    """Anything that makes images under a known nuisance intervention."""

    name: str

    def sample(self, n: int, *, seed: int) -> InterventionBatch:
        """``n`` images with their recorded nuisance manipulation ``z``."""
        ...


class StrategySource:
    """A generator, its directions and a latent strategy (GenInt's interventions).

    The realisation is :class:`generators.strategies.InterventionSampler`; this class adds
    seeded uniform classes and returns the offsets as the nuisance vector.

    Parameters
    ----------
    generator
        A :class:`~generators.base.ConditionalGenerator`.
    directions
        A :class:`~generators.directions.Directions` (at least ``strategy.components``
        of them) or ``None`` for the exact SVD shortcut of an affine first layer.
    strategy
        A :class:`~causalkit.interventions.LatentStrategy`,
        :class:`~generators.strategies.Observational`, or their text form
        (``"t=1,k=60,s=1"``, ``"observational:t=0.2"``). Observational samples record
        the latent noise itself as ``z`` (there is no manipulation).
    """

    def __init__(self, generator: Any, directions: Any, strategy: Any) -> None:
        from generators.sampling import make_sampler
        from generators.strategies import Observational, parse_strategy

        self.generator = generator
        self.strategy = parse_strategy(strategy) if isinstance(strategy, str) else strategy
        self.observational = isinstance(self.strategy, Observational)
        # Only the exact shortcut by default, and only the strategy's k directions.
        self.sampler, self.directions, _ = make_sampler(
            generator, self.strategy, directions=directions, fit="shortcut", top_k=True)
        self.name = f"{getattr(generator, 'name', 'generator')} {self.strategy}"

    def sample(self, n: int, *, seed: int, batch_size: int = 256) -> InterventionBatch:
        """``n`` images under the strategy, classes uniform, with their offsets ``z``."""
        rng = np.random.default_rng([int(seed), 1])
        labels = rng.integers(0, self.generator.num_classes, size=n)
        images, lat = self.sampler.sample(labels, int(seed), batch_size=batch_size)
        if self.observational:
            rec = lat.z.numpy().astype(np.float32)
            names = [f"z{j}" for j in range(rec.shape[1])]
        else:
            rec = lat.offsets.numpy().astype(np.float32)
            names = [f"u{j}" for j in range(rec.shape[1])]
        return InterventionBatch(images.clamp(-1, 1), rec, labels.astype(np.int64), names)


class SCMSource:
    """A biased MNIST variant's SCM under ``do(rendered nuisances := uniform)``.

    Parameters
    ----------
    variant
        ``"colored-mnist"``, ``"double-colored-mnist"`` or ``"wildlife-mnist"``.
    source
        MNIST source (see :func:`causalkit.datasets.mnist.resolve_source`); the digits
        come from its *training* pool.
    """

    def __init__(self, variant: str, *, source: Any = None) -> None:
        from causalkit.datasets import get_variant

        self.variant = get_variant(variant)
        self.source = source
        self.name = f"scm:{self.variant.name}"

    def _intervened(self) -> tuple[Any, list[str]]:
        if getattr(self, "_cached", None) is None:
            self._cached = self._build()
        return self._cached

    def _build(self) -> tuple[Any, list[str]]:
        from causalkit.datasets.mnist import resolve_source
        from causalkit.datasets.textures import texture_banks
        from causalkit.interventions import Draw

        src = self.source if hasattr(self.source, "train") else resolve_source(self.source)
        pool = src.train
        tex = None
        if self.variant.uses_textures:
            obj, bg, _ = texture_banks(None)
            tex = (obj, bg)
        scm = self.variant.scm(pool.images, pool.labels, rho=0.1, textures=tex)
        colour_nodes = [v for v in scm.nodes if v.endswith("_color")]
        if colour_nodes:
            def uniform_rgb(n: int, rng: np.random.Generator) -> np.ndarray:
                return rng.random((n, 3), dtype=np.float32)

            return scm.do({v: Draw(uniform_rgb) for v in colour_nodes}), colour_nodes
        return self.variant.ood(scm), list(self.variant.class_nodes)

    def sample(self, n: int, *, seed: int) -> InterventionBatch:
        """``n`` rendered images with uniformly drawn colours / textures and their values."""
        scm, nodes = self._intervened()
        s = scm.sample(int(n), seed=int(seed))
        cols, names = [], []
        for v in nodes:
            val = np.asarray(s[v])
            if val.dtype.kind == "f":
                cols.append(val.reshape(n, -1).astype(np.float32))
                names += [f"{v}.{c}" for c in "rgb"[: cols[-1].shape[1]]]
            else:
                cols.append(np.eye(10, dtype=np.float32)[val])
                names += [f"{v}={c}" for c in range(10)]
        images = torch.from_numpy(np.asarray(s["image"])).float().div(127.5).sub(1.0)
        return InterventionBatch(images, np.concatenate(cols, axis=1),
                                 np.asarray(s["label"], dtype=np.int64), names)


def load_generator_spec(spec: str, *, device: Any = "cpu") -> Any:
    """A generator from its spec through :func:`generators.registry.load_generator`
    (``tiny[:SEED]``, ``biggan:DIR|NAME``, ``small:DIR``, ...)."""
    from generators.registry import load_generator

    return load_generator(spec, device=device)


def resolve_source(generator: Any, strategy: Any = None, *, directions: Any = None,
                   source: Any = None) -> InterventionSource:
    """An :class:`InterventionSource` from CLI-style arguments.

    Parameters
    ----------
    generator
        ``"scm:<variant>"`` (ground truth; ``strategy`` is not used), a generator spec
        (see :func:`load_generator_spec`), a generator object, or an existing source.
    strategy
        A strategy or its text, e.g. ``"t=1,k=60,s=1"`` or ``"observational:t=0.2"``;
        ``k`` above the number of directions is an error.
    directions
        A :class:`~generators.directions.Directions`, a path to its ``.npz``, or ``None``
        for the SVD shortcut.
    """
    if hasattr(generator, "sample") and not hasattr(generator, "z_dim"):
        return generator
    if isinstance(generator, str) and generator.startswith("scm:"):
        return SCMSource(generator[4:], source=source)
    if strategy is None:
        raise CausalKitError("a generator-backed source needs --strategy, e.g. t=1,k=8,s=1 "
                             "or observational:t=0.2")
    if isinstance(strategy, str):
        from generators.strategies import parse_strategy

        strategy = parse_strategy(strategy)  # a malformed strategy fails before loading
    gen = load_generator_spec(generator) if isinstance(generator, str) else generator
    if isinstance(directions, (str, bytes)) or hasattr(directions, "__fspath__"):
        from generators.directions import Directions

        directions = Directions.load(directions)
    return StrategySource(gen, directions, strategy)
