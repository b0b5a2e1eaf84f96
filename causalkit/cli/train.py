"""``causalkit train``: robust training with interventions (``evaluate`` lives in evaluate.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from causalkit.cli._common import (
    JSON_OPTION,
    check_device,
    check_out,
    emit_json,
    format_table,
    user_errors,
    write_report,
)

METHODS_HELP = ("erm | genint | genint-transfer | gan-aug | mixup | irm | cgn | gen-only-int | "
                "gen-only-obs (robust_training.methods)")


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train)


def _split(data: str, split: str, rho: float, seed: int, source: str | None,
           n: int | None):
    from causalkit.datasets import build_split

    return build_split(data, split, rho=rho, seed=seed, source=source, n=n, cache=False)


@user_errors
def train(
    method: str = typer.Option(..., "--method", "-m", help=METHODS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (rerun to resume)."),
    data: str = typer.Option("double-colored-mnist", "--data",
                             help="Dataset variant for the real stream."),
    rho: float = typer.Option(0.9, "--rho", help="Nuisance-label tie of the real data."),
    source: str = typer.Option(None, "--source", help="MNIST source (e.g. mnist:DIR)."),
    n_train: int = typer.Option(None, "--n-train", help="Real training images (default all)."),
    generator: str = typer.Option(None, "--generator", "-g",
                                  help="Generator for the int/obs stream, e.g. small:DIR."),
    strategy: str = typer.Option("t=1,k=8,s=1", "--strategy",
                                 help="Interventional strategy (genint*, irm)."),
    layer: str = typer.Option(None, "--layer",
                              help="GANSpace directions of this layer, or of several joined "
                                   "by '+' (default: the first layer's shortcut)."),
    obs_strategy: str = typer.Option("observational:t=0.2", "--obs-strategy",
                                     help="Observational sampling (gan-aug)."),
    gen_per_class: int = typer.Option(1000, "--gen-per-class",
                                      help="Generated images per class in the pool."),
    int_data: Path = typer.Option(None, "--int-data",
                                  help="Generated folder (causalkit generate) instead of "
                                       "--generator."),
    cf_data: Path = typer.Option(None, "--cf-data",
                                 help="CGN counterfactual set (.npz) for --method cgn."),
    transfer_n: int = typer.Option(5000, "--transfer-n", help="Transferred images."),
    transfer_steps: int = typer.Option(20, "--transfer-steps", help="Adam steps per transfer."),
    features: str = typer.Option("random", "--features",
                                 help="Transfer feature net: random[:SEED] | resnet18:PATH."),
    batch_size: int = typer.Option(64, "--batch-size", help="Real images per step."),
    gen_batch_size: int = typer.Option(64, "--gen-batch-size",
                                       help="Generated (int/obs/cf) images per step."),
    transfer_batch_size: int = typer.Option(32, "--transfer-batch-size",
                                            help="Transferred images per step."),
    lambda1: float = typer.Option(1.0, "--lambda1", help="Weight of CE(int) / CE(obs)."),
    lambda2: float = typer.Option(1.0, "--lambda2", help="Weight of CE(transfer)."),
    steps: int = typer.Option(1000, "--steps", help="Optimisation steps."),
    log_every: int = typer.Option(50, "--log-every", help="Steps between log.jsonl lines."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every",
                                         help="Steps between checkpoints (a killed run "
                                              "resumes from the last one)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    model: str = typer.Option("cnn", "--model",
                              help="cnn | cnn-bn | cnn-cn | resnet18 | resnet34 | resnet50."),
    width: int = typer.Option(64, "--width", help="ResNet first-stage width."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 (bfloat16 "
                                  "autocast; about twice as fast on CPUs with AMX)."),
    seed: int = typer.Option(0, "--seed", help="Run seed (model, batches, generation)."),
    device: str = typer.Option(None, "--device", help="cpu | cuda (default: cuda if any)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Train a classifier with an objective over real + generated streams; report
    in-distribution and OOD accuracy. Under torchrun, runs DDP (gloo/nccl)."""
    import torch

    from robust_training.engine import FitConfig, dist_info, evaluate, fit
    from robust_training.methods import get_method, method_streams
    from robust_training.sources import method_data
    from robust_training.streams import MultiStream

    check_out(out)
    check_device(device)
    spec = get_method(method)
    hparams = spec.hparams_from({"lambda1": lambda1, "lambda2": lambda2})
    cfg = FitConfig(objective=spec.objective, steps=steps, lr=lr, seed=seed, model=model,
                    width=width, hparams=hparams, precision=precision, log_every=log_every,
                    checkpoint_every=checkpoint_every)  # bad settings fail before the data
    tr = _split(data, "train", rho, seed, source, n_train)
    pools = method_data(method, tr.images, tr.labels, generator=generator, strategy=strategy,
                        obs_strategy=obs_strategy, layer=layer, per_class=gen_per_class,
                        int_data=int_data, cf_data=cf_data, transfer_n=transfer_n,
                        transfer_steps=transfer_steps, features=features, seed=seed,
                        device=device, progress=not json_out)
    streams = method_streams(spec, {"real": (tr.images, tr.labels), **pools},
                             batch_size=batch_size, gen_batch_size=gen_batch_size,
                             transfer_batch_size=transfer_batch_size)
    net, info = fit(MultiStream(streams, seed=seed), cfg, out,
                    device=device, progress=not json_out)
    if dist_info()[0] != 0:
        return
    result = {"method": method, "objective": cfg.objective, "steps": info["steps"],
              "streams": {s.kind: {"n": len(s), "batch_size": s.batch_size} for s in streams},
              "model_dir": str(out)}
    with torch.no_grad():
        for split in ("test", "ood"):
            sp = _split(data, split, rho, seed, source, None)
            result[f"{split}_accuracy"] = evaluate(net, sp.images, sp.labels)["accuracy"]
    write_report(out, "train_report.json", result)
    if json_out:
        emit_json(result)
    else:
        typer.echo(format_table(["method", "steps", "test acc", "OOD acc"],
                                [[method, info["steps"], f"{result['test_accuracy']:.4f}",
                                  f"{result['ood_accuracy']:.4f}"]]))
