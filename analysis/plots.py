"""Figures of the probe (GenInt Figure 3), of strategy sweeps (GenInt Figure 6) and of
strategy screens (how far each intervention loosens the colour tie, against how many of
its samples still show their digit).

matplotlib runs with the non-interactive Agg backend; files are written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from causalkit.io import atomic_write_bytes

__all__ = ["plot_probe", "plot_sweep", "plot_screen_frontier"]


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_probe(report: Any, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Accuracy ÷ chance against the number of categories, one line per dataset.

    Error bars are the standard deviation over class subsets; the dashed line at 1 is
    chance. Where the true nuisances are known, a thin dotted line of the same colour
    shows the ratio they give.
    """
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    cats = list(report.categories)
    for i, d in enumerate(report.datasets):
        colour = f"C{i}"
        means = [d.ratios[n].mean for n in cats]
        stds = [d.ratios[n].std for n in cats]
        ax.errorbar(cats, means, yerr=stds, marker="o", capsize=3, color=colour, label=d.name)
        if d.true_ratios is not None:
            ax.plot(cats, [d.true_ratios[n].mean for n in cats], ":", color=colour, lw=1,
                    label=f"{d.name} (true nuisance)")
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="chance")
    ax.set_xlabel("number of categories N")
    ax.set_ylabel("accuracy ÷ chance")
    ax.set_xticks(cats)
    ax.set_title(title or f"nuisance → label probe (regressor R² {report.regressor.r2:.2f})",
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_sweep(param: str, values: Sequence[float], loglik: Sequence[float],
               widths: Sequence[float], path: str | os.PathLike,
               *, title: str | None = None) -> Path:
    """Log-likelihood of held-out real images (left axis) and the mean bound width (right
    axis) against the swept strategy parameter, like GenInt's Figure 6."""
    plt = _figure()
    names = {"t": "truncation t", "k": "components k", "s": "scale s"}
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.plot(values, loglik, "o-", color="C0", label="log P(x | do(z)) per image")
    ax.set_xlabel(names.get(param, param))
    ax.set_ylabel("mean log P(x | do(z))", color="C0")
    ax2 = ax.twinx()
    ax2.plot(values, widths, "s--", color="C3", label="mean bound width")
    ax2.set_ylabel("mean width of the bound on P(y | do(x))", color="C3")
    ax.set_title(title or f"strategy sweep over {names.get(param, param)}", fontsize=10)
    ax.grid(alpha=0.3)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_screen_frontier(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Recognised against mutual information: a colour per generator, a marker per kind
    of directions (first-layer shortcut, one later layer, several layers joined).

    Each record is one screened strategy (``bench/genint_screen.py``) with ``mi_bits``
    (:func:`analysis.nuisance_tie.colour_tie`), ``recognised`` (the fraction of samples
    a shape reader reads as their label), ``generator`` (its folder),
    ``directions_layer`` and ``reference_real`` (the real training images' scores).
    Independence is MI 0; the dashed line is the real training images' MI. Points up
    and to the left are better interventions.
    """
    from causalkit.errors import CausalKitError

    if not records:
        raise CausalKitError("no interventional records to plot; screen some strategies "
                             "first")

    def kind(layer: str) -> str:
        if "+" in layer:
            return "layers joined"
        return "first layer" if layer.startswith("gen_z") else "one later layer"

    markers = {"first layer": "o", "one later layer": "s", "layers joined": "^"}
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    generators = sorted({Path(r["generator"]).parent.name for r in records})
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(generators)}
    for r in records:
        ax.plot(r["mi_bits"], r["recognised"], markers[kind(r["directions_layer"])],
                color=colours[Path(r["generator"]).parent.name], alpha=0.75)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=g)
               for g, c in colours.items()]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=k, fillstyle="none")
                for k, m in markers.items()]
    handles.append(ax.axvline(records[0]["reference_real"]["mi_bits"], ls="--", c="grey",
                              lw=1, label="real training images"))
    ax.set_xlabel("mutual information of nuisance class and label (bits)")
    ax.set_ylabel("recognised by the shape reader")
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path
