"""Ablation: what the pretrained-free texture loss buys (lambda_texture = 0 vs default).

Trains two CGNs that differ only in ``lambda_texture`` (same seed, data, iterations) and
measures, with no pretrained network:

* ``mask_digit_acc``  -- masks read as their class by a CNN trained on MNIST digits;
* ``colour_dist``     -- per-class colour-statistics distance, generated vs real (lower
  is better);
* ``gan_test_acc``    -- a classifier trained on the real images, tested on the CGN's
  label-aligned samples (does each class look like its real class?);
* ``ood_cgn``         -- OOD accuracy of the CGN-heads classifier trained on the
  counterfactuals alone.

Appends one record per setting to ``bench/results/cgn_texture_ablation.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cgn_texture_ablation.json"


def main() -> None:
    import torch

    from causalkit.datasets import build_split, resolve_source
    from generators.cgn.counterfactuals import generate_counterfactuals
    from generators.cgn.mnist.evaluate import (
        colour_distance,
        mask_digit_accuracy,
        train_mask_reader,
    )
    from generators.cgn.mnist.train import preset, train_cgn
    from robust_training.engine import accuracy, train_classifier
    from robust_training.experiments.cgn_mnist import VARIANTS
    from robust_training.streams import TrainData

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="colored", choices=sorted(VARIANTS))
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", default="embedded")
    p.add_argument("--weights", default="0,1", help="lambda_texture values to compare")
    p.add_argument("--n-generated", type=int, default=4000)
    p.add_argument("--epochs", type=float, default=6)
    args = p.parse_args()
    torch.set_num_threads(1)

    name = VARIANTS[args.variant]
    train = build_split(name, "train", rho=1.0, seed=args.seed, source=args.source)
    ood = build_split(name, "ood", seed=args.seed, source=args.source)
    src = resolve_source(args.source)
    reader = train_mask_reader(src.train.images, src.train.labels, seed=args.seed)
    real_clf, _ = train_classifier("erm", TrainData.real_images(train.images, train.labels),
                                   epochs=3, seed=args.seed, progress=False)
    for w in [float(v) for v in args.weights.split(",")]:
        t0 = time.perf_counter()
        cfg = preset(args.variant, iterations=args.iterations, batch_size=args.batch,
                     ngf=args.ngf, seed=args.seed, lambda_texture=w,
                     sample_every=args.iterations)
        out = Path(tempfile.mkdtemp(prefix=f"cgn_abl_{w}_"))
        cgn, log = train_cgn(torch.as_tensor(train.images), torch.as_tensor(train.labels),
                             cfg, out, progress=False)
        aligned = generate_counterfactuals(cgn, 2000, randomise=(), seed=1, progress=False)
        cf = generate_counterfactuals(cgn, args.n_generated, per_noise=4, seed=2,
                                      progress=False)
        heads, _ = train_classifier("cgn-heads", TrainData.generated(
            cf.images, cf.shape, cf.texture, cf.background), epochs=args.epochs,
            seed=args.seed, progress=False)
        record = {
            "variant": args.variant, "lambda_texture": w, "iterations": args.iterations,
            "batch": args.batch, "ngf": args.ngf, "seed": args.seed, "source": args.source,
            "mask_digit_acc": mask_digit_accuracy(cgn, reader, seed=args.seed),
            "colour_dist": colour_distance(aligned.images, aligned.shape, train.images,
                                           train.labels),
            "gan_test_acc": accuracy(real_clf, aligned.images, aligned.shape),
            "ood_cgn": accuracy(heads, ood.images, ood.labels),
            "final_log": log[-1], "seconds": round(time.perf_counter() - t0, 1),
            "samples": str(out / "samples"), "machine": machine_info(),
        }
        append_record(RESULTS, record)
        print({k: v for k, v in record.items() if k not in ("machine", "final_log")},
              flush=True)


if __name__ == "__main__":
    main()
