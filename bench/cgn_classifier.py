"""Benchmark: the CGN-heads classifier on a fixed counterfactual set, one record per run.

Separates the classifier from the CGN: it reads the ``counterfactuals.npz`` of a
finished pipeline run (``bench/cgn_mnist.py --out DIR``), trains the shape / texture /
background heads with the given optimisation settings, and scores the shape head on
the variant's OOD test split. Each run appends a record to
``bench/results/cgn_classifier.json``.

Besides the OOD accuracy it reports ``ood_visible``, the accuracy on the OOD images
whose digit differs from its surroundings at all (largest RGB distance from the corner
pixel >= 20 of 765). On double-colored MNIST the digit colour of class k equals the
background colour of class (k + 4) mod 10 (the official palettes), so about 10 % of the
OOD images, where the two classes drawn happen to form such a pair, show a faint digit
(bench/oracle.py: the paper's CNN guesses those even when trained on unconfounded data).

    python bench/cgn_classifier.py --run runs/dc0 --steps 3000 --schedule cosine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from causalkit.datasets.nuisances import digit_visible
from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cgn_classifier.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a bench/cgn_mnist.py --out folder")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--schedule", default="constant")
    p.add_argument("--optimizer", default="adam", help="adam | adadelta (the paper's)")
    p.add_argument("--precision", default="fp32", help="fp32 | bf16 (autocast)")
    p.add_argument("--shift", type=int, default=0)
    p.add_argument("--aux-weight", type=float, default=None,
                   help="cgn-heads: weight of the texture and background heads "
                        "(default: the run's cgn_aux_weight)")
    p.add_argument("--model", default="cnn", help="cnn | cnn-bn | resnet18 ...")
    p.add_argument("--objective", default="cgn-heads",
                   help="cgn-heads, or erm (one head on the shape label)")
    p.add_argument("--seed", type=int, default=None, help="default: the run's seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--with-real", action="store_true",
                   help="train on the real training images too (the original+cgn method)")
    p.add_argument("--palette", default="none",
                   help="none, or hue, saturation, invert joined by +: a label-free "
                        "colour shift of every counterfactual (generators.cgn.palette)")
    p.add_argument("--textures", default="",
                   help="comma-separated texture sets to score besides the OOD split "
                        "(causalkit.datasets.texture_sets; choose settings on 'procedural')")
    args = p.parse_args()

    import torch

    from causalkit.datasets import build_split
    from generators.cgn.counterfactuals import CounterfactualSet
    from robust_training.engine import accuracy, predict, train_classifier
    from robust_training.experiments.cgn_mnist import VARIANTS, config_of_record
    from robust_training.experiments.cgn_runs import data_kwargs
    from robust_training.streams import TrainData

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    res = json.loads((run / "results.json").read_text())
    cfg = config_of_record(res)
    seed = cfg["seed"] if args.seed is None else args.seed
    name, data_kw = VARIANTS[res["variant"]], data_kwargs(res)
    ood = build_split(name, "ood", seed=cfg["seed"], n=cfg["n_ood"], **data_kw)
    cf = CounterfactualSet.load(run / "counterfactuals.npz")
    from generators.cgn.palette import widen_palette

    data = TrainData.generated(widen_palette(cf.images, args.palette, seed=seed),
                               cf.shape, cf.texture, cf.background)
    if args.with_real:
        train = build_split(name, "train", rho=1.0, seed=cfg["seed"], n=cfg["n_train"],
                            **data_kw)
        data = TrainData.concat(TrainData.real_images(train.images, train.labels), data)
    t0 = time.perf_counter()
    if args.aux_weight is None and args.objective == "cgn-heads":
        args.aux_weight = cfg.get("cgn_aux_weight", 1.0)  # what the pipeline trained with
    hparams = {} if args.aux_weight is None else {"aux_weight": args.aux_weight}
    model, _ = train_classifier(args.objective, data, hparams=hparams,
                                steps=args.steps, model=args.model,
                                batch_size=args.batch_size, lr=args.lr,
                                schedule=args.schedule, shift=args.shift, seed=seed,
                                optimizer=args.optimizer, precision=args.precision,
                                progress=True)
    seconds = time.perf_counter() - t0
    vis = digit_visible(ood.images)
    correct = predict(model, ood.images) == ood.labels
    textures = {}
    for spec in filter(None, args.textures.split(",")):
        from causalkit.datasets.texture_sets import texture_set_folder

        ts = build_split(name, "ood", seed=cfg["seed"], n=cfg["n_ood"], cache=False,
                         **{**data_kw, "textures": texture_set_folder(
                             spec, training=data_kw["textures"])})
        textures[spec] = float((predict(model, ts.images) == ts.labels).mean())
    record = {
        "run": str(run), "variant": res["variant"], "source": res["source"],
        "cgn_seed": cfg["seed"], "seed": seed, "n_counterfactuals": len(cf),
        "settings": {k: getattr(args, k) for k in ("objective", "aux_weight", "model", "steps",
                                                   "batch_size", "lr", "schedule", "shift",
                                                   "optimizer", "precision", "with_real",
                                                   "palette")},
        "train": accuracy(model, data.images, data.labels[:, 0]),
        "ood": float(correct.mean()),
        "ood_visible": float(correct[vis].mean()),
        "ood_textures": textures,
        "visible_fraction": float(vis.mean()),
        "seconds": round(seconds, 1),
        "machine": machine_info(),
    }
    append_record(RESULTS, record)
    print(json.dumps({k: v for k, v in record.items() if k != "machine"}))


if __name__ == "__main__":
    main()
