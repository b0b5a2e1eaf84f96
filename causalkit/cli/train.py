"""``causalkit train``: robust training with interventions (``evaluate`` lives in evaluate.py).

Two kinds of real data feed the same engine (:func:`robust_training.engine.fit`):

* an MNIST variant (``--data double-colored-mnist``, ...), held in memory, with its
  generated streams made by :func:`robust_training.sources.method_data`, scored on the
  variant's test and OOD splits;
* images on disk, ``--data imagefolder:DIR`` (ImageNet's train layout,
  ``DIR/<class>/<image>``) or ``--data webdataset:PATTERN`` (tar shards), decoded in
  ``--num-workers`` DataLoader workers with the ImageNet training augmentation at
  ``--size`` (:func:`robust_training.imagenet_data.real_source`); generated streams come
  from folders (``--int-data``, ``--transfer-data``, ``--cf-data``), a ResNet gets
  torchvision's stem and may fine-tune from a torchvision checkpoint (``--pretrained``),
  and ``--val imagefolder:DIR`` reports the top-1 accuracy.
"""

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
from causalkit.errors import CausalKitError

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
                             help="Real stream: an MNIST variant, or imagefolder:DIR | "
                                  "webdataset:PATTERN (images on disk)."),
    val: str = typer.Option(None, "--val", help="imagefolder:DIR of validation images "
                            "(same class folders) for the top-1 accuracy (disk data)."),
    val_each_epoch: bool = typer.Option(False, "--val-each-epoch",
                                        help="Also score --val after every epoch (log.jsonl "
                                             "records {epoch, val_top1})."),
    size: int = typer.Option(224, "--size", help="Training crop side (disk data)."),
    num_workers: int = typer.Option(0, "--num-workers",
                                    help="DataLoader workers decoding images (disk data)."),
    epochs: float = typer.Option(None, "--epochs", help="Passes over the real data; "
                                 "overrides --steps."),
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
    transfer_data: Path = typer.Option(None, "--transfer-data",
                                       help="Transferred-image folder (labels.csv) for "
                                            "genint-transfer on disk data."),
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
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate."),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam | adadelta | sgd."),
    momentum: float = typer.Option(0.9, "--momentum", help="SGD momentum."),
    nesterov: bool = typer.Option(False, "--nesterov", help="Nesterov momentum (SGD)."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="Weight decay."),
    schedule: str = typer.Option("constant", "--schedule",
                                 help="constant | cosine | step | multistep."),
    milestones: str = typer.Option(None, "--milestones",
                                   help="multistep decays, comma-separated: fractions of "
                                        "the run (0.33,0.67) or epochs (30,60)."),
    milestone_unit: str = typer.Option("fraction", "--milestone-unit",
                                       help="fraction | epoch (what --milestones count)."),
    gamma: float = typer.Option(0.1, "--gamma", help="Factor per milestone."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="Linear lr warm-up steps."),
    model: str = typer.Option(None, "--model",
                              help="cnn | cnn-bn | cnn-cn | resnet18 | resnet34 | resnet50 | "
                                   "resnet101 | resnet152 (default: cnn; resnet50 on disk "
                                   "data)."),
    pretrained: Path = typer.Option(None, "--pretrained",
                                    help="torchvision-format ResNet checkpoint to fine-tune "
                                         "from (strict keys)."),
    pretrained_fc: str = typer.Option("keep", "--pretrained-fc",
                                      help="keep (the checkpoint's fc; class counts must "
                                           "match) | new (new heads)."),
    width: int = typer.Option(64, "--width", help="ResNet first-stage width."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 (bfloat16 "
                                  "autocast; about twice as fast on CPUs with AMX)."),
    seed: int = typer.Option(0, "--seed", help="Run seed (model, batches, generation)."),
    device: str = typer.Option(None, "--device", help="cpu | cuda (default: cuda if any)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Train a classifier with an objective over real + generated streams; report
    in-distribution and OOD accuracy. Under torchrun, runs DDP (gloo/nccl)."""
    import dataclasses

    import torch

    from robust_training.engine import FitConfig, dist_info, evaluate, fit
    from robust_training.folder_training import spec_prefix, train_on_folders
    from robust_training.methods import get_method, method_streams
    from robust_training.sources import method_data
    from robust_training.streams import MultiStream

    check_out(out)
    check_device(device)
    prefix = spec_prefix(data)
    spec = get_method(method)
    hparams = spec.hparams_from({"lambda1": lambda1, "lambda2": lambda2})
    on_disk = prefix is not None
    cfg = FitConfig(objective=spec.objective, steps=steps, lr=lr, seed=seed,
                    model=model or ("resnet50" if on_disk else "cnn"), width=width,
                    hparams=hparams, precision=precision, log_every=log_every,
                    checkpoint_every=checkpoint_every, optimizer=optimizer, momentum=momentum,
                    nesterov=nesterov, weight_decay=weight_decay, schedule=schedule,
                    milestones=_numbers(milestones, "--milestones"),
                    milestone_unit=milestone_unit, gamma=gamma, warmup_steps=warmup_steps,
                    pretrained=str(pretrained) if pretrained is not None else None,
                    pretrained_fc=pretrained_fc)  # bad settings fail before the data
    if on_disk:
        result = train_on_folders(
            data, cfg, spec.streams, out, pooled=spec.pooled_batch, val=val,
            val_each_epoch=val_each_epoch, size=size, num_workers=num_workers,
            epochs=epochs, int_data=int_data, transfer_data=transfer_data, cf_data=cf_data,
            batch_size=batch_size, gen_batch_size=gen_batch_size,
            transfer_batch_size=transfer_batch_size, device=device, progress=not json_out)
        if result is None:  # a DDP rank other than 0
            return
        result = {"method": method, **result}
        write_report(out, "train_report.json", result)
        if json_out:
            emit_json(result)
        else:
            top1 = f"{result['val_top1']:.4f}" if "val_top1" in result else "-"
            typer.echo(format_table(["method", "steps", "classes", "val top-1"],
                                    [[method, result["steps"], result["n_classes"], top1]]))
        return
    if epochs is not None and not epochs > 0:
        raise CausalKitError(f"--epochs must be positive, got {epochs}")
    if val is not None or val_each_epoch:
        raise CausalKitError("--val scores disk data (--data imagefolder:DIR); an MNIST "
                             "variant reports its own test and OOD splits")
    if cfg.pretrained is not None and cfg.stem == "small":
        raise CausalKitError("--pretrained needs ImageNet-sized data (--data imagefolder:DIR"
                             "); the MNIST models take 32x32 images")
    tr = _split(data, "train", rho, seed, source, n_train)
    pools = method_data(method, tr.images, tr.labels, generator=generator, strategy=strategy,
                        obs_strategy=obs_strategy, layer=layer, per_class=gen_per_class,
                        int_data=int_data, cf_data=cf_data, transfer_n=transfer_n,
                        transfer_steps=transfer_steps, features=features, seed=seed,
                        device=device, progress=not json_out)
    streams = method_streams(spec, {"real": (tr.images, tr.labels), **pools},
                             batch_size=batch_size, gen_batch_size=gen_batch_size,
                             transfer_batch_size=transfer_batch_size)
    batches = MultiStream(streams, seed=seed)
    if epochs is not None:
        cfg = dataclasses.replace(cfg, steps=max(1, round(epochs * batches.steps_per_epoch())))
    net, info = fit(batches, cfg, out, device=device, progress=not json_out)
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


def _numbers(text: str | None, option: str) -> list[float]:
    if text is None or not text.strip():
        return []
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise CausalKitError(f"{option} {text!r} is not comma-separated numbers (e.g. "
                             "30,60)") from None
