"""``causalkit evaluate``: score a classifier on the OOD benchmarks, or an MNIST model.

Two uses share the command:

* ``--benchmark NAME`` (repeatable: shape-bias, in9, imagenet-c, objectnet, imagenet-v2,
  imagenet-a) scores an ImageNet classifier (``--model``: efficientnet-lite0,
  ``resnet50:FILE.pth`` torchvision-format weights, a TorchScript file, ``timm:NAME``,
  ``torchvision:NAME``, a causalkit run folder) on each benchmark's folder
  (``--root NAME=DIR``, or ``--root DIR`` for one benchmark), prints a table, writes
  ``evaluate.json`` and PNG plots under ``--out``, and prints each data set's terms.
  The work is cut into units (an ImageNet-C shard of one corruption at one severity, or
  a whole small benchmark: :mod:`analysis.benchmarks.units`) whose results are saved
  under ``--out/.partial/`` as they finish, keyed by the model's digest, the data's
  listing and the settings (:mod:`analysis.benchmarks.partials`). The same command,
  killed and run again, reuses the finished units and writes the ``evaluate.json`` an
  uninterrupted run writes; how long it took and how many units were reused go to
  ``timing.json``, so ``evaluate.json`` holds scores only.
* without ``--benchmark`` it scores a run folder of ``causalkit train`` on an MNIST
  split or generated folder, and ``--by-nuisance`` adds the registry's ``by-nuisance``
  benchmark.
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
    status,
    user_errors,
    write_report,
)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to ``app``."""
    app.command("evaluate")(evaluate_cmd)


def _model_loaders() -> dict:
    """Loaders for model families defined above ``analysis``: torchvision-format ResNet
    state dicts and causalkit run folders (built by ``robust_training``)."""
    from analysis.benchmarks.models import ImageNetClassifier
    from robust_training.resnet import RESNETS, build_resnet, load_torchvision_weights

    def resnet(arch: str):
        def load(path: str):
            net = build_resnet(arch, 1000)
            load_torchvision_weights(net, path)
            return ImageNetClassifier(net.eval(), name=f"{arch}:{Path(path).name}")
        return load

    def run_folder(path: str):
        if (Path(path) / "classifier.json").is_file():  # the ImageNet CGN classifier
            from robust_training.imagenet_classifier import load_imagenet_classifier

            return load_imagenet_classifier(path).view("all")
        from robust_training.engine import load_model
        from robust_training.imagenet_classifier import ImageNetHeads

        model = load_model(path)
        if isinstance(model, ImageNetHeads):  # an ImageNet-stem run: normalises inside
            return model.view("all")
        # the engine's other models read [-1, 1]: (x - 0.5) / 0.5 from the contract's [0, 1]
        return ImageNetClassifier(model, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                  name=Path(path).name)

    return {**{arch: resnet(arch) for arch in RESNETS}, "": run_folder}


def _roots(benchmarks: list[str], roots: list[str]) -> dict[str, str]:
    from causalkit.errors import CausalKitError

    out: dict[str, str] = {}
    for item in roots:
        name, sep, path = item.partition("=")
        if sep and name in benchmarks:
            out[name] = path
        elif not sep and len(benchmarks) == 1:
            out[benchmarks[0]] = item
        else:
            raise CausalKitError(f"--root {item!r}: use --root NAME=DIR with NAME one of "
                                 f"{', '.join(benchmarks)} (or --root DIR for one benchmark)")
    missing = [b for b in benchmarks if b not in out]
    if missing:
        raise CausalKitError(f"no data folder for {', '.join(missing)}; pass --root "
                             f"{missing[0]}=DIR (download with causalkit's "
                             "analysis.benchmarks.data.fetch)")
    for name, path in out.items():
        if not Path(path).exists():
            raise CausalKitError(f"--root {name}={path}: the folder does not exist")
    return out


def _benchmarks(benchmarks: list[str], model_spec: str, roots: list[str], *, head: str | None,
                batch_size: int, device: str | None, amp: bool, workers: int,
                skip_corrupt: bool, on_the_fly: bool, severities: list[int],
                shard_images: int, out: Path | None,
                json_out: bool) -> None:
    from analysis.benchmarks import load_model
    from analysis.benchmarks.data import terms
    from analysis.benchmarks.partials import FOLDER, PartialStore, model_digest
    from analysis.benchmarks.plots import plot_corruption_errors, plot_shape_bias
    from analysis.benchmarks.registry import IMAGE_BENCHMARKS, get_benchmark
    from analysis.benchmarks.units import plan, run_plan
    from causalkit.errors import CausalKitError

    for name in benchmarks:
        get_benchmark(name)
        if name not in IMAGE_BENCHMARKS:
            raise CausalKitError(f"--benchmark {name} scores MNIST models: use "
                                 "--by-nuisance without --benchmark")
    folders = _roots(benchmarks, roots)
    model = load_model(model_spec, loaders=_model_loaders(), head=head)
    files = [model_spec] if Path(model_spec).is_file() else []
    store = PartialStore(out / FOLDER if out is not None else None,
                         model=model_digest(model, files=files), settings={})
    plans = {}
    for name in benchmarks:  # ImageNet-C checks all its folders here, before any unit runs
        options = dict(batch_size=batch_size, device=device, amp=amp, num_workers=workers,
                       on_corrupt="skip" if skip_corrupt else "raise")
        if name == "imagenet-c":
            options["shard_images"] = shard_images
            if on_the_fly:
                options["source"] = "folder"
            if severities:
                options["severities"] = tuple(severities)
        plans[name] = plan(name, model, folders[name], **options)
    results, timing = {}, {}
    for name in benchmarks:
        status(f"terms: {terms(name)}")
        results[name], timing[name] = run_plan(plans[name], store=store, report=status)
        if results[name].skipped:
            status(f"warning: {name}: skipped {results[name].skipped} unreadable image(s)")
    payload = {"model": model_spec, "results": {k: r.to_dict() for k, r in results.items()}}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if "shape-bias" in results:
            plot_shape_bias({model_spec: results["shape-bias"]}, out / "shape_bias.png")
        if "imagenet-c" in results:
            plot_corruption_errors(results["imagenet-c"], out / "imagenet_c.png")
    write_report(out, "timing.json", {"model": model_spec, "benchmarks": timing})
    write_report(out, "evaluate.json", payload)
    if json_out:
        emit_json(payload)
    else:
        rows = [row for r in results.values() for row in r.rows()]
        typer.echo(format_table(["benchmark", "head", "metric", "value"], rows))


@user_errors
def evaluate_cmd(
    model: str = typer.Option(..., "--model", help="A run folder of causalkit train, or "
                              "with --benchmark: efficientnet-lite0, resnet50:FILE.pth, "
                              "FILE.ts (TorchScript), timm:NAME, torchvision:NAME."),
    benchmark: list[str] = typer.Option(None, "--benchmark", help="shape-bias, in9, "
                                        "imagenet-c, objectnet, imagenet-v2, imagenet-a "
                                        "(repeatable)."),
    root: list[str] = typer.Option(None, "--root", help="NAME=DIR: the data folder of a "
                                   "benchmark (DIR alone for one benchmark)."),
    head: str = typer.Option(None, "--head", help="Score one head of a multi-head "
                             "classifier (default: every head and their average)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    amp: bool = typer.Option(False, "--amp", help="float16 autocast on CUDA (bf16 on CPU)."),
    workers: int = typer.Option(4, "--workers", min=0, help="DataLoader decoding workers."),
    skip_corrupt: bool = typer.Option(False, "--skip-corrupt", help="Count and skip "
                                      "unreadable images instead of stopping."),
    on_the_fly: bool = typer.Option(False, "--on-the-fly", help="imagenet-c: corrupt the "
                                    "images of a plain <wnid>/ folder instead of reading "
                                    "the released corruption folders."),
    severity: list[int] = typer.Option(None, "--severity", help="imagenet-c: score these "
                                       "severities only (repeatable; default 1..5)."),
    shard_images: int = typer.Option(10_000, "--shard-images", min=1, help="imagenet-c: "
                                     "images per resumable unit (each corruption and "
                                     "severity is cut into shards of this many)."),
    data: str = typer.Option("double-colored-mnist:ood", "--data",
                             help="Without --benchmark: VARIANT[:SPLIT] (split test or ood), "
                                  "or a generated folder (labels.csv)."),
    rho: float = typer.Option(0.9, "--rho", help="rho of the test split."),
    source: str = typer.Option(None, "--source", help="MNIST source (e.g. mnist:DIR)."),
    seed: int = typer.Option(0, "--seed", help="Dataset seed."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda "
                               "when available for --benchmark, else cpu)."),
    out: Path = typer.Option(None, "--out", help="Folder for evaluate.json (and PNG plots)."),
    by_nuisance: bool = typer.Option(False, "--by-nuisance", help="Also score the model "
                                     "on the variant's test data under do() on each "
                                     "nuisance alone (the by-nuisance benchmark)."),
    n: int = typer.Option(5000, "--n", min=1, help="Samples per world for --by-nuisance."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Score a classifier on OOD benchmarks (--benchmark), or an MNIST model on a split."""
    out = check_out(out)
    device = check_device(device)
    if benchmark:
        _benchmarks(list(benchmark), model, list(root or []), head=head,
                    batch_size=batch_size, device=device, amp=amp, workers=workers,
                    skip_corrupt=skip_corrupt, on_the_fly=on_the_fly,
                    severities=list(severity or []), shard_images=shard_images, out=out,
                    json_out=json_out)
        return
    _mnist(Path(model), data, rho, source, seed, device or "cpu", out, by_nuisance, n,
           json_out)


def _mnist(model: Path, data: str, rho: float, source: str | None, seed: int, device: str,
           out: Path | None, by_nuisance: bool, n: int, json_out: bool) -> None:
    from analysis.benchmarks import run_benchmark
    from causalkit.datasets import build_split
    from causalkit.errors import CausalKitError
    from robust_training.engine import evaluate, load_model, predict
    from robust_training.sources import load_generated_folder

    net = load_model(model, device=device)
    if Path(data).is_dir():
        if by_nuisance:
            raise CausalKitError("--by-nuisance needs a dataset variant as --data (its SCM "
                                 "knows the nuisances), not a generated folder")
        x, y = load_generated_folder(data)
    else:
        name, _, split = data.partition(":")
        sp = build_split(name, split or "ood", rho=rho, seed=seed, source=source, n=None,
                         cache=False)
        x, y = sp.images, sp.labels
    res = {"model": str(model), "data": data, **evaluate(net, x, y)}
    report = None
    if by_nuisance:
        result = run_benchmark("by-nuisance", lambda images: predict(net, images), name,
                               rho=rho, n=n, seed=seed, source=source)
        report = result.details["text"]
        res["by_nuisance"] = result.details["report"]
    write_report(out, "evaluate.json", res)
    if json_out:
        emit_json(res)
    else:
        typer.echo(format_table(["model", "data", "n", "accuracy"],
                                [[str(model), data, res["n"], f"{res['accuracy']:.4f}"]]))
        if report is not None:
            typer.echo(f"\ntest data (rho {rho}) under do() on each nuisance:")
            typer.echo(report)
