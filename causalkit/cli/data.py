"""``causalkit data``: build and look at the biased MNIST datasets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from causalkit.cli._common import (
    JSON_OPTION,
    OUT_OPTION,
    check_out,
    emit_json,
    format_table,
    status,
    user_errors,
    write_report,
)

VARIANT_ARG = typer.Argument(..., help="colored-mnist, double-colored-mnist or wildlife-mnist.")
RHO_OPTION = typer.Option(1.0, "--rho", help="P(nuisance class = label) in train/test; 1.0 "
                          "is fully biased, 0.1 independent.")
SIGMA_OPTION = typer.Option(None, "--sigma", help="Colour jitter standard deviation "
                            "(default: colored sqrt(0.020)=0.1414, double-colored 0.01).")
SEED_OPTION = typer.Option(0, "--seed", help="Freezes every split.")
SOURCE_OPTION = typer.Option(None, "--source", help="MNIST source: mnist:DIR, download or "
                             "embedded (default: $CAUSALKIT_MNIST, the cache, else embedded).")
RENDERING_OPTION = typer.Option("pad", "--rendering", help="'pad' (digits zero-padded, "
                                 "grey levels kept) or 'paper' (the official CGN code's "
                                 "images: upscaled, binarised digits).")
TEXTURES_OPTION = typer.Option(None, "--textures", help="Wildlife: folder with object/ and "
                               "background/ (default $CAUSALKIT_TEXTURES, else procedural).")


def _quiet_source(source: str | None) -> Any:
    """Resolve the source once, turning the embedded warning into a printed line."""
    import warnings

    from causalkit.datasets import resolve_source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = resolve_source(source)
    status(src.note)
    return src


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the main app."""
    data_app = typer.Typer(help="Biased MNIST datasets (colored, double-colored, Wildlife) "
                           "built from their SCMs.", no_args_is_help=True)

    @data_app.command("build")
    @user_errors
    def build(variant: str = VARIANT_ARG, rho: float = RHO_OPTION,
              sigma: float | None = SIGMA_OPTION, seed: int = SEED_OPTION,
              source: str | None = SOURCE_OPTION, textures: Path | None = TEXTURES_OPTION,
              rendering: str = RENDERING_OPTION,
              split: list[str] = typer.Option(["train", "test", "ood"], "--split",
                                              help="Split(s) to build (repeatable)."),
              n: int | None = typer.Option(None, "--n", help="Samples per split "
                                           "(default: the whole pool)."),
              out: Path | None = OUT_OPTION,
              no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild; do not "
                                            "read or write the cache."),
              json: bool = JSON_OPTION) -> None:
        """Build the splits of VARIANT into the cache (and copies under --out)."""
        from causalkit.datasets import build_split, get_variant

        check_out(out)
        get_variant(variant)
        src = _quiet_source(source)
        rows, records = [], []
        for name in split:
            start = time.perf_counter()
            s = build_split(variant, name, rho=rho, sigma=sigma, seed=seed, source=src,
                            textures=textures, n=n, cache=not no_cache, rendering=rendering)
            seconds = time.perf_counter() - start
            path = s.meta.get("cache_path")
            if out is not None:
                path = str(s.save(Path(out) / f"{variant}-{name}.npz"))
            record = {"split": name, "n": len(s), "aligned": float(s.nuisances["aligned"].mean()),
                      "seconds": round(seconds, 3), "cached": bool(s.meta.get("cached")),
                      "path": path}
            records.append(record)
            rows.append([name, len(s), record["aligned"], record["seconds"],
                         "yes" if record["cached"] else "no", path or "-"])
        report = {"variant": variant, "rho": rho, "sigma": s.meta["sigma"], "seed": seed,
                  "rendering": rendering, "source": src.name, "source_note": src.note,
                  "textures": s.meta.get("textures_name"), "splits": records}
        write_report(out, "data_build.json", report)
        if json:
            emit_json(report)
        else:
            typer.echo(format_table(["split", "n", "aligned", "seconds", "cached", "file"],
                                    rows))

    @data_app.command("show")
    @user_errors
    def show(variant: str = VARIANT_ARG, rho: float = RHO_OPTION,
             sigma: float | None = SIGMA_OPTION, seed: int = SEED_OPTION,
             source: str | None = SOURCE_OPTION, textures: Path | None = TEXTURES_OPTION,
             rendering: str = RENDERING_OPTION,
             per_class: int = typer.Option(8, "--per-class", min=1, max=32,
                                           help="Samples per class and split."),
             out: Path | None = OUT_OPTION, json: bool = JSON_OPTION) -> None:
        """Save a PNG grid of train and OOD test samples per class, and the variant's causal
        graph, under --out (default .): VARIANT.png and VARIANT_graph.png."""
        from causalkit.datasets import build_split, get_variant
        from causalkit.datasets.figures import save_graph_figure, save_split_grid

        check_out(out)
        spec = get_variant(variant)
        src = _quiet_source(source)
        kw = dict(rho=rho, sigma=sigma, seed=seed, source=src, textures=textures,
                  rendering=rendering)
        train = build_split(variant, "train", **kw)
        ood = build_split(variant, "ood", **kw)
        path = save_split_grid(train, ood, Path(out or ".") / f"{variant}.png",
                               per_class=per_class, title=variant)
        graph_png = save_graph_figure(spec.graph(), Path(out or ".") / f"{variant}_graph.png",
                                      title=f"{variant}: train SCM (OOD cuts label -> "
                                      f"{', '.join(spec.class_nodes)})",
                                      positions=dict(spec.positions))
        report = {"variant": variant, "png": str(path), "graph_png": str(graph_png),
                  "source": src.name, "rho": rho, "seed": seed, "rendering": rendering}
        write_report(out, f"data_show_{variant}.json", report)
        if json:
            emit_json(report)
        else:
            typer.echo(f"wrote {path} and {graph_png}")

    app.add_typer(data_app, name="data")
