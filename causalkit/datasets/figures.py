"""Pictures of the biased datasets: per-class sample grids and the causal graph."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.datasets.build import BiasedSplit
from causalkit.io import atomic_write

__all__ = ["class_grid", "save_split_grid", "save_graph_figure"]

_ROLE_COLOURS = {"label": "#f4a261", "nuisance": "#e76f51", "image": "#2a9d8f",
                 "object": "#8ab17d", "noise": "#d9d9d9"}


def class_grid(split: BiasedSplit, per_class: int = 8, pad: int = 2) -> np.ndarray:
    """A uint8 HWC montage: row ``k`` shows the first ``per_class`` images of class ``k``
    (black cells where a class has fewer)."""
    size = split.images.shape[-1]
    cell = size + pad
    grid = np.full((10 * cell + pad, per_class * cell + pad, 3), 255, dtype=np.uint8)
    for k in range(10):
        idx = np.flatnonzero(split.labels == k)[:per_class]
        for j, i in enumerate(idx):
            y, x = pad + k * cell, pad + j * cell
            grid[y:y + size, x:x + size] = split.images[i].transpose(1, 2, 0)
    return grid


def _save_figure(fig: Any, path: str | os.PathLike) -> Path:
    import matplotlib.pyplot as plt

    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110,
                                              bbox_inches="tight"))
    plt.close(fig)
    return Path(path)


def save_split_grid(train: BiasedSplit, ood: BiasedSplit, path: str | os.PathLike, *,
                    per_class: int = 8, title: str = "") -> Path:
    """Save a PNG with train samples (left) and OOD samples (right), one row per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2 + 1.1 * per_class, 6.2))
    rho = train.meta.get("rho")
    for ax, split, name in ((axes[0], train, f"train (rho={rho:g})" if rho is not None
                             else "train"),
                            (axes[1], ood, "OOD test: do(nuisance := uniform)")):
        grid = class_grid(split, per_class)
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        cell = grid.shape[0] / 10
        ax.set_yticks([cell * (k + 0.5) for k in range(10)], [str(k) for k in range(10)])
        ax.set_xticks([])
        ax.set_ylabel("label")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(fig, path)


def _layers(graph: Any) -> dict[str, tuple[float, float]]:
    """Left-to-right layout by longest path from a root."""
    depth: dict[str, int] = {}
    for v in graph.topological_order():
        depth[v] = max((depth[p] + 1 for p in graph.parents(v)), default=0)
    pos: dict[str, tuple[float, float]] = {}
    for d in sorted(set(depth.values())):
        layer = [v for v in graph.nodes if depth[v] == d]
        for i, v in enumerate(layer):
            pos[v] = (float(d), (len(layer) - 1) / 2 - i)
    return pos


def save_graph_figure(graph: Any, path: str | os.PathLike, *, title: str = "",
                      positions: dict[str, tuple[float, float]] | None = None) -> Path:
    """Draw a :class:`~causalkit.graph.CausalGraph`, nodes coloured by role.

    ``positions`` maps nodes to (x, y); by default nodes are layered left to right.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = graph.nx
    pos = dict(positions) if positions else _layers(graph)
    ys = [y for _, y in pos.values()]
    fig, ax = plt.subplots(figsize=(1.9 * (max(x for x, _ in pos.values()) + 1) + 1.5,
                                    1.2 * (max(ys) - min(ys)) + 1.6))
    colours = [_ROLE_COLOURS.get(graph.role(v) or "", "#ffffff") for v in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=2300,
                           edgecolors="#333333")
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=8)
    nx.draw_networkx_edges(g, pos, ax=ax, node_size=2300, arrowsize=14,
                           edge_color="#333333")
    handles = [plt.Line2D([], [], marker="o", linestyle="", markersize=9, color=c,
                          markeredgecolor="#333333", label=r)
               for r, c in _ROLE_COLOURS.items() if r in set(graph.roles.values())]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False, title="role", title_fontsize=8)
    ax.set_axis_off()
    ax.margins(0.12)
    if title:
        ax.set_title(title, fontsize=10)
    return _save_figure(fig, path)
