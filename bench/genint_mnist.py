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
skipped, so the benchmark can be spread over several sessions (or a lent GPU). The Table 4
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
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._machine import append_record, machine_info  # noqa: E402
from causalkit.io import atomic_write  # noqa: E402

METHODS = ("erm", "gan-aug", "genint", "genint-transfer", "gen-only-int", "gen-only-obs")


def _pools(a, train) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Generated (int, obs) and transferred pools, cached in ``a.work``."""
    from generators.small_gan import load_small_gan
    from robust_training.sources import generated_pool, transfer_stream

    key = json.dumps([a.generator, a.generator_sha256, a.layer, a.strategy, a.obs_strategy,
                      a.per_class, a.pool_seed, a.n_train, a.transfer_n, a.transfer_steps,
                      a.rho, a.variant])
    key = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(a.work) / f"pools-{key}.pt"
    if path.is_file():
        st = torch.load(path, weights_only=True)
        return {k: (st[f"{k}_x"], st[f"{k}_y"]) for k in ("int", "obs", "transfer")}
    t0 = time.perf_counter()
    gen = load_small_gan(a.generator, device="cpu")  # once for both pools
    xi, yi = generated_pool(gen, a.strategy, a.per_class, seed=a.pool_seed, layer=a.layer)
    xo, yo = generated_pool(gen, a.obs_strategy, a.per_class, seed=a.pool_seed)
    xt, yt = transfer_stream(train.images, train.labels, xi, a.transfer_n,
                             seed=a.pool_seed, steps=a.transfer_steps, progress=True)
    st = {"int_x": xi, "int_y": yi, "obs_x": xo, "obs_y": yo, "transfer_x": xt,
          "transfer_y": yt}
    atomic_write(path, lambda fh: torch.save(st, fh))
    print(f"pools built in {time.perf_counter() - t0:.0f}s -> {path}")
    return {k: (st[f"{k}_x"], st[f"{k}_y"]) for k in ("int", "obs", "transfer")}


def _streams(method: str, a, train, pools):
    from robust_training.streams import Stream

    real = Stream("real", train.images, train.labels, a.batch_size)
    gen = a.gen_batch_size
    if method == "erm":
        return [real], "erm", {}
    if method == "gan-aug":
        return [real, Stream("obs", *pools["obs"], gen)], "gan-aug", {"lambda_gen": a.lambda1}
    if method == "genint":
        return [real, Stream("int", *pools["int"], gen)], "genint", {"lambda1": a.lambda1}
    if method == "genint-transfer":
        return ([real, Stream("int", *pools["int"], gen),
                 Stream("transfer", *pools["transfer"], a.transfer_batch_size)],
                "genint-transfer", {"lambda1": a.lambda1, "lambda2": a.lambda2})
    if method in ("gen-only-int", "gen-only-obs"):
        kind = method.rsplit("-", 1)[1]
        return [Stream(kind, *pools[kind], a.batch_size + gen)], "erm", {}
    raise ValueError(method)


#: The nuisance whose tie to the label the alignment statistic measures, per variant.
NUISANCE = {"double-colored-mnist": "background colour", "colored-mnist": "digit colour"}


def _nuisance_stats(pools, train, variant: str) -> dict:
    """How often each stream's nuisance colour class equals the label, and their mutual
    information in bits (:func:`bench.genint_screen.tie`).

    Double-colored MNIST: the background (border) colour; colored MNIST: the digit colour
    (its brightest pixels), each matched to the nearest palette colour.
    """
    from bench.genint_screen import tie

    tag = "fg" if variant == "colored-mnist" else "bg"
    streams = {"real_train": (torch.as_tensor(train.images), torch.as_tensor(train.labels)),
               **{k: pools[k] for k in ("int", "obs", "transfer")}}
    out = {}
    for name, (x, y) in streams.items():
        t = tie(x, y, variant)
        out[f"{name}_{tag}_aligned"] = t["aligned"]
        out[f"{name}_mi_bits"] = t["mi_bits"]
    return out


def _figure(a, train, pools, n: int = 10) -> None:
    """Rows: real images I, interventional samples X, T(I, X), observational samples."""
    from bench.small_gan_eval import strip_png
    from robust_training.streams import to_float
    from robust_training.transfer import random_features, style_transfer

    g = torch.Generator().manual_seed(a.pool_seed)
    ri = torch.randperm(len(train.labels), generator=g)[:n]
    ii = torch.randperm(len(pools["int"][1]), generator=g)[:n]
    real = to_float(torch.as_tensor(train.images)[ri])
    xint = to_float(pools["int"][0][ii])
    tr = style_transfer(real, xint, random_features(0), steps=a.transfer_steps)
    strip_png([real, xint, tr, to_float(pools["obs"][0][ii])], Path(a.figure))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", required=True, help="small-GAN folder")
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
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from bench.genint_screen import file_digest
    # A retrained generator in the same folder must not match the old records or pools.
    a.generator_sha256 = file_digest(Path(a.generator) / "generator.pt")
    from causalkit.datasets import build_split
    from robust_training.engine import FitConfig, evaluate, fit
    from robust_training.streams import MultiStream

    def split(name, n=None):
        return build_split(a.variant, name, rho=a.rho, seed=0, source=a.source,
                           n=n, cache=False)

    train, test, ood = split("train", a.n_train), split("test"), split("ood")
    pools = _pools(a, train)
    if a.figure:
        _figure(a, train, pools)
    stats = _nuisance_stats(pools, train, a.variant)
    print(f"{NUISANCE[a.variant]} = label (fraction):", stats)
    settings = {k: v for k, v in vars(a).items()
                if k not in ("seeds", "methods", "results", "work", "threads", "device",
                             "figure")}
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    done = []
    if Path(a.results).is_file():
        done = [(r["method"], r["seed"]) for r in json.loads(Path(a.results).read_text())
                if r.get("settings") == settings]
    for method in a.methods:
        for seed in a.seeds:
            if (method, seed) in done:
                print(f"skip {method} seed {seed}: already recorded")
                continue
            streams, objective, hp = _streams(method, a, train, pools)
            cfg = FitConfig(objective, steps=a.steps, lr=a.lr, seed=seed, hparams=hp)
            t0 = time.perf_counter()
            model, info = fit(MultiStream(streams, seed=seed), cfg,
                              Path(a.work) / f"{method}-s{seed}-{tag}", device=a.device)
            rec = {"benchmark": "genint_mnist", "method": method, "seed": seed,
                   "objective": objective, "hparams": hp,
                   "test_accuracy": evaluate(model, test.images, test.labels)["accuracy"],
                   "ood_accuracy": evaluate(model, ood.images, ood.labels)["accuracy"],
                   "train_seconds": round(time.perf_counter() - t0, 1),
                   "streams": {s.kind: {"n": len(s), "batch_size": s.batch_size}
                               for s in streams},
                   "nuisance_alignment": stats, "settings": settings,
                   "machine": machine_info()}
            append_record(a.results, rec)
            print(f"{method:16s} seed {seed}: test {rec['test_accuracy']:.4f} "
                  f"OOD {rec['ood_accuracy']:.4f}")
    summarize(a.results, settings)


def summarize(results: str | Path, settings: dict | None = None) -> dict:
    """Median / min / max of test and OOD accuracy per method (printed as a table)."""
    recs = json.loads(Path(results).read_text())
    if settings is not None:
        recs = [r for r in recs if r.get("settings") == settings]
    table = {}
    for m in METHODS:
        rs = [r for r in recs if r["method"] == m]
        if not rs:
            continue
        t = np.array([r["test_accuracy"] for r in rs])
        o = np.array([r["ood_accuracy"] for r in rs])
        table[m] = {"n_seeds": len(rs), "test_median": float(np.median(t)),
                    "ood_median": float(np.median(o)), "ood_min": float(o.min()),
                    "ood_max": float(o.max()), "test_min": float(t.min()),
                    "test_max": float(t.max())}
    print(f"{'method':16s} seeds  test (median [min,max])     OOD (median [min,max])")
    for m, s in table.items():
        print(f"{m:16s} {s['n_seeds']:5d}  {s['test_median']:.4f} [{s['test_min']:.4f},"
              f"{s['test_max']:.4f}]  {s['ood_median']:.4f} [{s['ood_min']:.4f},"
              f"{s['ood_max']:.4f}]")
    return table


if __name__ == "__main__":
    main()
