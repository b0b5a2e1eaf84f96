"""GenInt on biased MNIST: ERM, GAN augmentation, GenInt and GenInt + transfer.

Setting. ``--variant`` double-colored MNIST (default) or colored MNIST with rho = 0.9:
the colour classes (foreground and background, or the digit's) each equal the digit with
probability 0.9 (training and in-distribution test); the OOD test split is the same SCM
under do(colour classes := uniform), which breaks the tie between nuisance and label.
The small GAN (:mod:`generators.small_gan`) is trained on
the biased training data (``python -m generators.small_gan_train``).

Streams. ``real``: ``--n-train`` biased training images. ``int``: GenInt samples, the
strategy ``--strategy`` (default ``t=1,k=8,s=1``) on the GAN's SVD-shortcut directions,
or on GANSpace directions of ``--layer`` (several layers joined by ``+``).
``obs``: observational samples with the same truncation and no intervention (GAN
augmentation). ``transfer``: ``T(I, X_int)`` by Gram matching of random features,
labelled with the real image's label. All pools are generated once per ``--pool-seed``
and cached under ``--work``.

Runs. Each (method, seed) trains the MNIST CNN for ``--steps`` steps and appends one
record to ``--results`` (JSON list); runs already recorded with the same settings are
skipped, so the benchmark can be spread over several sessions (or a lent GPU);
``--summary`` trains nothing and prints the recorded tables. The Table 4
analogue trains on generated data only (``gen-only-int`` / ``gen-only-obs``) and tests
on real data.

The run that reproduces the paper's pattern (docs: "Directions that keep the digit"),
with a block-latent GAN trained with ``--chunk-mode-seeking``::

    python bench/genint_mnist.py --variant colored-mnist \\
        --generator runs/small_gan_col09_cms/generator --source mnist:../shared/data/mnist \\
        --layer blocks.0.affine+blocks.1.affine+blocks.2.affine \\
        --strategy t=0.5,k=24,n=15,s=3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from causalkit.records import append_record, machine_info
from robust_training.experiments.genint_mnist import (
    METHODS,
    NUISANCE,
    GenIntMnistConfig,
    run_genint_mnist,
    summarize,
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", default=None, help="small-GAN folder (required unless "
                   "--summary)")
    p.add_argument("--source", default=None)
    p.add_argument("--variant", default="double-colored-mnist", choices=sorted(NUISANCE),
                   help="the biased training data (the GAN must be trained on it)")
    p.add_argument("--rho", type=float, default=0.9)
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--strategy", default="t=1,k=8,s=1")
    p.add_argument("--layer", default=None,
                   help="GANSpace PCA directions of this layer (e.g. blocks.2.affine); "
                        "default: the shortcut of the affine first layer")
    p.add_argument("--obs-strategy", default="observational:t=1")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--transfer-n", type=int, default=5000)
    p.add_argument("--transfer-steps", type=int, default=20)
    p.add_argument("--pool-seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--gen-batch-size", type=int, default=64)
    p.add_argument("--transfer-batch-size", type=int, default=32)
    p.add_argument("--lambda1", type=float, default=1.0)
    p.add_argument("--lambda2", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--work", default="runs/genint_mnist")
    p.add_argument("--results", default="bench/results/genint_mnist.json")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--figure", default=None, help="PNG of real / int / transfer / obs")
    p.add_argument("--summary", action="store_true", help="train nothing: print the "
                   "recorded runs' table (of these settings with --generator, else of "
                   "every recorded setting)")
    a = p.parse_args(argv)
    if a.summary and a.generator is None:
        _print_summaries(a.results)
        return
    if a.generator is None:
        p.error("--generator is required unless --summary")
    torch.set_num_threads(a.threads)
    flags = {k: v for k, v in vars(a).items()
             if k not in ("results", "work", "threads", "device", "figure")}
    flags.pop("summary")
    config = GenIntMnistConfig.resolve("default", flags=flags)
    settings = config.settings()
    records = json.loads(Path(a.results).read_text()) if Path(a.results).is_file() else []
    done = [(r["method"], r["seed"]) for r in records if r.get("settings") == settings]
    if not a.summary:
        run_genint_mnist(config, a.work, done=done, device=a.device, figure=a.figure,
                         on_record=lambda rec: append_record(
                             a.results, {**rec, "machine": machine_info()}))
    recs = json.loads(Path(a.results).read_text()) if Path(a.results).is_file() else []
    _print_table(summarize(r for r in recs if r.get("settings") == settings))


def _print_summaries(results: str) -> None:
    """The table of every recorded setting, one after another."""
    recs = json.loads(Path(results).read_text()) if Path(results).is_file() else []
    groups: dict[str, list[dict]] = {}
    for r in recs:
        groups.setdefault(json.dumps(r.get("settings", {}), sort_keys=True), []).append(r)
    for key, rs in groups.items():
        s = json.loads(key)
        print(f"\n{s.get('variant')} | {s.get('strategy')} | layer {s.get('layer')} | "
              f"{s.get('steps')} steps | generator {s.get('generator')} "
              f"({s.get('generator_sha256')})")
        _print_table(summarize(rs))


def _print_table(table: dict) -> None:
    print(f"{'method':16s} seeds  test (median [min,max])     OOD (median [min,max])")
    for m, s in table.items():
        print(f"{m:16s} {s['n_seeds']:5d}  {s['test_median']:.4f} [{s['test_min']:.4f},"
              f"{s['test_max']:.4f}]  {s['ood_median']:.4f} [{s['ood_min']:.4f},"
              f"{s['ood_max']:.4f}]")


if __name__ == "__main__":
    main()
