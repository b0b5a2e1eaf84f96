"""From a generator and a strategy to a sampler: which latent directions to move along.

A latent strategy (``"t=1,k=8,s=1"``) moves each sample along the top ``k`` directions
of the generator's latent space, so before any image is made the directions must be
settled. :func:`make_sampler` settles them the same way for every caller, in this order:

1. **Observational** strategies (``"observational:t=0.2"``) move along nothing: no
   directions, whatever was passed.
2. **Given** directions win: a :class:`~generators.directions.Directions`, or the path of
   its ``.npz`` file. Fitting on a ``layer`` as well is a contradiction, and an error.
3. **Saved** directions come next: when ``saved`` names a file that exists (a resumed
   output folder's ``directions.npz``), they are read back when its key
   (:func:`~generators.directions.directions_key`) says this very request made them --
   same generator weights, ``k``, ``layer``, ``fit`` and fit settings; a stale or damaged
   file is fitted again and overwritten. A file of another ``layer`` than the one named
   is an error -- a run must not silently mix directions.
4. Otherwise they are **fitted**: ``fit="auto"`` takes
   :func:`~generators.directions.default_directions` (GANSpace on ``layer`` when named,
   else the exact shortcut of an affine first layer, else a PCA fit of the default
   layer); ``fit="shortcut"`` takes the exact shortcut unless a ``layer`` is named, and
   fails for a generator without an affine first layer. Fitted directions are written to
   ``saved`` when given, so a rerun finds them in step 3.

With ``top_k=True`` the sampler keeps only the strategy's ``k`` directions, and says so
when fewer are available. The result is a :class:`SamplerSetup`: the
:class:`~generators.strategies.InterventionSampler`, the directions it moves along and a
line saying where they came from (for reports).

Examples
--------
>>> from generators.biggan import tiny_biggan
>>> setup = make_sampler(tiny_biggan(0), "t=1,k=4,s=1")
>>> setup.directions.method, setup.source
('shortcut', 'fitted (shortcut)')
>>> images, latents = setup.sampler.sample([0, 1], seed=0)
>>> tuple(images.shape), tuple(latents.offsets.shape)
((2, 3, 32, 32), (2, 4))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from causalkit.errors import CausalKitError
from generators.base import ConditionalGenerator
from generators.directions import (
    Directions,
    default_directions,
    directions_key,
    shortcut_directions,
)
from generators.strategies import InterventionSampler, Observational, Strategy, parse_strategy

__all__ = ["SamplerSetup", "make_sampler", "FITS"]

#: How directions are fitted when none are given or saved (see the module docstring).
FITS = ("auto", "shortcut")


class SamplerSetup(NamedTuple):
    """What :func:`make_sampler` settled on."""

    #: The sampler: ``sampler.sample(labels, seed) -> (images, LatentBatch)``.
    sampler: InterventionSampler
    #: The directions it moves along; ``None`` for an observational strategy.
    directions: Directions | None
    #: Where they came from: the file read, ``"SAVED (METHOD)"`` when fitted and saved,
    #: ``"fitted (METHOD)"``, ``"given"``; ``None`` for an observational strategy.
    source: str | None


def _is_path(value: object) -> bool:
    return isinstance(value, str) or hasattr(value, "__fspath__")


def _reusable(saved: str | os.PathLike | None, generator: ConditionalGenerator, k: int,
              layer: str | None, fit: str) -> Directions | None:
    # the saved directions when this very request made them; None to fit them again
    if saved is None or not Path(saved).is_file():
        return None
    try:
        dirs = Directions.load(saved)
    except CausalKitError:
        return None  # a damaged file is fitted again
    if layer is not None and dirs.layer != layer:
        raise CausalKitError(f"{saved} holds directions of {dirs.layer!r}, not "
                             f"--layer {layer!r}; use a new --out folder")
    if not dirs.matches(directions_key(generator, k=k, layer=layer, fit=fit)):
        return None  # made by another generator, k, fit or fit settings: stale
    return dirs


def make_sampler(generator: ConditionalGenerator, strategy: Strategy | str, *,
                 directions: Directions | str | os.PathLike | None = None,
                 layer: str | None = None, saved: str | os.PathLike | None = None,
                 fit: str = "auto", top_k: bool = False) -> SamplerSetup:
    """An intervention sampler for ``generator`` under ``strategy``, its directions settled.

    Parameters
    ----------
    generator
        The class-conditional generator.
    strategy
        A :class:`~causalkit.interventions.LatentStrategy`,
        :class:`~generators.strategies.Observational`, or their text
        (``"t=1,k=60,s=1"``, ``"observational:t=0.2"``).
    directions
        Directions to move along, or the path of their ``.npz``; ``None`` to read
        ``saved`` or fit them.
    layer
        Fit GANSpace directions on this layer (several joined by ``+``); with ``saved``
        directions, the layer they must have been fitted on.
    saved
        A ``.npz`` path: read when it exists, else written with the fitted directions.
    fit
        ``"auto"`` or ``"shortcut"`` (see the module docstring).
    top_k
        Keep only the strategy's ``k`` directions; an error names ``k`` when fewer are
        available. (Sampling moves along the top ``k`` either way.)

    Returns
    -------
    SamplerSetup
        ``(sampler, directions, source)``.

    Raises
    ------
    CausalKitError
        Both ``directions`` and ``layer``; saved directions of another layer; an unknown
        ``fit``; too few directions for the strategy.
    """
    if fit not in FITS:
        raise CausalKitError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    strat = parse_strategy(strategy) if isinstance(strategy, str) else strategy
    if isinstance(strat, Observational):
        return SamplerSetup(InterventionSampler(generator, strat, None), None, None)
    if directions is not None and layer is not None:
        raise CausalKitError("pass --directions or --layer, not both")
    if directions is not None:
        if _is_path(directions):
            dirs, source = Directions.load(directions), str(directions)
        else:
            dirs, source = directions, "given"
    elif (dirs := _reusable(saved, generator, strat.components, layer, fit)) is not None:
        source = str(saved)
    else:
        if fit == "shortcut" and layer is None:
            dirs = shortcut_directions(generator)
        else:
            dirs = default_directions(generator, k=strat.components, layer=layer)
        if saved is not None:
            dirs.key = directions_key(generator, k=strat.components, layer=layer, fit=fit)
            dirs.save(saved)
            source = f"{saved} ({dirs.method})"
        else:
            source = f"fitted ({dirs.method})"
    if top_k:
        if dirs.k < strat.components:
            raise CausalKitError(f"the strategy uses k={strat.components} directions but "
                                 f"only {dirs.k} are available; lower k or fit more "
                                 "directions")
        dirs = dirs.top(strat.components)
    return SamplerSetup(InterventionSampler(generator, strat, dirs), dirs, source)
