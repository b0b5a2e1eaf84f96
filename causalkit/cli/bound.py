"""``causalkit bound``: intervals on P(y | do(x)) from data, built-in SCMs or generators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from causalkit.cli._common import (
    JSON_OPTION,
    OUT_OPTION,
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
        from causalkit.cli._strategy_bound import bound_latent_strategies

        opts = {"source": mnist_source} if mnist_source else {}
        report = bound_latent_strategies(
            latent, generator=generator, data=None if data is None else str(data),
            directions=directions, sweep=sweep, n_generated=n_generated, n_real=n_real,
            feature=feature, data_options=opts, seed=seed, out=out,
            progress=not json_out)
        text = report.pop("_text")
        write_report(out, "bound.json", report)
        emit_json(report) if json_out else typer.echo(text)
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
    from causalkit.bounds import exact_strategy_bounds, intersect, natural_bounds, rank_strategies

    model = library.get_scm(name)
    for node in (treatment, outcome):
        if node not in model.cardinality:
            raise CausalKitError(f"node {node!r} is not in SCM {name!r}; its nodes are "
                                 f"{model.nodes}")
    xv, yv = int(x if x is not None else 1), int(y if y is not None else 1)
    t, o = {treatment: xv}, {outcome: yv}
    truth = model.prob(o, do=t)
    natural = natural_bounds(model.prob({**t, **o}), model.prob(t))
    strat_lists = [[s.strip() for s in st.split(",") if s.strip()] for st in strategies]
    results = exact_strategy_bounds(model, t, o, strat_lists)
    combined = intersect([natural] + [r.interval for r in results])
    ranking = rank_strategies({",".join(r.strategy): r.p_x_do for r in results})
    rows = [["natural", f"{model.prob(t):.4f}", str(natural), f"{natural.width:.4f}"]]
    rows += [[",".join(r.strategy), f"{r.p_x_do:.4f}", str(r.interval),
              f"{r.interval.width:.4f}"] for r in results]
    rows.append(["intersection", "", str(combined), f"{combined.width:.4f}"])
    query = f"P({outcome}={yv} | do({treatment}={xv}))"
    text = [f"SCM {name!r}: {query}, true value {truth:.4f} (exact enumeration)", "",
            format_table(["strategy", "P(x|do(z))", "interval", "width"], rows)]
    if ranking:
        text += ["", "Theorem 1 ranking (larger P(x|do(z)) -> tighter bound): "
                 + " > ".join(name for name, _, _ in ranking)]
    return {"scm": name, "query": query, "truth": truth, "natural": natural.to_dict(),
            "strategies": [r.to_dict() for r in results],
            "intersection": combined.to_dict(),
            "ranking": [{"strategy": n, "p_x_do": p, "width": w} for n, p, w in ranking],
            "_text": "\n".join(text)}


def _bound_data(data: Path, treatment: str, outcome: str, x: str | None, y: str | None,
                interventional: Path | None, nuisance: str | None,
                confidence: float) -> dict[str, Any]:
    import numpy as np

    from causalkit.bounds import estimate_bounds, intersect
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
    xs = [x] if x is not None else sorted(set(obs.columns[treatment]))
    ys = [y] if y is not None else sorted(set(obs.columns[outcome]))
    for label, col, vals in ((treatment, treatment, xs), (outcome, outcome, ys)):
        present = set(obs.columns[col])
        absent = [v for v in vals if v not in present]
        if absent:
            raise CausalKitError(f"value(s) {absent} of {label} do not occur in {data}; it "
                                 f"has {sorted(present)}")

    def est(table: Any, xv: str, yv: str) -> Any:
        return estimate_bounds(table.columns, treatment, outcome, xv, yv,
                               weights=table.weights, counts=table.counts,
                               confidence=confidence)

    rows, results = [], []
    for xv in xs:
        for yv in ys:
            nat = est(obs, xv, yv)
            entry: dict[str, Any] = {"x": xv, "y": yv, "natural": nat.to_dict(),
                                     "interventional": []}
            rows.append([xv, yv, "natural", str(nat.interval), _ci(nat)])
            intervals = [nat.interval]
            cis = [nat.confidence_interval]
            if inter is not None:
                keys = np.array(["|".join(r) for r in zip(
                    *(inter.columns[n].astype(str) for n in nuisances), strict=True)])
                groups = [("do(" + ",".join(nuisances) + " ~ data)", np.ones(len(keys), bool))]
                groups += [(f"do({','.join(nuisances)}={k.replace('|', ',')})", keys == k)
                           for k in sorted(set(keys))]
                for gname, mask in groups:
                    sub = inter.subset(mask)
                    if not np.any(sub.columns[treatment].astype(str) == str(xv)):
                        continue
                    e = est(sub, xv, yv)
                    intervals.append(e.interval)
                    cis.append(e.confidence_interval)
                    entry["interventional"].append({"strategy": gname, **e.to_dict()})
                    rows.append([xv, yv, gname, str(e.interval), _ci(e)])
                combined = intersect(intervals)
                entry["intersection"] = combined.to_dict()
                # Intersecting k intervals each covering with 1 - a covers with >= 1 - k a.
                ci = intersect(cis) if all(cis) else None
                entry["intersection"]["ci"] = ci.to_dict() if ci else None
                rows.append([xv, yv, "intersection", str(combined),
                             f"{ci} (>= {1 - len(cis) * (1 - confidence):.0%})" if ci else ""])
            results.append(entry)
    header = f"Bounds on P({outcome}=y | do({treatment}=x)) from {data}"
    table = format_table(["x", "y", "source", "interval", f"{confidence:.0%} CI"], rows)
    return {"data": str(data), "treatment": treatment, "outcome": outcome,
            "confidence": confidence, "results": results, "_text": header + "\n\n" + table}


def _ci(est: Any) -> str:
    return str(est.confidence_interval) if est.confidence_interval is not None else "n/a"
