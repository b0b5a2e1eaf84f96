"""The protocol of a class-conditional latent generator.

Every generator that GenInt-style interventions run on -- a pretrained BigGAN, a small GAN
trained here -- is a map ``(z, y) -> x`` from a latent vector ``z`` (``z_dim`` numbers) and
a class ``y`` (one of ``num_classes``) to an image in ``[-1, 1]``. This module fixes that
contract as :class:`ConditionalGenerator`, so that directions
(:mod:`generators.directions`), strategies (:mod:`generators.strategies`) and the
``causalkit generate`` command work with any of them.

A subclass provides the network (:attr:`ConditionalGenerator.module`), its latent size and
class count, and :meth:`ConditionalGenerator._forward`; it inherits seeded truncated noise,
label handling, layer hooks and device moves.

Examples
--------
>>> from generators.biggan import tiny_biggan
>>> g = tiny_biggan(seed=0)
>>> z = g.sample_noise(4, truncation=0.5, seed=1)
>>> g(z, [0, 1, 2, 3], truncation=0.5).shape
torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from causalkit.errors import CausalKitError

__all__ = ["ConditionalGenerator", "make_generator", "truncated_normal", "default_device",
           "check_truncation", "TRUNCNORM_STD"]

#: Standard deviation of a standard normal truncated to [-2, 2] (the noise of BigGAN).
TRUNCNORM_STD = math.sqrt(1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2 * math.pi)
                          / math.erf(2.0 / math.sqrt(2.0)))


def default_device() -> torch.device:
    """CUDA when available, otherwise CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A CPU :class:`torch.Generator` from an integer seed (or pass one through).

    ``None`` is refused: every sampling path in causalkit is seeded explicitly.
    """
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, int):
        raise CausalKitError(f"a seed must be an int or a torch.Generator, got {seed!r}; "
                             "pass e.g. seed=0")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return gen


def check_truncation(truncation: float) -> float:
    """Validate ``0 < truncation <= 1`` and return it as a float."""
    ok = isinstance(truncation, (int, float)) and not isinstance(truncation, bool)
    if not (ok and math.isfinite(truncation) and 0.0 < truncation <= 1.0):
        raise CausalKitError(f"truncation must satisfy 0 < t <= 1, got {truncation!r}; "
                             "use e.g. truncation=0.5 (1 means no truncation)")
    return float(truncation)


def truncated_normal(n: int, dim: int, truncation: float = 1.0, *,
                     generator: torch.Generator) -> torch.Tensor:
    """``n x dim`` draws of a standard normal truncated to [-2, 2], times ``truncation``.

    This is BigGAN's noise (``scipy.stats.truncnorm(-2, 2) * t``). It is sampled by the
    inverse CDF, so one draw of uniforms gives one value and the stream is reproducible.
    """
    truncation = check_truncation(truncation)
    lo = 0.5 * (1.0 + math.erf(-2.0 / math.sqrt(2.0)))
    u = torch.rand(n, dim, generator=generator, dtype=torch.float64)
    z = torch.special.ndtri(lo + u * (1.0 - 2.0 * lo)).clamp_(-2.0, 2.0)
    return (z * truncation).to(torch.float32)


class ConditionalGenerator(ABC):
    """A class-conditional latent generator ``(z, y) -> images`` (float NCHW in [-1, 1]).

    Subclasses set :attr:`module` (the :class:`torch.nn.Module`), :attr:`z_dim`,
    :attr:`num_classes` and :attr:`image_size`, and implement :meth:`_forward`. The
    network is kept in eval mode: generation never uses batch statistics.

    Attributes
    ----------
    module
        The network; its named submodules are the hookable layers.
    z_dim
        Size of the latent vector.
    num_classes
        Number of classes ``y`` can take.
    image_size
        Height (= width) of the output images.
    name
        A short description (e.g. the spec it was loaded from).
    """

    module: nn.Module
    z_dim: int
    num_classes: int
    image_size: int
    name: str = "generator"

    # -- latent noise ---------------------------------------------------------------
    def sample_noise(self, n: int, truncation: float = 1.0, *,
                     seed: int | torch.Generator | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` latent vectors with truncation ``t`` (0 < t <= 1), on the device.

        Pass ``seed`` (an int) or ``generator`` (a CPU :class:`torch.Generator`, advanced
        in place); the same seed gives the same noise on every device.
        """
        gen = make_generator(generator if generator is not None else seed)
        if not isinstance(n, int) or n < 0:
            raise CausalKitError(f"n must be a non-negative integer, got {n!r}")
        return truncated_normal(n, self.z_dim, truncation, generator=gen).to(self.device)

    # -- labels -----------------------------------------------------------------------
    def labels(self, y: Any, n: int | None = None) -> torch.Tensor:
        """Validate class labels and return them as a float one-hot (or soft) matrix.

        ``y`` is an int (repeated ``n`` times), a sequence / 1-d tensor of ints, or an
        ``(n, num_classes)`` float tensor of class weights.
        """
        if isinstance(y, int) and not isinstance(y, bool):
            y = [y] * (1 if n is None else n)
        y_t = torch.as_tensor(y)
        if y_t.dim() == 2 and y_t.is_floating_point():
            if y_t.shape[1] != self.num_classes:
                raise CausalKitError(f"soft labels have {y_t.shape[1]} columns but the "
                                     f"generator has {self.num_classes} classes")
            return y_t.to(self.device, torch.float32)
        if y_t.dim() != 1 or y_t.is_floating_point() or y_t.dtype == torch.bool:
            raise CausalKitError("labels must be integers (a list or 1-d tensor) or an "
                                 f"(n, {self.num_classes}) float tensor; got shape "
                                 f"{tuple(y_t.shape)} dtype {y_t.dtype}")
        if y_t.numel() and (int(y_t.min()) < 0 or int(y_t.max()) >= self.num_classes):
            raise CausalKitError(f"labels must lie in [0, {self.num_classes - 1}], got "
                                 f"min {int(y_t.min())} max {int(y_t.max())}")
        return nn.functional.one_hot(y_t.long(), self.num_classes).to(self.device,
                                                                       torch.float32)

    # -- forward ----------------------------------------------------------------------
    @abstractmethod
    def _forward(self, z: torch.Tensor, onehot: torch.Tensor,
                 truncation: float) -> torch.Tensor:
        """Run the network on validated inputs (already on the device)."""

    def forward(self, z: torch.Tensor, y: Any, truncation: float = 1.0) -> torch.Tensor:
        """Images ``(n, 3, H, W)`` in [-1, 1] for latents ``z`` and classes ``y``.

        Parameters
        ----------
        z
            ``(n, z_dim)`` latent vectors.
        y
            Class labels: ints, or an ``(n, num_classes)`` float tensor.
        truncation
            The truncation the noise was drawn with, ``0 < t <= 1``; generators with
            per-truncation normalisation statistics (BigGAN) use it to pick them.
        """
        truncation = check_truncation(truncation)
        z = torch.as_tensor(z)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise CausalKitError(f"z must have shape (n, {self.z_dim}), got "
                                 f"{tuple(z.shape)}")
        onehot = self.labels(y, n=z.shape[0])
        if onehot.shape[0] != z.shape[0]:
            raise CausalKitError(f"{z.shape[0]} latents but {onehot.shape[0]} labels")
        return self._forward(z.to(self.device, torch.float32), onehot, truncation)

    def __call__(self, z: torch.Tensor, y: Any, truncation: float = 1.0) -> torch.Tensor:
        """Same as :meth:`forward`."""
        return self.forward(z, y, truncation)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: Any, truncation: float = 1.0, *,
                 batch_size: int = 64) -> torch.Tensor:
        """:meth:`forward` without gradients, in batches; returns a CPU tensor."""
        z = torch.as_tensor(z)
        onehot = self.labels(y, n=z.shape[0])
        out = [self.forward(z[i:i + batch_size], onehot[i:i + batch_size], truncation).cpu()
               for i in range(0, z.shape[0], batch_size)]
        return torch.cat(out) if out else torch.empty(0, 3, self.image_size,
                                                      self.image_size)

    # -- layers -------------------------------------------------------------------------
    def layers(self) -> dict[str, nn.Module]:
        """All named submodules of :attr:`module` (names as in ``named_modules``)."""
        return {name: mod for name, mod in self.module.named_modules() if name}

    def layer(self, name: str) -> nn.Module:
        """The submodule called ``name``; the error lists a few valid names."""
        layers = self.layers()
        if name not in layers:
            some = ", ".join(list(layers)[:8])
            raise CausalKitError(f"no layer named {name!r} in {self.name}; layers include "
                                 f"{some}, ... (see generator.layers())")
        return layers[name]

    def hook_layer(self, name: str,
                   fn: Callable[[nn.Module, tuple, torch.Tensor], Any]
                   ) -> torch.utils.hooks.RemovableHandle:
        """Register a forward hook ``fn(module, inputs, output)`` on layer ``name``."""
        return self.layer(name).register_forward_hook(fn)

    @contextlib.contextmanager
    def capture(self, name: str) -> Iterator[list[torch.Tensor]]:
        """Context manager collecting the (detached) outputs of layer ``name``.

        >>> with g.capture("generator.gen_z") as acts:  # doctest: +SKIP
        ...     g(z, y)
        >>> acts[0].shape
        """
        outputs: list[torch.Tensor] = []
        handle = self.hook_layer(name, lambda m, i, o: outputs.append(o.detach()))
        try:
            yield outputs
        finally:
            handle.remove()

    # -- devices ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device of the network's parameters."""
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> ConditionalGenerator:
        """Move the network to ``device`` (in place) and return ``self``."""
        self.module.to(device)
        return self

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, z_dim={self.z_dim}, "
                f"num_classes={self.num_classes}, image_size={self.image_size}, "
                f"device={self.device})")


def as_label_list(classes: Sequence[int] | None, num_classes: int) -> list[int]:
    """Validate a list of class indices (``None`` means all classes)."""
    if classes is None:
        return list(range(num_classes))
    out = [int(c) for c in classes]
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad:
        raise CausalKitError(f"classes {bad} are outside [0, {num_classes - 1}]")
    if len(set(out)) != len(out):
        raise CausalKitError(f"classes contain duplicates: {out}")
    return out
