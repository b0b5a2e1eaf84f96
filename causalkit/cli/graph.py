"""``causalkit graph``: inspect, validate and query causal graphs.

GRAPH is a file (``.json`` or ``.dagitty``) or the name of a built-in graph
(``causalkit graph list``)::

    causalkit graph show genint --png genint.png
    causalkit graph check my_graph.dagitty
    causalkit graph backdoor genint --x Y --y X
    causalkit graph identify frontdoor --x X --y Y --latex
    causalkit graph dsep genint --x Z --y Y --given C
"""

from __future__ import annotations

from pathlib import Path

import typer

from causalkit.cli._common import JSON_OPTION, emit_json, format_table, user_errors
from causalkit.errors import CausalKitError, GraphError

graph_app = typer.Typer(
    help="Causal graphs: show, check, backdoor sets, identification and d-separation. "
    "GRAPH is a .json or .dagitty file or a built-in name (see 'causalkit graph list').",
    no_args_is_help=True,
)

GRAPH_ARG = typer.Argument(..., metavar="GRAPH", help="A .json/.dagitty file or a built-in "
                           "graph name.")

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
        from causalkit.drawing import draw

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
    if result.method not in ("backdoor", "no-causal-path"):
        result = g.identify(xs, ys, exclude=ex, backdoor_only=True)
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
    if not result.identifiable:
        typer.echo("other methods (front door, ID algorithm): causalkit graph identify "
                   f"{graph} --x {x} --y {y}" + (f" --exclude {exclude}" if exclude else ""))


@graph_app.command("identify")
@user_errors
def identify(graph: str = GRAPH_ARG,
             x: str = typer.Option(..., "--x", help="Treatment node(s), comma-separated."),
             y: str = typer.Option(..., "--y", help="Outcome node(s), comma-separated."),
             exclude: str = typer.Option(None, "--exclude", help="Nodes the formula may not "
                                         "use (treated as unmeasured), comma-separated."),
             latex: bool = typer.Option(False, "--latex", help="Print the formula as LaTeX."),
             json_out: bool = JSON_OPTION) -> None:
    """Identify P(y | do(x)): backdoor, front door or the ID algorithm; else the hedge and
    the bounds that still apply."""
    g, source = resolve_graph(graph)
    xs, ys, ex = _split(x), _split(y), _split(exclude)
    result = g.identify(xs, ys, exclude=ex)
    if json_out:
        emit_json({"graph": source, **result.to_dict()})
        return
    if result.identifiable:
        typer.echo(f"{source}: identifiable ({result.method})")
        typer.echo(result.latex() if latex else result.formula)
        if result.method == "no-causal-path":
            typer.echo(f"note: {result.reason}")
        return
    typer.echo(f"{source}: {result.query()} is not identifiable")
    typer.echo(f"why: {result.reason}")
    typer.echo("bounds that still apply:")
    for line in result.bounds:
        typer.echo(f"  {line}")


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
