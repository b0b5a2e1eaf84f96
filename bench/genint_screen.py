"""Screen GenInt strategies on generated pools alone, before any classifier is trained.

An intervention helps a classifier only if its samples (a) no longer tie the nuisance
to the label and (b) still show the object of their label. On the synthetic MNIST
variants both are measurable without a classifier of the task:

- **tie** (:func:`analysis.nuisance_tie.colour_tie`): each sample's nuisance class (the
  nearest palette colour of the digit for colored MNIST, of the border for
  double-colored MNIST) against its label, as the fraction where they agree (0.1 is
  independence for ten classes) and as their mutual information in bits (0 is
  independence);
- **recognised**: the fraction of samples whose digit a colour-blind shape reader
  (:class:`robust_training.oracle.ShapeOracle`, trained on real colour-independent data)
  reads as the label.

Each strategy gets one pool of ``--per-class`` samples per class (``--seed``), and the
real training images are scored by the same readers as a reference. The records go to
``--out`` (a JSON list, appended), with a strip of samples per strategy under ``--strips``.

    python bench/genint_screen.py --generator runs/small_gan_col09/generator \\
        --variant colored-mnist --source mnist:../shared/data/mnist \\
        --strategies observational:t=0.5 t=0.5,k=8,s=2 t=0.5,k=4,s=2,centered=1 \\
        --plot docs/_static/genint_frontier_colored.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from analysis.nuisance_tie import colour_tie
from analysis.plots import plot_screen_frontier
from causalkit.records import append_record, file_digest, machine_info


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", required=True, help="small-GAN folder")
    p.add_argument("--variant", default="colored-mnist",
                   choices=["colored-mnist", "double-colored-mnist"])
    p.add_argument("--rho", type=float, default=0.9)
    p.add_argument("--source", default=None)
    p.add_argument("--strategies", nargs="*", default=[],
                   help="strategies to screen (none: only redraw --plot)")
    p.add_argument("--per-class", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--oracle", default="runs/oracle_lenet")
    p.add_argument("--out", default="bench/results/genint_screen.json")
    p.add_argument("--strips", default=None, help="folder for one PNG per strategy")
    p.add_argument("--plot", default=None,
                   help="PNG of recognised against MI for every record of --variant in --out")
    p.add_argument("--layer", default=None,
                   help="fit GANSpace PCA directions on this layer (e.g. blocks.2); "
                        "default: the exact shortcut of the affine first layer")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    weights = Path(a.generator) / "generator.pt"
    if not weights.is_file():  # fail early on a bad path
        raise SystemExit(f"{weights} not found: --generator must be a small-GAN folder "
                         "(config.json + generator.pt), e.g. runs/small_gan_col09/generator "
                         "from python -m generators.small_gan_train")
    digest = file_digest(weights)
    records = screen(a, digest) if a.strategies else []
    if a.plot:
        if not Path(a.out).is_file():
            raise SystemExit(f"{a.out} not found: --plot draws the records of --out; "
                             "screen some strategies into it first")
        every = [r for r in json.loads(Path(a.out).read_text()) if r["variant"] == a.variant
                 and not r["strategy"].startswith("observational")]
        if not every:
            raise SystemExit("no interventional records to plot; screen some strategies "
                             "first")
        print("wrote", plot_screen_frontier(every, a.plot))
    return records


def screen(a: argparse.Namespace, digest: str) -> list[dict]:
    """Score every strategy of ``a.strategies``; append and return their records."""
    from causalkit.datasets import build_split
    from generators.directions import fit_layerwise_directions
    from generators.images import save_strip, to_float
    from generators.small_gan import chunk_sensitivity, load_small_gan
    from generators.strategies import Observational, parse_strategy
    from robust_training.oracle import classify, train_shape_oracle
    from robust_training.sources import generated_pool

    oracle, oracle_ood = train_shape_oracle(a.source, Path(a.oracle))
    train = build_split(a.variant, "train", rho=a.rho, seed=0, source=a.source, n=10000,
                        cache=False)
    real = {"strategy": "real training images",
            **colour_tie(torch.as_tensor(train.images), torch.as_tensor(train.labels),
                         a.variant),
            "recognised": round(float((classify(oracle, to_float(torch.as_tensor(
                train.images))) == torch.as_tensor(train.labels)).float().mean()), 4)}
    print(f"{'strategy':32s} aligned  MI bits  recognised")
    print(f"{real['strategy']:32s} {real['aligned']:7.3f}  {real['mi_bits']:7.3f}  "
          f"{real['recognised']:10.3f}")
    gen = load_small_gan(a.generator, device="cpu")  # loaded once for every pool
    # One fit for every strategy, as many directions as the largest asks for.
    k = max([parse_strategy(t).components for t in a.strategies
             if not isinstance(parse_strategy(t), Observational)], default=1)
    directions = fit_layerwise_directions(gen, a.layer, k=k) if a.layer else None
    # Whether each chunk of z moves the image at all: a direction in an ignored chunk
    # cannot intervene on anything.
    chunks = ([round(v, 4) for v in chunk_sensitivity(gen)] if gen.config.block_latent
              else None)
    records = []
    for text in a.strategies:
        t0 = time.perf_counter()
        x, y = generated_pool(gen, text, a.per_class, seed=a.seed, directions=directions)
        xf = to_float(x)
        pred = classify(oracle, xf)
        rec = {"benchmark": "genint_screen", "strategy": text,
               **colour_tie(x, y, a.variant),
               "recognised": round(float((pred == y).float().mean()), 4),
               "recognised_per_class": [round(float((pred[y == c] == c).float().mean()), 3)
                                        for c in range(10)],
               "reference_real": real, "generator": a.generator,
               "generator_sha256": digest, "directions_layer": a.layer or "gen_z (shortcut)",
               "chunk_sensitivity": chunks, "variant": a.variant, "rho": a.rho,
               "per_class": a.per_class, "seed": a.seed,
               "oracle_ood_accuracy": round(oracle_ood, 4),
               "seconds": round(time.perf_counter() - t0, 1), "machine": machine_info()}
        append_record(a.out, rec)
        records.append(rec)
        print(f"{text:32s} {rec['aligned']:7.3f}  {rec['mi_bits']:7.3f}  "
              f"{rec['recognised']:10.3f}")
        if a.strips:
            name = "".join(ch if ch.isalnum() else "_" for ch in f"{a.layer or ''}{text}")
            rows = [xf[y == c][:12] for c in range(10)]
            save_strip(rows, Path(a.strips) / f"{name}.png", upscale=2)
    return records


if __name__ == "__main__":
    main()
