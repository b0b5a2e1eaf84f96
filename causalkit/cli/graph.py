"""``causalkit graph``: inspect, validate and query causal graphs.

GRAPH is a file (``.json`` or ``.dagitty``) or the name of a built-in graph
(``causalkit graph list``)::

    causalkit graph show genint --png genint.png
    causalkit graph check my_graph.dagitty
    causalkit graph backdoor genint --x Y --y X
    causalkit graph dsep genint --x Z --y Y --given C
"""

from __future__ import annotations

import io
from pathlib import Path

import typer

from causalkit.cli._common import JSON_OPTION, emit_json, format_table, user_errors
from causalkit.errors import CausalKitError, GraphError

graph_app = typer.Typer(
    help="Causal graphs: show, check, backdoor sets and d-separation. GRAPH is a .json or "
    ".dagitty file or a built-in name (see 'causalkit graph list').",
    no_args_is_help=True,
)

GRAPH_ARG = typer.Argument(..., metavar="GRAPH", help="A .json/.dagitty file or a built-in "
                           "graph name.")

# Fixed colours per conventional role, so that figures agree across graphs.
ROLE_COLOURS = {
    "confounder": "#d62728", "nuisance": "#ff7f0e", "mechanism": "#9467bd",
    "object": "#2ca02c", "image": "#1f77b4", "label": "#8c564b", "noise": "#7f7f7f",
}
_EXTRA_COLOURS = ["#e377c2", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a"]


def register(app: typer.Typer) -> None:
    """Add the ``graph`` command group to the main app."""
    app.add_typer(graph_app, name="graph")


def resolve_graph(spec: str):
    """Load ``spec`` as a file if it exists, else as a built-in graph name.

    Returns
    -------
    (CausalGraph, str)
        The graph and a label saying where it came from.
    """
    from causalkit import library
    from causalkit.graph import load

    path = Path(spec)
    if path.is_file():
        return load(path), str(path)
    if spec in library.GRAPHS:
        return library.get_graph(spec), spec
    if path.suffix.lower() in (".json", ".dagitty", ".dag"):
        raise GraphError(f"no such file: {spec}; check the path")
    raise GraphError(f"{spec!r} is neither a graph file nor a built-in graph; built-ins: "
                     f"{', '.join(library.list_graphs())}")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@graph_app.command("list")
@user_errors
def list_cmd(json_out: bool = JSON_OPTION) -> None:
    """List the built-in graphs."""
    from causalkit import library

    rows = [[name, library.GRAPHS[name].description] for name in library.list_graphs()]
    if json_out:
        emit_json([{"name": n, "description": d, "source": library.GRAPHS[n].source}
                   for n, d in rows])
    else:
        typer.echo(format_table(["name", "description"], rows))


@graph_app.command("show")
@user_errors
def show(graph: str = GRAPH_ARG,
         png: Path = typer.Option(None, "--png", help="Draw the graph to this PNG file."),
         json_out: bool = JSON_OPTION) -> None:
    """List the nodes by role (latents marked) and the edges; optionally draw them."""
    g, source = resolve_graph(graph)
    by_role: dict[str, list[str]] = {}
    for v in g.nodes:
        by_role.setdefault(g.role(v) or "(none)", []).append(v)
    if png is not None:
        draw(g, png, title=source)
    if json_out:
        emit_json({"graph": source,
                   "nodes": [{"name": v, "role": g.role(v), "latent": g.is_latent(v),
                              "parents": g.parents(v)} for v in g.nodes],
                   "edges": [list(e) for e in g.edges], "roles": by_role,
                   "png": str(png) if png else None})
        return
    typer.echo(f"{source}: {len(g.nodes)} nodes, {len(g.edges)} edges, "
               f"{len(g.latent)} latent")
    rows = [[role, ", ".join(v + (" (latent)" if g.is_latent(v) else "") for v in vs)]
            for role, vs in by_role.items()]
    typer.echo(format_table(["role", "nodes"], rows))
    typer.echo("edges: " + (", ".join(f"{u} -> {v}" for u, v in g.edges) or "(none)"))
    if png is not None:
        typer.echo(f"wrote {png}")


@graph_app.command("check")
def check(graph: str = GRAPH_ARG, json_out: bool = JSON_OPTION) -> None:
    """Validate a graph: print OK, or the error (exit code 2)."""
    try:
        g, source = resolve_graph(graph)
    except (CausalKitError, FileNotFoundError) as exc:
        msg = str(exc) if isinstance(exc, CausalKitError) else f"no such file: {graph}"
        if json_out:
            emit_json({"ok": False, "graph": graph, "error": msg})
        else:
            typer.echo(f"error: {msg}", err=True)
        raise typer.Exit(code=2) from None
    summary = {"ok": True, "graph": source, "nodes": len(g.nodes), "edges": len(g.edges),
               "latent": sorted(g.latent)}
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"OK: {source} is a DAG with {len(g.nodes)} nodes, {len(g.edges)} edges, "
                   f"{len(g.latent)} latent")


@graph_app.command("backdoor")
@user_errors
def backdoor(graph: str = GRAPH_ARG,
             x: str = typer.Option(..., "--x", help="Treatment node(s), comma-separated."),
             y: str = typer.Option(..., "--y", help="Outcome node(s), comma-separated."),
             exclude: str = typer.Option(None, "--exclude", help="Nodes never to adjust "
                                         "for, comma-separated."),
             json_out: bool = JSON_OPTION) -> None:
    """List every minimal backdoor adjustment set and the identifying formula."""
    g, source = resolve_graph(graph)
    xs, ys, ex = _split(x), _split(y), _split(exclude)
    sets = g.backdoor_sets(xs, ys, exclude=ex)
    result = g.identify(xs, ys, exclude=ex)
    ordered = [sorted(s, key=g.nodes.index) for s in sets]
    if json_out:
        emit_json({"graph": source, "minimal_sets": ordered, **result.to_dict()})
        return
    typer.echo(f"{source}: minimal backdoor sets for {', '.join(xs)} -> {', '.join(ys)}")
    if not ordered:
        typer.echo("  (none)")
    for s in ordered:
        typer.echo("  {" + ", ".join(s) + "}")
    typer.echo(str(result) if result.identifiable else f"not identifiable by adjustment: "
               f"{result.reason}")
    if result.method == "no-causal-path":
        typer.echo(f"note: {result.reason}")


@graph_app.command("dsep")
@user_errors
def dsep(graph: str = GRAPH_ARG,
         x: str = typer.Option(..., "--x", help="First node set, comma-separated."),
         y: str = typer.Option(..., "--y", help="Second node set, comma-separated."),
         given: str = typer.Option(None, "--given", help="Conditioning set, comma-separated."),
         json_out: bool = JSON_OPTION) -> None:
    """Test whether X and Y are d-separated given a set of nodes."""
    g, source = resolve_graph(graph)
    xs, ys, zs = _split(x), _split(y), _split(given)
    sep = g.d_separated(xs, ys, zs)
    if json_out:
        emit_json({"graph": source, "x": xs, "y": ys, "given": zs, "d_separated": sep})
        return
    cond = f" | {', '.join(zs)}" if zs else ""
    verdict = "d-separated" if sep else "d-connected"
    typer.echo(f"{', '.join(xs)} and {', '.join(ys)}{cond}: {verdict}")


# ------------------------------------------------------------------ drawing
def layered_positions(g) -> dict[str, tuple[float, float]]:
    """Top-down layout: one row per topological generation, rows centred, node order kept."""
    import networkx as nx

    pos: dict[str, tuple[float, float]] = {}
    for depth, layer in enumerate(nx.topological_generations(g.nx)):
        layer = sorted(layer, key=g.nodes.index)
        for j, v in enumerate(layer):
            pos[v] = (j - (len(layer) - 1) / 2, -float(depth))
    return pos


def role_colours(g) -> dict[str, str]:
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


def draw(g, path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``g`` to a PNG: roles coloured, latent nodes hollow and dashed, edges out of
    latent nodes dashed. Written atomically."""
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

