"""``causalkit probe-correlation``: is my dataset confounded? (GenInt Figure 3)."""

from __future__ import annotations

from pathlib import Path

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
    app.command("probe-correlation")(probe_correlation)


def parse_categories(text: str) -> list[int]:
    """``"2,5,10"`` -> ``[2, 5, 10]`` with a clear error."""
    try:
        cats = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise CausalKitError(f"--categories must be comma-separated integers such as "
                             f"2,5,10, got {text!r}") from None
    if not cats or any(c < 2 for c in cats):
        raise CausalKitError(f"--categories needs integers >= 2, got {text!r}")
    return sorted(set(cats))


@user_errors
def probe_correlation(
    data: list[str] = typer.Option(..., "--data", help="Dataset under test (repeatable): "
                                   "colored-mnist[:train|test|ood], double-colored-mnist, "
                                   "wildlife-mnist, cgn:colored|double-colored|wildlife, "
                                   "gan:<generator>@<strategy> (GAN samples), or an image "
                                   "folder (ImageFolder or labels.csv)."),
    generator: str = typer.Option(..., "--generator", help="Source of images with known "
                                  "nuisance manipulation: scm:<variant> (the variant's SCM "
                                  "under do(colour/texture := uniform)), or a generator spec "
                                  "(tiny, small:DIR, biggan:DIR|NAME)."),
    strategy: str = typer.Option(None, "--strategy", help="Latent strategy for a generator, "
                                 "e.g. t=1,k=8,s=1 (ignored by scm:)."),
    directions: Path = typer.Option(None, "--directions", help="Directions .npz (default: "
                                    "the SVD shortcut of the generator's first layer)."),
    categories: str = typer.Option("2,5,10", "--categories", help="Numbers of classes N."),
    subsets: int = typer.Option(10, "--subsets", min=1, help="Random class subsets per N."),
    n_train: int = typer.Option(8000, "--n-train", min=64, help="Generated training images."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="Regressor training epochs."),
    max_samples: int = typer.Option(20000, "--max-samples", min=10,
                                    help="Subsample each dataset to at most this many."),
    source: str = typer.Option(None, "--mnist-source", help="MNIST source for the biased "
                               "variants: mnist:DIR, download or embedded (default: "
                               "$CAUSALKIT_MNIST, the cache, else embedded)."),
    rho: float = typer.Option(1.0, "--rho", help="Bias strength of the variants' train/test."),
    regressor: Path = typer.Option(None, "--regressor", help="Regressor file: loaded when "
                                   "it exists, else trained and saved there (reuse it for "
                                   "more datasets without retraining)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seeds generation, training, subsets."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0: default)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    json_out: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
) -> None:
    """Train a nuisance regressor on intervened images, then measure how well the
    predicted nuisances of each dataset predict its labels (accuracy ÷ chance).

    About 1: the nuisances carry no label information. Far above 1: confounded.
    """
    import warnings

    import torch

    from analysis.probes import probe_correlation as run_probe

    warnings.filterwarnings("once")  # e.g. the embedded-MNIST notice, once per run

    check_out(out)
    if regressor is not None:
        if regressor.is_dir():
            raise CausalKitError(f"--regressor {regressor} is a folder; pass a file path "
                                 "such as runs/regressor.pt")
        if not regressor.exists():  # it will be trained and saved there
            check_out(regressor.parent, option="--regressor")
    cats = parse_categories(categories)
    if threads:
        torch.set_num_threads(threads)
    options = {"rho": rho}
    if source is not None:
        options["source"] = source
    log = (lambda s: typer.echo(s, err=True)) if not json_out else None
    report = run_probe(generator, data, categories=cats, n_subsets=subsets,
                       strategy=strategy, directions=directions, n_train=n_train,
                       epochs=epochs, max_samples=max_samples, dataset_options=options,
                       regressor=regressor, seed=seed, progress=progress, log=log)
    payload = report.to_dict()
    if out is not None:
        from analysis.plots import plot_probe

        payload["plot"] = str(plot_probe(report, Path(out) / "probe.png"))
        write_report(out, "probe.json", payload)
    if json_out:
        emit_json(payload)
        return
    headers = ["dataset", "n"] + [f"N={n}" for n in cats] + \
        [f"true N={n}" for n in cats]
    rows = []
    for d in report.datasets:
        row = [d.name, str(d.n)] + [f"{d.ratios[n].mean:.2f} ± {d.ratios[n].std:.2f}"
                                    for n in cats]
        row += [f"{d.true_ratios[n].mean:.2f}" if d.true_ratios else "-" for n in cats]
        rows.append(row)
    typer.echo(f"nuisance regressor: {report.source}, R² on held-out generated images "
               f"{report.regressor.r2:.3f}")
    typer.echo("accuracy ÷ chance of predicting the label from predicted nuisances "
               f"(mean ± std over {subsets} class subsets; 1 = no confounding)\n")
    typer.echo(format_table(headers, rows))
    if report.warning:
        typer.echo(f"\nwarning: {report.warning}")
    if out is not None:
        typer.echo(f"\nwrote {Path(out) / 'probe.json'} and {payload['plot']}")
