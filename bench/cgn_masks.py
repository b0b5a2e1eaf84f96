"""Benchmark: how well a trained CGN's shape mechanism finds the digit, per run.

The synthetic MNIST variants know the truth a CGN must discover: each training image
was composed from an MNIST digit, so the digit's own pixels (intensity > 127) are the
mask the shape mechanism should produce. For a finished pipeline run
(``bench/cgn_mnist.py --out DIR``, a CGN trained with an encoder) this abducts the
masks of real training images, ``m = f_shape(y, E[u | x, y])``, and scores them against
the digits: mean IoU of the binarised masks (> 0.5), overall and per class. It needs no
classifier, so it judges a CGN recipe in seconds instead of the classifier's minutes;
the OOD accuracy of ``bench/cgn_mnist.py`` stays the measure that counts. Each run
appends a record to ``bench/results/cgn_masks.json`` and writes ``masks.png`` into the
run folder (rows: real images, abducted masks, true digits). ``--masks colour`` scores
the masks the pipeline's ``--masks colour`` abducts from the CGN's
(:func:`generators.cgn.mnist.colour.colour_masks`, over all training images) instead, into
``colour_masks.png``.

With ``--train ITERATIONS`` it first trains just the CGN into ``RUN/cgn``, as the full
pipeline preset would (fast recipe, its overrides, plus ``--cgn-set``), so recipes can be
compared on their masks without the classifier:

    python bench/cgn_masks.py --run runs/w0_tv
    python bench/cgn_masks.py --run runs/sweep/I --train 1000 --variant wildlife \
        --cgn-set recon_features=10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from analysis.masks import mask_iou
from causalkit.errors import CausalKitError
from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cgn_masks.json"
SHARED = ROOT.parent / "shared" / "data"


def train_only(args: argparse.Namespace) -> None:
    """Train the CGN the full pipeline would train, without the rest of the pipeline."""
    import time

    import torch

    from causalkit.datasets import build_split
    from generators.cgn.mnist.train import train_cgn
    from robust_training.experiments.cgn_mnist import cgn_train_config, preset_config
    from robust_training.experiments.cgn_runs import parse_cgn_override

    torch.set_num_threads(1)
    try:
        overrides = dict(parse_cgn_override(a) for a in args.cgn_set)
    except CausalKitError as exc:
        raise SystemExit(str(exc)) from None
    config = preset_config(
        args.variant, seed=args.seed, source=f"mnist:{SHARED / 'mnist'}",
        textures=str(SHARED / "textures") if args.variant == "wildlife" else None,
        cgn_iterations=args.train, rendering=args.rendering, cgn_overrides=overrides)
    data = config.data
    train = build_split(data.dataset, "train", rho=1.0, seed=config.seed, n=data.n_train,
                        source=data.source, textures=data.textures, rendering=data.rendering)
    t0 = time.perf_counter()
    run = Path(args.run)
    train_cgn(torch.as_tensor(train.images), torch.as_tensor(train.labels),
              cgn_train_config(config), run / "cgn", progress=False)
    stub = {"variant": args.variant, "results": {}, "cgn_seconds": time.perf_counter() - t0,
            "config": config.to_dict()}
    (run / "results.json").write_text(json.dumps(stub, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a bench/cgn_mnist.py --out folder")
    p.add_argument("--n", type=int, default=2000, help="training images to abduct")
    p.add_argument("--train", type=int, default=None, metavar="ITERATIONS",
                   help="first train the full preset's CGN into RUN/cgn")
    p.add_argument("--variant", default="wildlife", help="with --train")
    p.add_argument("--seed", type=int, default=0, help="with --train")
    p.add_argument("--rendering", default="pad", help="with --train: pad | paper")
    p.add_argument("--cgn-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="with --train: override a CGNTrainConfig field (repeatable)")
    p.add_argument("--masks", default="cgn", choices=("cgn", "colour"),
                   help="score the CGN's masks or the colour masks the pipeline's "
                        "--masks colour abducts from them")
    args = p.parse_args()
    if args.train is not None:
        train_only(args)

    import torch

    from causalkit.datasets import build_split
    from causalkit.datasets.build import get_variant
    from causalkit.datasets.mnist import resolve_source
    from generators.cgn.mnist.checkpoint import load_generator
    from generators.cgn.mnist.colour import colour_masks
    from generators.cgn.mnist.encoder import load_encoder
    from generators.images import save_grid, to_float
    from robust_training.experiments.cgn_mnist import VARIANTS, config_of_record
    from robust_training.experiments.cgn_runs import data_kwargs

    torch.set_num_threads(1)
    run = Path(args.run)
    for need in ("results.json", "cgn/generator.pt", "cgn/encoder.pt"):
        if not (run / need).is_file():
            raise SystemExit(f"{run / need} is missing: --run takes a finished "
                             "bench/cgn_mnist.py run whose CGN was trained here with the "
                             "fast recipe (it has an encoder), or use --train")
    res = json.loads((run / "results.json").read_text())
    cfg = config_of_record(res)
    data_kw = data_kwargs(res)
    rendering = data_kw["rendering"]
    name = VARIANTS[res["variant"]]
    train = build_split(name, "train", rho=1.0, seed=cfg["seed"], n=cfg["n_train"], **data_kw)
    pick = np.random.default_rng(0).permutation(len(train))[:args.n]
    digits = get_variant(name).alpha_masks(resolve_source(cfg["source"]).train.images,
                                           rendering)
    truth = digits[train.nuisances["digit"][pick]] > 127
    cgn = load_generator(run / "cgn" / "generator.pt")
    enc = load_encoder(run / "cgn" / "encoder.pt")
    x = torch.as_tensor(train.images[pick])
    y = torch.as_tensor(train.labels[pick]).long()

    def cgn_masks(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            mu, _ = enc(to_float(images), labels)
            return cgn.shape(labels, mu[:, 0])  # mu: (N, 1, latent), the shape noise

    if args.masks == "colour":  # the colour densities need every training image's mask
        x_all, y_all = torch.as_tensor(train.images), torch.as_tensor(train.labels).long()
        m_all = torch.cat([cgn_masks(x_all[i:i + 2000], y_all[i:i + 2000])
                           for i in range(0, len(y_all), 2000)])
        mask = colour_masks(x_all, y_all, m_all, cgn.n_classes)[pick][:, 0].numpy()
    else:
        mask = cgn_masks(x, y)[:, 0].numpy()
    scores = mask_iou(mask > 0.5, truth)
    labels = y.numpy()
    record = {
        "run": str(run), "variant": res["variant"], "seed": cfg["seed"],
        "cgn_overrides": cfg.get("cgn_overrides", {}), "n": len(pick), "masks": args.masks,
        "mask_iou": round(float(scores.mean()), 4),
        "per_class_iou": [round(float(scores[labels == k].mean()), 3) for k in range(10)],
        "mask_mean": round(float(mask.mean()), 4),
        "truth_mean": round(float(truth.mean()), 4),
        "cgn_ood": res["results"].get("cgn", {}).get("ood"),
        "machine": machine_info(),
    }
    grid = torch.cat([x[:10].float() / 127.5 - 1,
                      torch.as_tensor(mask[:10, None]).expand(-1, 3, -1, -1) * 2 - 1,
                      torch.as_tensor(truth[:10, None]).float().expand(-1, 3, -1, -1) * 2 - 1])
    save_grid(grid, run / ("masks.png" if args.masks == "cgn" else "colour_masks.png"),
              nrow=10, upscale=2)
    append_record(RESULTS, record)
    print(json.dumps({k: v for k, v in record.items() if k != "machine"}))


if __name__ == "__main__":
    main()
