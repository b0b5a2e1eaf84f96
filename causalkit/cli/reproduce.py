"""``causalkit reproduce``: re-run a paper's experiment end to end.

``causalkit reproduce cgn-mnist --variant colored --quick --out runs/cgn`` trains a
CGN on the variant, generates counterfactual data, trains the classifiers of the CGN
paper's Table 2 and writes the table, ``results.json`` and PNG grids under ``--out``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from causalkit.cli._common import JSON_OPTION, OUT_OPTION, emit_json, user_errors

reproduce_app = typer.Typer(help="Re-run a paper's experiment end to end.",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(reproduce_app, name="reproduce")


@reproduce_app.command("cgn-mnist")
@user_errors
def cgn_mnist(
    variant: str = typer.Option("colored", "--variant",
                                help="colored | double-colored | wildlife"),
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
    config: Path = typer.Option(None, "--config", help="A YAML config (e.g. one written by "
                                "--print-config and edited): on top of the preset, under "
                                "the flags."),
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

    flags = {k: v for k, v in dict(
        cgn=cgn, textures=str(textures) if textures else None,
        official_root=str(official_root) if official_root else None,
        cgn_iterations=cgn_iterations, n_generated=n_generated, epochs=epochs, steps=steps,
        seed=seed, cgn_recipe=recipe, counterfactuals=counterfactuals,
        irm_penalty=irm_penalty, model=model, cgn_aux_weight=aux_weight, rendering=rendering,
        classifier_protocol=classifier_protocol, precision=precision,
        backgrounds=backgrounds, masks=masks, source=source,
    ).items() if v is not None}
    if epochs is not None and steps is None:
        flags["steps"] = None  # --epochs replaces the preset's step budget
    resolved = preset_config(variant, quick=quick, file=config, **flags)
    if print_config:
        typer.echo(resolved.to_yaml(), nl=False)
        return
    out = out or Path("runs") / f"cgn-mnist-{variant}{'-quick' if quick else ''}"
    torch.set_num_threads(threads)
    record = run_cgn_mnist(resolved, out, device=device, progress=not json_out)
    if json_out:
        emit_json(record)
    else:
        typer.echo(format_results(record))
        typer.echo(f"wrote {out}/results.json, table.txt and PNG grids")
