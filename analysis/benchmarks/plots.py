"""Figures of benchmark results: the shape-bias plot and the corruption-error bars.

:func:`plot_shape_bias` draws Geirhos et al.'s figure: one row per cue-conflict
category, the fraction of shape decisions on the bottom axis (texture decisions, its
complement, on the top axis), a marker per category and a vertical line at the overall
shape bias, one colour per classifier (or head). :func:`plot_corruption_errors` draws
the top-1 error per ImageNet-C corruption as bars, with the mCE in the title.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from analysis.benchmarks.results import BenchmarkResult


def plot_shape_bias(results: Mapping[str, BenchmarkResult], path: str | os.PathLike) -> Path:
    """Save the shape-bias plot of ``results`` (label -> shape-bias result) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.benchmarks.shape_bias import CATEGORIES

    fig, ax = plt.subplots(figsize=(5.5, 6.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = 0
    for label, result in results.items():
        for head, summary in result.details.items():
            colour = colours[k % len(colours)]
            k += 1
            name = label if len(result.details) == 1 else f"{label} ({head})"
            rows = [(i, summary["per_category"][c]["shape_bias"])
                    for i, c in enumerate(CATEGORIES) if c in summary["per_category"]]
            ax.scatter([v for _, v in rows], [i for i, _ in rows], color=colour, s=40,
                       label=f"{name}: {summary['shape_bias']:.2f}", zorder=3)
            ax.axvline(summary["shape_bias"], color=colour, lw=1.5)
    ax.set_yticks(range(len(CATEGORIES)), CATEGORIES)
    ax.invert_yaxis()
    ax.set_xlim(1.02, -0.02)
    ax.set_xlabel("Fraction of 'shape' decisions")
    top = ax.secondary_xaxis("top", functions=(lambda x: 1 - x, lambda x: 1 - x))
    top.set_xlabel("Fraction of 'texture' decisions")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.25), fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_corruption_errors(result: BenchmarkResult, path: str | os.PathLike,
                           head: str | None = None) -> Path:
    """Save a bar chart of top-1 error per corruption (mean over severities) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = head or (result.heads[0] if len(result.heads) == 1 else "averaged")
    values = result.metrics[head]
    names = [k.split("/", 1)[1] for k in values if k.startswith("error/")]
    errors = [values[f"error/{n}"] for n in names]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(names) + 1.5), 3.6))
    ax.bar(range(len(names)), errors, color="#4c72b0")
    if "clean_error" in values:
        ax.axhline(values["clean_error"], color="k", ls="--", lw=1, label="clean error")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=60,
                  ha="right", fontsize=8)
    ax.set_ylabel("top-1 error")
    ax.set_ylim(0, 1)
    title = "ImageNet-C"
    if "mce" in values:
        title += f": mCE {100 * values['mce']:.1f}, relative mCE {100 * values['relative_mce']:.1f}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["plot_corruption_errors", "plot_shape_bias"]
