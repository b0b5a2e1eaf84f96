"""Latent intervention strategies ranked by Theorem 1, with the bounds each gives.

GenInt's Theorem 1 says the strategy that makes the observed image more likely gives the
tighter bound on ``P(y | do(x))``: the width is ``1 - P(x | do(z))``. For images the
likelihood is estimated (:mod:`analysis.likelihood`): each strategy generates ``M``
images, a kernel density over them scores held-out *real* images, and the per-image
bounds follow from :func:`causalkit.bounds.nuisance_bounds`. This module runs that for
a list of strategies and summarises it:

1. parse the strategies (``"t=1,k=8,s=1"``), optionally expanded into a sweep of one
   parameter (:func:`sweep_strategies`; GenInt's Figure 6);
2. load the held-out real images (:func:`analysis.imagesets.load_image_set`) and score
   every strategy on them with one shared kernel bandwidth
   (:func:`analysis.likelihood.score_strategies`);
3. rank the strategies by ``P(x | do(z))`` (:func:`causalkit.bounds.rank_strategies`)
   and intersect their per-image bounds (every valid interval contains the truth, so
   their intersection does too; images whose intervals do not overlap are counted);
4. with a sweep and an output folder, plot log-likelihood and width against the swept
   parameter (:func:`analysis.plots.plot_sweep`).

:func:`bound_latent_strategies` returns the JSON-ready report; ``causalkit bound
--strategy t=..,k=..,s=.. --generator G --data D`` prints it as a table.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from causalkit.interventions import LatentStrategy

__all__ = ["SWEEP_DEFAULTS", "sweep_strategies", "bound_latent_strategies"]

#: Values swept when a sweep is asked for with a single strategy.
SWEEP_DEFAULTS = {"t": [0.2, 0.4, 0.6, 0.8, 1.0], "k": [1, 2, 4, 8], "s": [0.5, 1.0, 2.0, 4.0]}
_FIELD = {"t": "truncation", "k": "components", "s": "scale"}


def sweep_strategies(base: LatentStrategy, param: str,
                     values: list[float] | None = None) -> list[LatentStrategy]:
    """Copies of ``base`` with ``param`` (``t``, ``k`` or ``s``) set to each value.

    ``values`` defaults to :data:`SWEEP_DEFAULTS`; ``k`` values become integers.

    >>> [str(s) for s in sweep_strategies(LatentStrategy.parse("t=1,k=8,s=1"), "k", [2, 4])]
    ['t=1,k=2,s=1', 't=1,k=4,s=1']
    """
    if param not in _FIELD:
        raise CausalKitError(f"--sweep takes t, k or s, got {param!r}")
    vals = values if values is not None else SWEEP_DEFAULTS[param]
    out = []
    for v in vals:
        v = int(v) if param == "k" else float(v)
        out.append(dataclasses.replace(base, **{_FIELD[param]: v}))
    return out


def bound_latent_strategies(strategies: list[str], *, generator: str | None,
                            data: str | None, directions: str | os.PathLike | None = None,
                            sweep: str | None = None, n_generated: int = 2000,
                            n_real: int = 1000, feature: str = "random-conv",
                            data_options: dict[str, Any] | None = None, seed: int = 0,
                            out: str | os.PathLike | None = None, progress: bool = True
                            ) -> dict[str, Any]:
    """Score latent strategies by log P(x | do(z)) of held-out real images and bound
    ``P(y_i | do(x_i))`` for each real image (see the module docstring).

    Parameters
    ----------
    strategies
        Strategy texts, e.g. ``["t=1,k=8,s=1", "t=1,k=8,s=3"]``.
    generator
        A generator spec (``tiny``, ``small:DIR``, ``biggan:DIR|NAME``).
    data
        Held-out real images whose labels are the generator's classes (e.g.
        ``colored-mnist:test`` or an image folder); ``data_options`` are passed to
        :func:`~analysis.imagesets.load_image_set` with ``n = n_real`` and ``seed``.
    directions
        A directions ``.npz`` or ``None`` (the SVD shortcut of the first layer).
    sweep
        ``t``, ``k`` or ``s``: with one strategy, sweep that parameter over
        :data:`SWEEP_DEFAULTS`; with several, order them by it.
    n_generated
        ``M``, generated images per strategy.
    feature
        The kernel's feature map (``random-conv`` or ``pixels``).
    seed
        Seeds generation and subsampling; every strategy shares its latent noise.
    out
        With ``sweep``: the folder the sweep plot ``sweep_{param}.png`` goes to.

    Returns
    -------
    dict
        ``generator``, ``data``, ``n_real``, ``n_generated``, ``feature``,
        ``bandwidth``, ``seed``, ``strategies`` (one
        :meth:`~analysis.likelihood.StrategyScore.to_dict` each), ``intersection``
        (mean lower / upper / width over the images whose intervals overlap, and the
        number that do not), ``ranking`` (``strategy``, ``p_x_do``, ``width``, tightest
        first) and, when a plot was written, ``plot``.
    """
    from analysis.imagesets import load_image_set
    from analysis.likelihood import score_strategies
    from causalkit.bounds import rank_strategies

    if not generator:
        raise CausalKitError("a latent strategy (t=..,k=..,s=..) needs --generator, e.g. "
                             "--generator tiny or --generator small:DIR, and --data with "
                             "held-out real images")
    if not data:
        raise CausalKitError("a latent strategy needs --data: held-out real images whose "
                             "labels are the generator's classes (e.g. colored-mnist:test "
                             "or an image folder)")
    parsed = [LatentStrategy.parse(s) for s in strategies]
    if sweep is not None:
        if sweep not in _FIELD:
            raise CausalKitError(f"--sweep takes t, k or s, got {sweep!r}")
        if len(parsed) == 1:
            parsed = sweep_strategies(parsed[0], sweep)
        parsed.sort(key=lambda st: getattr(st, _FIELD[sweep]))
    names = [str(p) for p in parsed]
    if len(set(names)) != len(names):
        raise CausalKitError(f"duplicate strategies: {names}")
    opts = {**(data_options or {}), "n": n_real, "seed": seed}
    real = load_image_set(data, options=opts)
    scores, h = score_strategies(generator, parsed, real.images, real.labels.numpy(),
                                 directions=directions, n_generated=n_generated,
                                 feature=feature, seed=seed, progress=progress)
    ranking = rank_strategies({s.strategy: s.p_x_do for s in scores})
    lo = np.max([s.per_image_lower for s in scores], axis=0)
    hi = np.min([s.per_image_upper for s in scores], axis=0)
    overlap = lo <= hi + 1e-9
    inter = {"mean_lower": float(lo[overlap].mean()) if overlap.any() else None,
             "mean_upper": float(hi[overlap].mean()) if overlap.any() else None,
             "mean_width": float((hi - lo)[overlap].mean()) if overlap.any() else None,
             "images_without_overlap": int((~overlap).sum())}
    report: dict[str, Any] = {
        "generator": generator, "data": data, "n_real": len(real),
        "n_generated": n_generated, "feature": feature, "bandwidth": h, "seed": seed,
        "strategies": [s.to_dict() for s in scores], "intersection": inter,
        "ranking": [{"strategy": n, "p_x_do": p, "width": w} for n, p, w in ranking]}
    if sweep is not None and out is not None:
        from analysis.plots import plot_sweep

        values = [s.params[sweep] for s in scores]
        path = plot_sweep(sweep, values, [s.mean_log_likelihood for s in scores],
                          [s.width for s in scores], Path(out) / f"sweep_{sweep}.png")
        report["plot"] = str(path)
    return report
