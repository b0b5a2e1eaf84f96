"""``causalkit bound``: intervals on P(y | do(x)) from data, built-in SCMs or generators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from causalkit.cli._common import (
    JSON_OPTION,
    OUT_OPTION,
    check_out,
    emit_json,
    format_table,
    user_errors,
    write_report,
)
from causalkit.errors import CausalKitError


def register(app: typer.Typer) -> None:
    app.command("bound")(bound)


@user_errors
def bound(
    data: Path = typer.Option(None, "--data", help="Observational CSV: samples, or counts "
                              "(a 'count' column) or probabilities (a 'p' column)."),
    treatment: str = typer.Option("X", "--treatment", help="Column / node of X."),
    outcome: str = typer.Option("Y", "--outcome", help="Column / node of Y."),
    x: str = typer.Option(None, "--x", help="Value of X (default: every value)."),
    y: str = typer.Option(None, "--y", help="Value of Y (default: every value)."),
    interventional: Path = typer.Option(None, "--interventional", help="CSV sampled with "
                                        "the nuisances set by intervention (do(Z))."),
    nuisance: str = typer.Option(None, "--nuisance", help="Comma-separated nuisance "
                                 "column(s) of --interventional."),
    scm: str = typer.Option(None, "--scm", help="A built-in discrete SCM (see "
                            "'causalkit bound --list-scms')."),
    strategy: list[str] = typer.Option(None, "--strategy", help="Nuisances to intervene on, "
                                       "comma-separated (repeatable), e.g. Z1 or Z1,Z2."),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.9999),
    list_scms: bool = typer.Option(False, "--list-scms", help="List built-in SCMs."),
    generator: str = typer.Option(None, "--generator", help="For latent strategies "
                                  "(--strategy t=1,k=8,s=1): the generator spec (tiny, "
                                  "small:DIR, biggan:DIR|NAME); --data then names held-out "
                                  "real images (e.g. colored-mnist:test or a folder)."),
    directions: Path = typer.Option(None, "--directions", help="Latent directions .npz "
                                    "(default: SVD shortcut of the first layer)."),
    sweep: str = typer.Option(None, "--sweep", help="t, k or s: plot log P(x|z) and the "
                              "bound width against it (one --strategy: default values)."),
    n_generated: int = typer.Option(2000, "--n-generated", min=10,
                                    help="Generated images per latent strategy (M)."),
    n_real: int = typer.Option(1000, "--n-real", min=1, help="Held-out real images."),
    feature: str = typer.Option("random-conv", "--feature", help="Kernel feature map: "
                                "random-conv or pixels."),
    mnist_source: str = typer.Option(None, "--mnist-source", help="MNIST source of named "
                                     "biased datasets (mnist:DIR, download, embedded)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of generation and subsampling."),
    json_out: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
) -> None:
    """Bound P(y | do(x)): natural bounds, bounds under do(z_i), and Theorem 1's ranking.

    Give either --data (optionally with --interventional/--nuisance) or --scm with
    --strategy; or latent strategies (--strategy t=1,k=8,s=1, repeatable) with
    --generator and --data (held-out real images), ranked by log P(x | do(z)).
    """
    from causalkit import library

    check_out(out)
    if list_scms:
        names = library.list_scms()
        emit_json(names) if json_out else typer.echo("\n".join(names))
        return
    strategies = list(strategy or [])
    from causalkit.interventions import LatentStrategy

    latent = [s for s in strategies if LatentStrategy.looks_like(s)]
    if latent:
        for s in latent:
            LatentStrategy.parse(s)  # a malformed value gets its own precise error
        if len(latent) != len(strategies) or scm is not None:
            raise CausalKitError("latent strategies (t=..,k=..,s=..) go with --generator "
                                 "and --data; node strategies (Z1) go with --scm")
        from analysis.strategy_bounds import bound_latent_strategies

        opts = {"source": mnist_source} if mnist_source else {}
        report = bound_latent_strategies(
            latent, generator=generator, data=None if data is None else str(data),
            directions=directions, sweep=sweep, n_generated=n_generated, n_real=n_real,
            feature=feature, data_options=opts, seed=seed, out=out,
            progress=not json_out)
        write_report(out, "bound.json", report)
        emit_json(report) if json_out else typer.echo(_latent_text(report))
        return
    if generator is not None or sweep is not None:
        raise CausalKitError("--generator and --sweep go with latent strategies, e.g. "
                             "--strategy t=1,k=8,s=1")
    if nuisance and interventional is None:
        raise CausalKitError("--nuisance needs --interventional FILE with data gathered "
                             "under do(Z): P(y,x|do(z)) cannot be computed from "
                             "observational data when a latent confounds Z and Y")
    if (data is None) == (scm is None):
        raise CausalKitError("give exactly one of --data FILE or --scm NAME "
                             "(see 'causalkit bound --help')")
    if scm is not None:
        report = _bound_scm(scm, strategies, treatment, outcome, x, y)
    else:
        if strategies:
            raise CausalKitError("--strategy goes with --scm; with --data use "
                                 "--interventional FILE --nuisance Z")
        report = _bound_data(data, treatment, outcome, x, y, interventional, nuisance,
                             confidence)
    text = report.pop("_text")
    write_report(out, "bound.json", report)
    emit_json(report) if json_out else typer.echo(text)


def _bound_scm(name: str, strategies: list[str], treatment: str, outcome: str,
               x: str | None, y: str | None) -> dict[str, Any]:
    from causalkit import library
    from causalkit.bounds import scm_bounds

    model = library.get_scm(name)
    for node in (treatment, outcome):
        if node not in model.cardinality:
            raise CausalKitError(f"node {node!r} is not in SCM {name!r}; its nodes are "
                                 f"{model.nodes}")
    xv, yv = int(x if x is not None else 1), int(y if y is not None else 1)
    strat_lists = [[s.strip() for s in st.split(",") if s.strip()] for st in strategies]
    result = scm_bounds(model, {treatment: xv}, {outcome: yv}, strat_lists)
    natural, combined = result.natural, result.intersection
    rows = [["natural", f"{result.p_x:.4f}", str(natural), f"{natural.width:.4f}"]]
    rows += [[",".join(r.strategy), f"{r.p_x_do:.4f}", str(r.interval),
              f"{r.interval.width:.4f}"] for r in result.strategies]
    rows.append(["intersection", "", str(combined), f"{combined.width:.4f}"])
    query = f"P({outcome}={yv} | do({treatment}={xv}))"
    text = [f"SCM {name!r}: {query}, true value {result.truth:.4f} (exact enumeration)", "",
            format_table(["strategy", "P(x|do(z))", "interval", "width"], rows)]
    if result.ranking:
        text += ["", "Theorem 1 ranking (larger P(x|do(z)) -> tighter bound): "
                 + " > ".join(name for name, _, _ in result.ranking)]
    return {"scm": name, "query": query, **result.to_dict(), "_text": "\n".join(text)}


def _bound_data(data: Path, treatment: str, outcome: str, x: str | None, y: str | None,
                interventional: Path | None, nuisance: str | None,
                confidence: float) -> dict[str, Any]:
    from causalkit.bounds import table_bounds
    from causalkit.tables import read_table

    obs = read_table(data)
    obs.require(treatment, outcome)
    inter = None
    nuisances: list[str] = []
    if interventional is not None:
        if not nuisance:
            raise CausalKitError("--interventional needs --nuisance naming the intervened "
                                 "column(s), e.g. --nuisance Z1")
        nuisances = [n.strip() for n in nuisance.split(",") if n.strip()]
        inter = read_table(interventional)
        inter.require(treatment, outcome, *nuisances)
    cells = table_bounds(obs, treatment, outcome, x=x, y=y, interventional=inter,
                         nuisances=nuisances, confidence=confidence)
    rows = []
    for cell in cells:
        xv, yv = cell.x, cell.y
        rows.append([xv, yv, "natural", str(cell.natural.interval), _ci(cell.natural)])
        rows += [[xv, yv, name, str(e.interval), _ci(e)] for name, e in cell.interventional]
        if cell.intersection is not None:
            ci = cell.intersection_ci
            rows.append([xv, yv, "intersection", str(cell.intersection),
                         f"{ci} (>= {cell.intersection_confidence:.0%})" if ci else ""])
    header = f"Bounds on P({outcome}=y | do({treatment}=x)) from {data}"
    table = format_table(["x", "y", "source", "interval", f"{confidence:.0%} CI"], rows)
    return {"data": str(data), "treatment": treatment, "outcome": outcome,
            "confidence": confidence, "results": [c.to_dict() for c in cells],
            "_text": header + "\n\n" + table}


def _latent_text(report: dict[str, Any]) -> str:
    """The table of :func:`analysis.strategy_bounds.bound_latent_strategies`' report."""
    rows = [[s["strategy"], f"{s['log_likelihood']:.1f}",
             f"{s['mean_log_likelihood']:.4f} ± {s['se_mean_log_likelihood']:.4f}",
             f"{s['p_x_do_geometric_mean']:.4f}",
             f"[{s['mean_lower']:.4f}, {s['mean_upper']:.4f}]", f"{s['mean_width']:.4f}"]
            for s in report["strategies"]]
    inter = report["intersection"]
    if inter["mean_width"] is not None:
        rows.append(["intersection", "", "", "",
                     f"[{inter['mean_lower']:.4f}, {inter['mean_upper']:.4f}]",
                     f"{inter['mean_width']:.4f}"])
    text = [f"Generator {report['generator']}; {report['n_real']} held-out real images from "
            f"{report['data']}; M = {report['n_generated']} generated images per strategy; "
            f"kernel bandwidth h = {report['bandwidth']:.4g} ({report['feature']} features, "
            "median heuristic)", "",
            format_table(["strategy", "log P(x|z)", "per image ± se", "P(x|do(z))",
                          "mean interval on P(y|do(x))", "mean width"], rows), "",
            "Theorem 1 ranking (larger P(x|do(z)) -> tighter bound): "
            + " > ".join(r["strategy"] for r in report["ranking"])]
    if "plot" in report:
        text.append(f"wrote {report['plot']}")
    return "\n".join(text)


def _ci(est: Any) -> str:
    return str(est.confidence_interval) if est.confidence_interval is not None else "n/a"
