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

    Parameters
    ----------
    generator
        A :class:`~generators.base.ConditionalGenerator`.
    directions
        A :class:`~generators.directions.Directions` (at least ``strategy.components``
        of them) or ``None`` for the exact SVD shortcut of an affine first layer.
    strategy
        A :class:`~causalkit.interventions.LatentStrategy` or its text form.
    observational
        Draw plain samples (no offsets; ``z`` is the latent noise itself) -- the
        "GAN augmentation" baseline of GenInt.
    """

    def __init__(self, generator: Any, directions: Any, strategy: Any,
                 *, observational: bool = False) -> None:
        from causalkit.interventions import LatentStrategy

        self.generator = generator
        self.strategy = strategy if isinstance(strategy, LatentStrategy) else \
            LatentStrategy.parse(str(strategy))
        if directions is None:
            from generators.directions import shortcut_directions

            directions = shortcut_directions(generator)
        if directions.k < self.strategy.components:
            raise CausalKitError(f"the strategy uses k={self.strategy.components} directions "
                                 f"but only {directions.k} are available; lower k or fit more "
                                 "directions")
        if directions.z_dim != generator.z_dim:
            raise CausalKitError(f"directions live in a {directions.z_dim}-d latent space but "
                                 f"the generator's is {generator.z_dim}-d")
        self.directions = directions.top(self.strategy.components)
        self.observational = observational
        self.name = f"{getattr(generator, 'name', 'generator')} {self.strategy}"

    def sample(self, n: int, *, seed: int, batch_size: int = 256) -> InterventionBatch:
        """``n`` images under the strategy, classes uniform, with their offsets ``z``."""
        st, g = self.strategy, self.generator
        rng = np.random.default_rng([int(seed), 1])
        labels = rng.integers(0, g.num_classes, size=n)
        noise = g.sample_noise(n, st.truncation, seed=int(seed)).cpu()
        k = self.directions.k
        offsets = np.zeros((n, k), dtype=np.float32)
        if not self.observational:
            m = min(st.per_sample, k)
            chosen = np.argsort(rng.random((n, k)), axis=1)[:, :m]  # m distinct per sample
            r = st.scale * self.directions.ranges()
            vals = rng.uniform(-1.0, 1.0, size=(n, m)) * r[chosen]
            np.put_along_axis(offsets, chosen, vals.astype(np.float32), axis=1)
        comps = torch.from_numpy(self.directions.components)
        if st.centered and not self.observational:
            # GANSpace's centred edit: drop the sample's own coordinate on moved directions
            moved = torch.from_numpy((offsets != 0).astype(np.float32))
            own = (noise @ comps.T) * moved
            z = noise - own @ comps + torch.from_numpy(offsets) @ comps
        else:
            z = noise + torch.from_numpy(offsets) @ comps
        images = g.generate(z, labels.tolist(), st.truncation, batch_size=batch_size)
        if self.observational:
            rec, names = noise.numpy().astype(np.float32), [f"z{j}" for j in range(g.z_dim)]
        else:
            rec, names = offsets, [f"u{j}" for j in range(k)]
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
    """A generator from its spec: the project factory when present, else the built-ins.

    Built-ins: ``tiny-biggan[:SEED]`` (random weights, for tests and docs),
    ``biggan:DIR|NAME`` and ``small:DIR``.
    """
    try:  # the generator factory of issue 5, when it has landed
        from generators import load_generator  # type: ignore[attr-defined]
    except ImportError:
        load_generator = None
    scheme, _, arg = spec.partition(":")
    if scheme == "tiny-biggan":
        from generators.biggan import tiny_biggan

        return tiny_biggan(seed=int(arg or 0), device=device)
    if load_generator is not None:
        return load_generator(spec)
    if scheme == "biggan" and arg:
        from generators.biggan import load_biggan

        return load_biggan(arg, device=device)
    if scheme == "small" and arg:
        from generators.small_gan import load_small_gan

        return load_small_gan(arg, device=device)
    raise CausalKitError(f"unknown generator {spec!r}; use tiny-biggan[:SEED], biggan:DIR|NAME, "
                         "small:DIR or scm:VARIANT (ground-truth SCM of a biased MNIST variant)")


def resolve_source(generator: Any, strategy: Any = None, *, directions: Any = None,
                   observational: bool = False, source: Any = None) -> InterventionSource:
    """An :class:`InterventionSource` from CLI-style arguments.

    Parameters
    ----------
    generator
        ``"scm:<variant>"`` (ground truth; ``strategy`` is not used), a generator spec
        (see :func:`load_generator_spec`), a generator object, or an existing source.
    strategy
        A :class:`~causalkit.interventions.LatentStrategy` or its text, e.g.
        ``"t=1,k=60,s=1"`` (clipped to the generator's latent size is *not* done: a
        ``k`` above the number of directions is an error).
    directions
        A :class:`~generators.directions.Directions`, a path to its ``.npz``, or ``None``
        for the SVD shortcut.
    """
    if hasattr(generator, "sample") and not hasattr(generator, "z_dim"):
        return generator
    if isinstance(generator, str) and generator.startswith("scm:"):
        return SCMSource(generator[4:], source=source)
    gen = load_generator_spec(generator) if isinstance(generator, str) else generator
    if isinstance(directions, (str, bytes)) or hasattr(directions, "__fspath__"):
        from generators.directions import Directions

        directions = Directions.load(directions)
    if strategy is None:
        raise CausalKitError("a generator-backed source needs --strategy, e.g. t=1,k=8,s=1")
    return StrategySource(gen, directions, strategy, observational=observational)
