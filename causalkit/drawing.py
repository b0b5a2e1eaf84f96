"""Drawing a :class:`~causalkit.graph.CausalGraph` to a PNG with matplotlib.

The figure reads top-down, in the direction of the arrows:

1. **Layout** (:func:`layered_positions`): one row per topological generation (the
   sources first, then every node whose parents are all in earlier rows), each row
   centred and kept in the graph's node order, so a figure does not reshuffle when an
   unrelated node is added.
2. **Colour** (:func:`role_colours`): a fixed colour for each conventional role
   (:data:`ROLE_COLOURS`: confounder, nuisance, mechanism, object, image, label,
   noise), so that figures of different graphs agree; other roles take colours from a
   cycle in order of appearance, nodes without a role are grey.
3. **Marks** (:func:`draw`): latent nodes are hollow with a dashed rim and the edges
   out of them are dashed; an edge that skips a row bends, so it does not run hidden
   behind the node in between. A legend names the roles.

Examples
--------
>>> from causalkit import library
>>> from causalkit.drawing import layered_positions
>>> layered_positions(library.get_graph("genint"))["X"]
(0.0, -2.0)
>>> draw(library.get_graph("genint"), "genint.png", title="genint")  # doctest: +SKIP
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from causalkit.graph import CausalGraph

__all__ = ["ROLE_COLOURS", "layered_positions", "role_colours", "draw"]

#: Fixed colours per conventional role, so that figures agree across graphs.
ROLE_COLOURS = {
    "confounder": "#d62728", "nuisance": "#ff7f0e", "mechanism": "#9467bd",
    "object": "#2ca02c", "image": "#1f77b4", "label": "#8c564b", "noise": "#7f7f7f",
}
_EXTRA_COLOURS = ["#e377c2", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a"]


def layered_positions(g: CausalGraph) -> dict[str, tuple[float, float]]:
    """Top-down layout: one row per topological generation, rows centred, node order kept."""
    import networkx as nx

    pos: dict[str, tuple[float, float]] = {}
    for depth, layer in enumerate(nx.topological_generations(g.nx)):
        layer = sorted(layer, key=g.nodes.index)
        for j, v in enumerate(layer):
            pos[v] = (j - (len(layer) - 1) / 2, -float(depth))
    return pos


def role_colours(g: CausalGraph) -> dict[str, str]:
    """Colour of each node: fixed for the conventional roles, a cycle for others."""
    extra: dict[str, str] = {}
    out = {}
    for v in g.nodes:
        r = g.role(v)
        if r in ROLE_COLOURS:
            out[v] = ROLE_COLOURS[r]
        elif r is None:
            out[v] = "#cccccc"
        else:
            out[v] = extra.setdefault(r, _EXTRA_COLOURS[len(extra) % len(_EXTRA_COLOURS)])
    return out


def draw(g: CausalGraph, path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``g`` to a PNG: roles coloured, latent nodes hollow and dashed, edges out of
    latent nodes dashed. Written atomically; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from causalkit.io import atomic_write_bytes

    pos = layered_positions(g)
    colours = role_colours(g)
    half = max((abs(x) for x, _ in pos.values()), default=0.0) + 0.7
    depth = max((-y for _, y in pos.values()), default=0.0)
    fig, ax = plt.subplots(figsize=(2.6 * half + 2.5, 1.3 * depth + 1.8))
    for u, v in g.edges:
        # Edges that skip a layer bend, so they do not run hidden behind a node.
        skip = pos[u][1] - pos[v][1] > 1
        ax.annotate("", xy=pos[v], xytext=pos[u], zorder=1, arrowprops=dict(
            arrowstyle="-|>", color="#333333", lw=1.3, shrinkA=18, shrinkB=18,
            linestyle="--" if g.is_latent(u) else "-", mutation_scale=14,
            connectionstyle=f"arc3,rad={0.3 if skip else 0.0}"))
    for v in g.nodes:
        latent = g.is_latent(v)
        ax.scatter([pos[v][0]], [pos[v][1]], s=1100, zorder=2,
                   facecolors="white" if latent else colours[v], edgecolors=colours[v],
                   linewidths=2.0, linestyles="--" if latent else "-")
        ax.text(pos[v][0], pos[v][1], v, ha="center", va="center", zorder=3, fontsize=10,
                color=colours[v] if latent else "white", fontweight="bold")
    handles, seen = [], set()
    for v in g.nodes:
        label = g.role(v) or "(no role)"
        if label not in seen:
            seen.add(label)
            handles.append(Line2D([], [], marker="o", linestyle="", markersize=10,
                                  markerfacecolor=colours[v], markeredgecolor=colours[v],
                                  label=label))
    if g.latent:
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=10,
                              markerfacecolor="white", markeredgecolor="#333333",
                              label="latent (hollow)"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlim(-half, half)
    ax.set_ylim(-depth - 0.6, 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
