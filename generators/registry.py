"""Generator specs: ``load_generator("biggan:DIR")`` and friends, extensible by scheme.

A spec is ``scheme[:argument]``. Built in:

* ``biggan:DIR`` -- a folder with ``config.json`` + ``pytorch_model.bin`` (strict keys);
* ``biggan:NAME`` -- ``biggan-deep-128/256/512`` through the offline-first cache;
* ``tiny[:SEED]`` -- the tiny random-weights BigGAN (tests and docs);
* ``small:DIR`` -- the small trainable GAN (:mod:`generators.small_gan`).

Another generator adds itself with :func:`register_generator`; e.g. a small GAN module
calls ``register_generator("small", load_small)`` and ``causalkit generate --generator
small:DIR`` works. A loader may also be given as ``"module:function"`` so that the module
is imported only when the scheme is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch

from causalkit.errors import CausalKitError
from generators.base import ConditionalGenerator

__all__ = ["register_generator", "load_generator", "generator_schemes"]

Loader = Callable[[str, "torch.device | str | None"], ConditionalGenerator]

_LOADERS: dict[str, Loader | str] = {
    "biggan": "generators.registry:_load_biggan",
    "tiny": "generators.registry:_load_tiny",
    # The small trainable GAN registers itself too; this entry makes "small:DIR" work
    # without importing it first.
    "small": "generators.small_gan:load_spec",
}


def register_generator(scheme: str, loader: Loader | str, *, replace: bool = False) -> None:
    """Make ``scheme:ARG`` loadable: ``loader(arg, device) -> ConditionalGenerator``."""
    if not scheme.isidentifier():
        raise CausalKitError(f"generator scheme {scheme!r} must be an identifier")
    if scheme in _LOADERS and not replace:
        raise CausalKitError(f"generator scheme {scheme!r} is already registered; pass "
                             "replace=True to override it")
    _LOADERS[scheme] = loader


def generator_schemes() -> list[str]:
    """The registered schemes."""
    return sorted(_LOADERS)


def load_generator(spec: str, device: torch.device | str | None = None
                   ) -> ConditionalGenerator:
    """Load the generator named by ``spec`` (``scheme[:argument]``) onto ``device``."""
    scheme, _, arg = spec.partition(":")
    loader = _LOADERS.get(scheme)
    if loader is None:
        raise CausalKitError(f"unknown generator {spec!r}; use one of "
                             f"{', '.join(s + ':...' for s in generator_schemes())} "
                             "(e.g. biggan:biggan-deep-256, biggan:/path/to/dir, tiny:0)")
    if isinstance(loader, str):
        module, _, name = loader.partition(":")
        try:
            loader = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise CausalKitError(f"generator scheme {scheme!r} needs {loader}, which "
                                 f"cannot be imported ({exc})") from None
    gen = loader(arg, device)
    gen.name = spec
    return gen


def _load_biggan(arg: str, device: torch.device | str | None) -> ConditionalGenerator:
    from generators.biggan import load_biggan

    if not arg:
        raise CausalKitError("biggan needs a folder or a name: biggan:DIR or "
                             "biggan:biggan-deep-256")
    return load_biggan(arg, device=device)


def _load_tiny(arg: str, device: torch.device | str | None) -> ConditionalGenerator:
    from generators.biggan import tiny_biggan

    try:
        seed = int(arg) if arg else 0
    except ValueError:
        raise CausalKitError(f"tiny takes an integer seed (tiny:0), got {arg!r}") from None
    return tiny_biggan(seed, device=device if device is not None else "cpu")
