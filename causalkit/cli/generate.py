"""``causalkit generate``: interventional (GenInt) or observational images from a GAN."""

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
)


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command to ``app``."""
    app.command("generate")(generate)


@user_errors
def generate(
    generator: str = typer.Option(..., "--generator", "-g",
                                  help="biggan:DIR | biggan:biggan-deep-256 | tiny[:SEED] "
                                       "(or another registered scheme, e.g. small:DIR)."),
    strategy: str = typer.Option("t=1,k=60,s=1", "--strategy", "-s",
                                 help="'t=1,k=60,s=1[,n=5][,centered=1]' (intervention) or "
                                      "'observational:t=0.2' (GAN augmentation)."),
    per_class: int = typer.Option(..., "--per-class", "-n", help="Images per class."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (rerun to resume)."),
    classes: str = typer.Option(None, "--classes",
                                help="Comma-separated class indices (default: all)."),
    directions: Path = typer.Option(None, "--directions",
                                    help="Directions .npz; default: the exact shortcut "
                                         "for an affine first layer, else a GANSpace fit "
                                         "(saved as OUT/directions.npz)."),
    layer: str = typer.Option(None, "--layer",
                              help="Fit GANSpace directions on this layer, or on several "
                                   "joined by '+' (interleaved), e.g. "
                                   "blocks.0.affine+blocks.1.affine."),
    seed: int = typer.Option(0, "--seed", help="Run seed."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Images per resumable shard."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: cuda "
                                                      "when available)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Write PNGs in ImageFolder layout, labels.csv and the latent offsets (sharded).

    Every option is checked before anything is written. OUT/directions.npz is reused by a
    rerun only when it was made by the same request (generator weights, layer, k, fit);
    otherwise the directions are fitted again (see docs/errors.md).
    """
    from causalkit.errors import CausalKitError
    from generators.base import as_label_list
    from generators.directions import Directions, directions_key
    from generators.registry import load_generator
    from generators.sampling import make_sampler
    from generators.strategies import Observational, parse_strategy
    from generators.writer import write_generated

    check_out(out)
    check_device(device)
    for name, value in (("--per-class", per_class), ("--batch-size", batch_size),
                        ("--shard-size", shard_size)):
        if value < 1:
            raise CausalKitError(f"{name} must be >= 1, got {value}; pass a positive count")
    strat = parse_strategy(strategy)
    try:
        class_list = ([int(c) for c in classes.split(",") if c.strip()]
                      if classes else None)
    except ValueError:
        raise CausalKitError(f"--classes must be comma-separated integers, got "
                             f"{classes!r}") from None
    if directions is not None and layer is not None:
        raise CausalKitError("pass --directions or --layer, not both")
    gen = load_generator(generator, device=device)
    as_label_list(class_list, gen.num_classes)  # fail early on bad classes
    key = None
    saved = None
    if not isinstance(strat, Observational):
        key = directions_key(gen, k=strat.components, layer=layer, given=directions)
        cache = out / "directions.npz"
        if directions is None and cache.is_file():
            try:
                if Directions.load(cache).matches(key):
                    saved = cache  # made by this very request: reuse it
            except CausalKitError:
                pass  # a damaged cache is fitted again
    # fitted directions are saved by the writer, after its own checks
    sampler, dirs, dirs_source = make_sampler(gen, strat, directions=directions, layer=layer,
                                              saved=saved)
    if dirs is not None:
        dirs.key = key or ""
        if saved is None and directions is None:
            dirs_source = f"{out / 'directions.npz'} ({dirs.method})"
    result = write_generated(gen, sampler, out, per_class=per_class, classes=class_list,
                             seed=seed, shard_size=shard_size, batch_size=batch_size,
                             progress=not json_out, directions=dirs,
                             settings=dict(generator=generator,
                                           directions_method=dirs.method if dirs else None))
    result.update(generator=generator, directions=dirs_source)
    if json_out:
        emit_json(result)
    else:
        rows = [(name, result[name]) for name in ("out", "images", "shards", "skipped_shards",
                                                "generated_images", "images_per_s",
                                                "strategy", "directions")]
        typer.echo(format_table(["field", "value"], rows))
