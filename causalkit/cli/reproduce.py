"""``causalkit reproduce``: re-run a paper's experiment end to end.

``causalkit reproduce cgn-mnist --variant colored --quick --out runs/cgn`` trains a
CGN on the variant, generates counterfactual data, trains the classifiers of the CGN
paper's Table 2 and writes the table, ``results.json`` and PNG grids under ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from causalkit.cli._common import (
    JSON_OPTION,
    OUT_OPTION,
    check_device,
    check_out,
    emit_json,
    user_errors,
)

reproduce_app = typer.Typer(help="Re-run a paper's experiment end to end.",
                            no_args_is_help=True)


def _check_config(config: Path | None) -> None:
    """Refuse a binary --config in one line (a missing one: the preset reader says so)."""
    if config is not None and config.is_file():
        from causalkit.io import read_text

        read_text(config, what="--config file", fix="pass a YAML file, e.g. one written by "
                  "--print-config")


def register(app: typer.Typer) -> None:
    app.add_typer(reproduce_app, name="reproduce")


@reproduce_app.command("cgn-mnist")
@user_errors
def cgn_mnist(
    variant: str = typer.Option(None, "--variant", help="colored | double-colored | "
                                "wildlife (default: colored, or the --config preset's)."),
    quick: bool = typer.Option(False, "--quick", help="Minutes on 2 CPU cores: embedded "
                               "5k MNIST, a short narrow CGN, few epochs."),
    source: str = typer.Option(None, "--source", help="MNIST source: 'embedded', "
                               "'mnist:DIR' or 'download' (default: the quick/full preset; "
                               "full uses $CAUSALKIT_MNIST or the cache)."),
    textures: Path = typer.Option(None, "--textures", help="Wildlife: folder with object/ "
                                  "and background/ textures (default: procedural)."),
    rendering: str = typer.Option(None, "--rendering", help="'pad' (the digits "
                                  "zero-padded, grey levels kept) or 'paper' (the official "
                                  "code's images, which its checkpoints were trained on). "
                                  "Default: 'paper' for the full Wildlife preset, else "
                                  "'pad'."),
    classifier_protocol: str = typer.Option(None, "--classifier-protocol", help="'ours' "
                                            "(Adam, constant rate) or 'paper' (the "
                                            "official code's: Adadelta, 10 epochs of 100k "
                                            "counterfactuals). Default: 'paper' for the "
                                            "full Wildlife preset, else 'ours'."),
    cgn: str = typer.Option(None, "--cgn", help="'train' (our CGN), 'official' (the "
                            "authors' weights) or a path to generator.pt / ckp.pth."),
    official_root: Path = typer.Option(None, "--official-root", help="Folder of the "
                                       "official checkpoints (default "
                                       "../shared/data/cgn_official)."),
    recipe: str = typer.Option(None, "--recipe", help="CGN training recipe: 'fast' "
                               "(encoder + reconstruction, ~1k iterations) or 'paper' "
                               "(the official losses only, ~47k iterations)."),
    counterfactuals: str = typer.Option(None, "--counterfactuals", help="'abducted' "
                                        "(counterfactuals of the real training images; "
                                        "needs the fast recipe), 'prior' (of the CGN's "
                                        "own samples, as the paper) or 'auto'."),
    backgrounds: str = typer.Option(None, "--backgrounds", help="Backgrounds of abducted "
                                    "counterfactuals: 'generated' (the CGN's) or 'real' "
                                    "(the training images with their digits cut out by "
                                    "the CGN's masks). Default: 'real' for the full "
                                    "Wildlife preset when it abducts, else 'generated'."),
    masks: str = typer.Option(None, "--masks", help="Masks of abducted counterfactuals: "
                              "'cgn' (the shape mechanism's) or 'colour' (each pixel's "
                              "posterior under the class's foreground and background "
                              "colours). Default: 'colour' for the full Wildlife preset "
                              "when it abducts, else 'cgn'."),
    palette: str = typer.Option(None, "--palette", help="A label-free colour shift of "
                                "every counterfactual the classifiers train on: 'none', or "
                                "'hue', 'saturation', 'invert' joined by '+' in that order, "
                                "e.g. 'hue+invert' (generators.cgn.palette)."),
    palette_target: str = typer.Option(None, "--palette-target", help="Where the palette "
                                       "shift acts: 'image' (each composed counterfactual) "
                                       "or 'mechanisms' (the texture and background values, "
                                       "each with its own draw)."),
    contrast: float = typer.Option(None, "--contrast", help="The lowest scale of each "
                                   "counterfactual's mask, drawn uniformly in [contrast, 1] "
                                   "(generators.cgn.contrast; 1 is none)."),
    random_texture: float = typer.Option(None, "--random-texture", help="The fraction of "
                                         "counterfactuals whose digit texture is a "
                                         "random-feature texture (generators.cgn."
                                         "random_textures; 0 is none)."),
    random_background: float = typer.Option(None, "--random-background", help="The "
                                            "fraction of counterfactuals whose background "
                                            "is a random-feature texture (0 is none)."),
    random_family: str = typer.Option(None, "--random-family", help="Which random textures "
                                      "replace them: 'features' (noise through a random "
                                      "network) or 'dead-leaves' (occluding discs and "
                                      "squares)."),
    cgn_iterations: int = typer.Option(None, "--cgn-iterations", min=1, help="CGN "
                                       "training iterations (full preset: 1,000; 3,000 "
                                       "for double-colored and Wildlife)."),
    n_generated: int = typer.Option(None, "--n-generated", min=1,
                                    help="Size of the CGN-sample and counterfactual sets."),
    epochs: float = typer.Option(None, "--epochs", min=0.01, help="Classifier epochs."),
    steps: int = typer.Option(None, "--steps", min=1, help="Classifier steps (overrides "
                              "--epochs; the quick preset uses 300)."),
    irm_penalty: float = typer.Option(None, "--irm-penalty", min=0.0, help="IRM's "
                                      "penalty weight after its warm-up (default 10)."),
    model: str = typer.Option(None, "--model", help="Classifier: cnn (default; the "
                              "paper's CNN), cnn-bn (with BatchNorm), cnn-cn (per-image "
                              "contrast normalisation; the full double-colored preset's) "
                              "or resnet18."),
    aux_weight: float = typer.Option(None, "--aux-weight", min=0.0, help="Weight of the "
                                     "texture and background heads (default 0.1)."),
    precision: str = typer.Option(None, "--precision", help="fp32 or bf16: bfloat16 "
                                  "autocast for CGN and classifier training, about twice "
                                  "as fast on CPUs with AMX (default fp32)."),
    seed: int = typer.Option(None, "--seed", min=0, help="Run seed (default 0)."),
    config: str = typer.Option(None, "--config", help="A preset by name (e.g. "
                               "'wildlife-texture-ood': Wildlife with the colour shift "
                               "chosen for unseen textures) instead of the variant's, or a "
                               "YAML config (e.g. one written by --print-config and "
                               "edited) on top of the preset, under the flags."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved "
                                      "config as YAML and exit; save it, edit it and run "
                                      "it back with --config."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda if "
                               "available)."),
    threads: int = typer.Option(1, "--threads", min=1, help="CPU threads for torch (1 "
                                "is fastest on a busy shared machine)."),
    json_out: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
) -> None:
    """CGN on an MNIST variant (Sauer & Geiger 2021, Table 2): train and OOD accuracy of
    Original, IRM (2 and 5 envs), Original + GAN, Original + CGN and CGN only."""
    import torch

    from robust_training.experiments.cgn_mnist import format_results, preset_config, run_cgn_mnist

    check_out(out)
    check_device(device)

    flags = {k: v for k, v in dict(
        cgn=cgn, textures=str(textures) if textures else None,
        official_root=str(official_root) if official_root else None,
        cgn_iterations=cgn_iterations, n_generated=n_generated, epochs=epochs, steps=steps,
        seed=seed, cgn_recipe=recipe, counterfactuals=counterfactuals,
        irm_penalty=irm_penalty, model=model, cgn_aux_weight=aux_weight, rendering=rendering,
        classifier_protocol=classifier_protocol, precision=precision,
        backgrounds=backgrounds, masks=masks, palette=palette,
        palette_target=palette_target, contrast=contrast, random_texture=random_texture,
        random_background=random_background, random_family=random_family, source=source,
    ).items() if v is not None}
    if epochs is not None and steps is None:
        flags["steps"] = None  # --epochs replaces the preset's step budget
    from robust_training.experiments.config import preset_names

    named = config if config in preset_names("cgn-mnist") else None
    file = Path(config) if config is not None and named is None else None
    _check_config(file)
    resolved = preset_config(variant, quick=quick, preset=named, file=file, **flags)
    # bad weights fail now, not after the data are built
    if resolved.generator.cgn == "official":
        from generators.cgn.mnist.checkpoint import load_official

        load_official(resolved.data.variant, root=resolved.generator.official_root)
    elif resolved.generator.cgn != "train":
        from generators.cgn.mnist.checkpoint import load_generator

        load_generator(resolved.generator.cgn)
    if print_config:
        typer.echo(resolved.to_yaml(), nl=False)
        return
    out = out or Path("runs") / f"cgn-mnist-{named or resolved.data.variant}" \
        f"{'-quick' if quick else ''}"
    torch.set_num_threads(threads)
    record = run_cgn_mnist(resolved, out, device=device, progress=not json_out)
    if json_out:
        emit_json(record)
    else:
        typer.echo(format_results(record))
        typer.echo(f"wrote {out}/results.json, table.txt and PNG grids")


def _run_staged(resolved, *, print_config: bool, threads: int | None, json_out: bool,
                run, format_stage, wrote: str) -> None:
    # the shared tail of the staged ImageNet commands: print the config, or run a stage
    if print_config:
        typer.echo(resolved.to_yaml(), nl=False)
        return
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    record = run()
    if json_out:
        emit_json(record)
    else:
        typer.echo(format_stage(record))
        typer.echo(wrote)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            from causalkit.errors import CausalKitError

            raise CausalKitError(f"{option} {item!r} is not NAME=DIR; pass e.g. "
                                 f"{option} in9=/data/bg_challenge")
        out[name] = path
    return out


@reproduce_app.command("cgn-imagenet")
@user_errors
def cgn_imagenet(
    stage: str = typer.Option(..., "--stage", help="train-cgn | generate | "
                              "train-classifier | evaluate (each resumes under --out)."),
    preset: str = typer.Option("paper", "--preset", help="'paper' (the official code's "
                               "settings, for a GPU) or 'tiny' (a CPU stand-in with a "
                               "random 32x32 BigGAN)."),
    biggan: str = typer.Option(None, "--biggan", help="BigGAN weights: a name "
                               "(biggan-deep-256), a folder, or 'tiny'."),
    u2net: str = typer.Option(None, "--u2net", help="U^2-Net weights (u2netp.onnx / "
                              "u2net.pth) or random:u2netp."),
    cgn_checkpoint: Path = typer.Option(None, "--cgn-checkpoint", help="A trained CGN (ours "
                                        "or the official cgn.pth) instead of this run's."),
    n: int = typer.Option(None, "--n", min=1, help="Counterfactual base samples."),
    mode: str = typer.Option(None, "--mode", help="random | best-classes | fixed."),
    classes: str = typer.Option(None, "--classes", help="SHAPE,TEXTURE,BACKGROUND class "
                                "ids for --mode fixed."),
    noise: str = typer.Option(None, "--noise", help="shared (official) or separate noise "
                              "per mechanism."),
    truncation: float = typer.Option(None, "--truncation", help="BigGAN truncation."),
    interpolate: str = typer.Option(None, "--interpolate", help="shape | texture | "
                                    "background | all: interpolation sheets."),
    tar: bool = typer.Option(None, "--tar/--no-tar", help="WebDataset tar shards instead "
                             "of an ImageFolder."),
    shard_rank: int = typer.Option(None, "--shard-rank", min=0, help="This process's share "
                                   "of the generation shards (default $RANK)."),
    shard_world: int = typer.Option(None, "--shard-world", min=1, help="Number of shares "
                                    "(default $WORLD_SIZE)."),
    real_root: Path = typer.Option(None, "--real-root", help="Real ImageNet training "
                                   "ImageFolder."),
    cf_root: Path = typer.Option(None, "--cf-root", help="Counterfactual set (default: this "
                                 "run's generate stage)."),
    arch: str = typer.Option(None, "--arch", help="Classifier ResNet (default resnet50)."),
    pretrained: Path = typer.Option(None, "--pretrained", help="torchvision ResNet "
                                    "state-dict file for the backbone."),
    epochs: float = typer.Option(None, "--epochs", min=0.001, help="Classifier epochs."),
    steps: int = typer.Option(None, "--steps", min=1, help="Classifier steps (overrides "
                              "--epochs)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Real and "
                                   "counterfactual images per step, each."),
    lr: float = typer.Option(None, "--lr", min=0.0, help="Classifier learning rate."),
    workers: int = typer.Option(None, "--workers", min=0, help="Image-decoding processes."),
    benchmark: list[str] = typer.Option(None, "--benchmark", help="Benchmarks to evaluate "
                                        "(repeatable; default shape-bias and in9)."),
    root: list[str] = typer.Option(None, "--root", help="NAME=DIR: a benchmark's data "
                                   "folder (repeatable)."),
    view: list[str] = typer.Option(None, "--view", help="shape | texture | background | "
                                   "mean (repeatable; default all)."),
    seed: int = typer.Option(None, "--seed", min=0, help="Run seed (default 0)."),
    precision: str = typer.Option(None, "--precision", help="fp32 or bf16."),
    config: Path = typer.Option(None, "--config", help="A YAML config on top of the preset, "
                                "under the flags."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved "
                                      "config as YAML and exit."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda if "
                               "available)."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    json_out: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
) -> None:
    """CGN on ImageNet (Sauer & Geiger 2021, Section 4.2), one stage at a time: train the
    CGN, generate counterfactual ImageNet, train the shape/texture/background classifier,
    evaluate it (shape bias, IN-9) per head and with averaged logits."""
    from robust_training.experiments.cgn_imagenet import (
        STAGES,
        CGNImageNetConfig,
        format_stage,
        run_stage,
    )

    if stage not in STAGES:
        from causalkit.errors import CausalKitError

        raise CausalKitError(f"unknown --stage {stage!r}; choose one of {list(STAGES)}")
    check_out(out)
    check_device(device)
    _check_config(config)
    triple = None
    if classes is not None:
        try:
            triple = [int(c) for c in classes.split(",")]
        except ValueError:
            triple = None
        if triple is None or len(triple) != 3:
            from causalkit.errors import CausalKitError

            raise CausalKitError(f"--classes {classes!r} is not three comma-separated class "
                                 "ids SHAPE,TEXTURE,BACKGROUND")
    roots = _pairs(root, "--root")
    flags = {k: v for k, v in dict(
        biggan=biggan, u2net=u2net, cgn_checkpoint=str(cgn_checkpoint) if cgn_checkpoint
        else None, n=n, mode=mode, classes=triple, noise=noise, truncation=truncation,
        interpolate=interpolate, tar=tar, real_root=str(real_root) if real_root else None,
        cf_root=str(cf_root) if cf_root else None, arch=arch,
        pretrained=str(pretrained) if pretrained else None, epochs=epochs, steps=steps,
        batch_size=batch_size, lr=lr, workers=workers,
        benchmarks=list(benchmark) if benchmark else None, roots=roots or None,
        views=list(view) if view else None, seed=seed, precision=precision,
    ).items() if v is not None}
    if epochs is not None and steps is None:
        flags["steps"] = None  # --epochs replaces a preset's step budget
    resolved = CGNImageNetConfig.resolve(preset, file=config, flags=flags)
    out = out or Path("runs") / f"cgn-imagenet-{preset}"
    _run_staged(resolved, print_config=print_config, threads=threads, json_out=json_out,
                run=lambda: run_stage(resolved, stage, out, device=device,
                                      progress=not json_out, rank=shard_rank,
                                      world=shard_world),
                format_stage=format_stage, wrote=f"wrote {out} (config.yaml, stages.jsonl)")


@reproduce_app.command("genint-imagenet")
@user_errors
def genint_imagenet(
    stage: str = typer.Option(..., "--stage", help="directions | generate | transfer | "
                              "train | evaluate | all (each resumes under --out)."),
    config: str = typer.Option("paper", "--config", help="A preset ('paper': the official "
                               "code's settings, for GPUs; 'tiny': the CPU stand-in) or a "
                               "YAML file (e.g. one written by --print-config)."),
    train_data: str = typer.Option(None, "--train-data", help="Real training images: "
                                   "imagefolder:DIR (ImageNet's train/) or "
                                   "webdataset:PATTERN."),
    val_data: str = typer.Option(None, "--val-data", help="imagefolder:DIR of ImageNet's "
                                 "val/ (class folders)."),
    size: int = typer.Option(None, "--size", min=1, help="Training crop side."),
    workers: int = typer.Option(None, "--workers", min=0, help="Image-decoding processes."),
    augment: str = typer.Option(None, "--augment", help="cpu or gpu (batched augmentation "
                                "on the training device)."),
    generator: str = typer.Option(None, "--generator", help="biggan:biggan-deep-256, "
                                  "biggan:DIR, tiny:SEED or small:DIR."),
    strategy: str = typer.Option(None, "--strategy", help="The intervention, e.g. "
                                 "genint:t=1,k=60."),
    layer: str = typer.Option(None, "--layer", help="GANSpace layer (default: the exact "
                              "shortcut of gen_z)."),
    source: str = typer.Option(None, "--source", help="shards (the generate stage's "
                               "images) or on-the-fly (made on the training device)."),
    per_class: int = typer.Option(None, "--per-class", min=1, help="Noise seeds per class."),
    edits_per_seed: int = typer.Option(None, "--edits-per-seed", min=1, help="Images per "
                                       "seed, each along its own component."),
    shard_size: int = typer.Option(None, "--shard-size", min=1, help="Images per shard."),
    transfer_n: int = typer.Option(None, "--transfer-n", min=1, help="Transferred images."),
    features: str = typer.Option(None, "--features", help="Transfer features: vgg19:PATH "
                                 "or random[:SEED]."),
    method: list[str] = typer.Option(None, "--method", help="erm | gan-aug | mixup | "
                                     "genint | genint-transfer (repeatable)."),
    arch: str = typer.Option(None, "--arch", help="Classifier ResNet (default resnet152)."),
    pretrained: Path = typer.Option(None, "--pretrained", help="torchvision ResNet "
                                    "state-dict file to fine-tune from."),
    epochs: float = typer.Option(None, "--epochs", min=0.001, help="Passes over the real "
                                 "images."),
    steps: int = typer.Option(None, "--steps", min=1, help="Steps (overrides --epochs)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Real images per "
                                   "step."),
    lr: float = typer.Option(None, "--lr", min=0.0, help="Learning rate."),
    eval_every_epoch: bool = typer.Option(None, "--eval-every-epoch/--no-eval-every-epoch",
                                          help="Run the evaluations after every epoch."),
    root: list[str] = typer.Option(None, "--root", help="NAME=DIR: a benchmark's folder "
                                   "(objectnet, imagenet-c, imagenet-v2; repeatable)."),
    seed: int = typer.Option(None, "--seed", min=0, help="Run seed (default 0)."),
    precision: str = typer.Option(None, "--precision", help="fp32 or bf16."),
    shard_worker: int = typer.Option(None, "--shard-worker", min=0, help="This process's "
                                     "share of the generate / transfer shards (default "
                                     "$RANK or the Slurm array task)."),
    shard_workers: int = typer.Option(None, "--shard-workers", min=1, help="Number of "
                                      "shares (default $WORLD_SIZE or the array size)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved "
                                      "config as YAML and exit."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda if "
                               "available)."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    json_out: bool = JSON_OPTION,
    out: Path = OUT_OPTION,
) -> None:
    """GenInt on ImageNet (Mao et al. 2021), one stage at a time: directions on BigGAN's
    gen_z, pre-generated interventions, style transfer, ResNet training per method
    (erm, gan-aug, mixup, genint, genint-transfer), OOD evaluation."""
    from causalkit.errors import CausalKitError
    from robust_training.experiments.config import preset_names
    from robust_training.experiments.genint_imagenet import (
        STAGES,
        GenIntImageNetConfig,
        format_stage,
        run_stage,
    )

    if stage not in (*STAGES, "all"):
        raise CausalKitError(f"unknown --stage {stage!r}; choose one of {[*STAGES, 'all']}")
    check_out(out)
    check_device(device)
    presets = preset_names(GenIntImageNetConfig.EXPERIMENT)
    preset, file = (config, None) if config in presets else (None, Path(config))
    if file is not None and not file.is_file():
        raise CausalKitError(f"--config {config!r} is neither a preset ({', '.join(presets)}) "
                             "nor a YAML file; pass one of them")
    _check_config(file)
    roots = _pairs(root, "--root")
    flags = {k: v for k, v in dict(
        train_data=train_data, val_data=val_data, size=size, workers=workers,
        augment=augment, generator=generator, strategy=strategy, layer=layer, source=source,
        per_class=per_class, edits_per_seed=edits_per_seed, shard_size=shard_size,
        transfer_n=transfer_n, features=features, methods=list(method) if method else None,
        arch=arch, pretrained=str(pretrained) if pretrained else None, epochs=epochs,
        steps=steps, batch_size=batch_size, lr=lr, eval_every_epoch=eval_every_epoch,
        roots=roots or None, seed=seed, precision=precision,
    ).items() if v is not None}
    if epochs is not None and steps is None:
        flags["steps"] = None  # --epochs replaces a preset's step budget
    resolved = GenIntImageNetConfig.resolve(preset, file=file, flags=flags)
    out = out or Path("runs") / f"genint-imagenet-{preset or file.stem}"
    _run_staged(resolved, print_config=print_config, threads=threads, json_out=json_out,
                run=lambda: run_stage(resolved, stage, out, device=device,
                                      progress=not json_out, worker=shard_worker,
                                      workers=shard_workers),
                format_stage=format_stage,
                wrote=f"wrote {out} (config.yaml, stages.jsonl, one folder per stage)")
