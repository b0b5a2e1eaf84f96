"""``causalkit bound --strategy t=..,k=..,s=.. --generator G --data D``: generator-backed
strategies ranked by Theorem 1 (called from :mod:`causalkit.cli.bound`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalkit.errors import CausalKitError

__all__ = ["bound_latent_strategies", "SWEEP_DEFAULTS", "sweep_strategies"]

#: Values swept when ``--sweep`` is given with a single ``--strategy``.
SWEEP_DEFAULTS = {"t": [0.2, 0.4, 0.6, 0.8, 1.0], "k": [1, 2, 4, 8], "s": [0.5, 1.0, 2.0, 4.0]}
_FIELD = {"t": "truncation", "k": "components", "s": "scale"}


def sweep_strategies(base: Any, param: str, values: list[float] | None = None) -> list[Any]:
    """Copies of ``base`` (a LatentStrategy) with ``param`` (t, k or s) set to each value."""
    import dataclasses

    if param not in _FIELD:
        raise CausalKitError(f"--sweep takes t, k or s, got {param!r}")
    vals = values if values is not None else SWEEP_DEFAULTS[param]
    out = []
    for v in vals:
        v = int(v) if param == "k" else float(v)
        out.append(dataclasses.replace(base, **{_FIELD[param]: v}))
    return out


def bound_latent_strategies(strategies: list[str], *, generator: str | None,
                            data: str | None, directions: Path | None = None,
                            sweep: str | None = None, n_generated: int = 2000,
                            n_real: int = 1000, feature: str = "random-conv",
                            data_options: dict[str, Any] | None = None, seed: int = 0,
                            out: Path | None = None, progress: bool = True
                            ) -> dict[str, Any]:
    """Score latent strategies by log P(x | do(z)) of held-out real images and bound
    ``P(y_i | do(x_i))`` for each real image (see :mod:`analysis.likelihood`).

    Returns the JSON report; its ``"_text"`` entry is the table to print. With ``out``
    a Figure-6-style sweep plot is written when ``sweep`` is given.
    """
    import numpy as np

    from analysis.imagesets import load_image_set
    from analysis.likelihood import score_strategies
    from causalkit.bounds import rank_strategies
    from causalkit.cli._common import format_table
    from causalkit.interventions import LatentStrategy

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
    rows = [[s.strategy, f"{s.log_likelihood:.1f}",
             f"{s.mean_log_likelihood:.4f} ± {s.se_mean_log_likelihood:.4f}",
             f"{s.p_x_do:.4f}", f"[{s.lower:.4f}, {s.upper:.4f}]", f"{s.width:.4f}"]
            for s in scores]
    if inter["mean_width"] is not None:
        rows.append(["intersection", "", "", "",
                     f"[{inter['mean_lower']:.4f}, {inter['mean_upper']:.4f}]",
                     f"{inter['mean_width']:.4f}"])
    text = [f"Generator {generator}; {len(real)} held-out real images from {data}; "
            f"M = {n_generated} generated images per strategy; kernel bandwidth h = {h:.4g} "
            f"({feature} features, median heuristic)", "",
            format_table(["strategy", "log P(x|z)", "per image ± se", "P(x|do(z))",
                          "mean interval on P(y|do(x))", "mean width"], rows), "",
            "Theorem 1 ranking (larger P(x|do(z)) -> tighter bound): "
            + " > ".join(name for name, _, _ in ranking)]
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
        text.append(f"wrote {path}")
    report["_text"] = "\n".join(text)
    return report
