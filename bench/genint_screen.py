"""Screen GenInt strategies on generated pools alone, before any classifier is trained.

An intervention helps a classifier only if its samples (a) no longer tie the nuisance
to the label and (b) still show the object of their label. On the synthetic MNIST
variants both are measurable without a classifier of the task:

- **tie**: each sample's nuisance class (the nearest palette colour of the digit for
  colored MNIST, of the border for double-colored MNIST) against its label, as the
  fraction where they agree (0.1 is independence for ten classes) and as their mutual
  information in bits (0 is independence);
- **recognised**: the fraction of samples whose digit a colour-blind shape reader
  (:class:`bench.small_gan_eval.ShapeOracle`, trained on real colour-independent data)
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


def file_digest(path: str | Path, n: int = 12) -> str:
    """The first ``n`` hex digits of a file's SHA-256 (identifies a generator's weights)."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path} not found: --generator must be a small-GAN folder "
                         "(config.json + generator.pt), e.g. runs/small_gan_col09/generator "
                         "from python -m generators.small_gan_train")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:n]


def nuisance_classes(images: torch.Tensor, variant: str) -> torch.Tensor:
    """Each image's nuisance class: nearest palette colour of the digit (colored MNIST)
    or of the border (double-colored MNIST)."""
    from bench.small_gan_eval import background_color, foreground_color
    from causalkit.datasets.palettes import COLORED_PALETTE, DOUBLE_BG_PALETTE

    colored = variant == "colored-mnist"
    pal = torch.tensor(np.asarray(COLORED_PALETTE if colored else DOUBLE_BG_PALETTE),
                       dtype=torch.float32) * 255.0
    colour = (foreground_color if colored else background_color)(torch.as_tensor(images))
    return torch.cdist(colour, pal).argmin(dim=1)


def tie(images: torch.Tensor, labels: torch.Tensor, variant: str) -> dict[str, float]:
    """Agreement and mutual information (bits) of nuisance class and label."""
    from sklearn.metrics import mutual_info_score

    z = nuisance_classes(images, variant).numpy()
    y = torch.as_tensor(labels).numpy()
    return {"aligned": round(float((z == y).mean()), 4),
            "mi_bits": round(float(mutual_info_score(y, z) / np.log(2)), 4)}


def plot_frontier(records: list[dict], path: str | Path) -> Path:
    """Recognised against mutual information: a colour per generator, a marker per kind
    of directions (first-layer shortcut, one later layer, several layers joined).

    Independence is MI 0; the dashed line is the real training images' MI. Points up
    and to the left are better interventions.
    """
    from analysis.plots import _figure, _save

    if not records:
        raise SystemExit("no interventional records to plot; screen some strategies first")

    def kind(layer: str) -> str:
        if "+" in layer:
            return "layers joined"
        return "first layer" if layer.startswith("gen_z") else "one later layer"

    markers = {"first layer": "o", "one later layer": "s", "layers joined": "^"}
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    generators = sorted({Path(r["generator"]).parent.name for r in records})
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(generators)}
    for r in records:
        ax.plot(r["mi_bits"], r["recognised"], markers[kind(r["directions_layer"])],
                color=colours[Path(r["generator"]).parent.name], alpha=0.75)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=g)
               for g, c in colours.items()]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=k, fillstyle="none")
                for k, m in markers.items()]
    handles.append(ax.axvline(records[0]["reference_real"]["mi_bits"], ls="--", c="grey",
                              lw=1, label="real training images"))
    ax.set_xlabel("mutual information of nuisance class and label (bits)")
    ax.set_ylabel("recognised by the shape reader")
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path


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
    digest = file_digest(Path(a.generator) / "generator.pt")  # fails early on a bad path
    records = screen(a, digest) if a.strategies else []
    if a.plot:
        if not Path(a.out).is_file():
            raise SystemExit(f"{a.out} not found: --plot draws the records of --out; "
                             "screen some strategies into it first")
        every = [r for r in json.loads(Path(a.out).read_text()) if r["variant"] == a.variant
                 and not r["strategy"].startswith("observational")]
        print("wrote", plot_frontier(every, a.plot))
    return records


def screen(a: argparse.Namespace, digest: str) -> list[dict]:
    """Score every strategy of ``a.strategies``; append and return their records."""
    from bench.small_gan_eval import classify, strip_png, train_oracle
    from causalkit.datasets import build_split
    from generators.directions import fit_layerwise_directions
    from generators.small_gan import chunk_sensitivity, load_small_gan
    from generators.strategies import Observational, parse_strategy
    from robust_training.sources import generated_pool
    from robust_training.streams import to_float

    oracle, oracle_ood = train_oracle(a.source, Path(a.oracle))
    train = build_split(a.variant, "train", rho=a.rho, seed=0, source=a.source, n=10000,
                        cache=False)
    real = {"strategy": "real training images",
            **tie(torch.as_tensor(train.images), torch.as_tensor(train.labels), a.variant),
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
        rec = {"benchmark": "genint_screen", "strategy": text, **tie(x, y, a.variant),
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
            strip_png(rows, Path(a.strips) / f"{name}.png", scale=2)
    return records


if __name__ == "__main__":
    main()
