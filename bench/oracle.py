"""Benchmark: how far a classifier trained on *unconfounded* real data reads a variant's
OOD split -- the ceiling a CGN's counterfactuals can at best bring a classifier to.

A CGN's counterfactual set stands in for real images whose nuisances (colours,
textures) are independent of the label. This trains the CGN benchmark's classifier
(the variant's full preset: its model, optimiser and classifier protocol, ERM) on
real images of the variant drawn with ``rho`` = 0.1 (nuisances almost independent of
the label) and scores it on the OOD split. The gap between this and the ``cgn`` row of
``bench/cgn_mnist.py`` is what the counterfactuals lose against real interventional
data; this figure is what the classifier itself can read.

On double-colored MNIST the digit colour of class k equals the background colour of
class (k + 4) mod 10 (the official palettes), so about 10 % of the OOD images show a
faint digit (:func:`causalkit.datasets.nuisances.digit_visible`); the record splits the
accuracy into visible and faint digits, and, on the default rendering, adds the small
LeNet oracle of ``bench/small_gan_eval.py`` (:class:`robust_training.oracle.ShapeOracle`;
trained once, on seed 0, cached in runs/oracle_lenet). One record per run in
``bench/results/oracle.json``.

    python bench/oracle.py --variant double-colored --seed 0
    python bench/oracle.py --variant wildlife --precision bf16 --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "oracle.json"
SHARED = ROOT.parent / "shared" / "data"


def _scores(pred: np.ndarray, labels: np.ndarray, vis: np.ndarray) -> dict[str, float]:
    ok = pred == labels
    return {"ood": round(float(ok.mean()), 4), "ood_visible": round(float(ok[vis].mean()), 4),
            "ood_faint": round(float(ok[~vis].mean()), 4) if (~vis).any() else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="double-colored",
                   help="colored | double-colored | wildlife")
    p.add_argument("--source", default="mnist:" + str(SHARED / "mnist"))
    p.add_argument("--textures", default=str(SHARED / "textures"),
                   help="Wildlife texture folder (ignored by the colour variants)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rho", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=None,
                   help="default: the full preset's (its protocol's epochs for 'paper')")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default=None, help="default: the full preset's")
    p.add_argument("--precision", default="fp32", help="fp32 | bf16 (autocast)")
    p.add_argument("--no-lenet", action="store_true", help="skip the LeNet oracle")
    p.add_argument("--texture-ood", nargs="*", default=[],
                   help="Wildlife: texture sets to score beside the OOD split "
                        "(causalkit.datasets.texture_sets), e.g. photos photos-gray")
    p.add_argument("--rendering", default=None,
                   help="pad | paper (the official code's); default: the full preset's")
    a = p.parse_args()

    import torch

    from causalkit.datasets import build_split
    from causalkit.datasets.nuisances import digit_visible
    from generators.images import to_float
    from robust_training.engine import predict, train_classifier
    from robust_training.experiments.cgn_mnist import VARIANTS, preset_config
    from robust_training.oracle import classify, train_shape_oracle
    from robust_training.streams import TrainData

    torch.set_num_threads(a.threads)
    overrides = {k: v for k, v in (("model", a.model), ("rendering", a.rendering)) if v}
    config = preset_config(a.variant, seed=a.seed, precision=a.precision, **overrides)
    cfg, rendering = config.classifier, config.data.rendering
    name = VARIANTS[a.variant]
    common = dict(seed=a.seed, source=a.source, rendering=rendering,
                  textures=a.textures if a.variant == "wildlife" else None)
    train = build_split(name, "train", rho=a.rho, **common)
    ood = build_split(name, "ood", **common)
    labels, vis = np.asarray(ood.labels), digit_visible(np.asarray(ood.images))
    t0 = time.perf_counter()
    cnn, _ = train_classifier("erm", TrainData.real_images(train.images, train.labels),
                              epochs=cfg.epochs, steps=a.steps or cfg.steps,
                              batch_size=cfg.batch_size, lr=cfg.lr, schedule=cfg.schedule,
                              optimizer=cfg.optimizer, shift=cfg.shift, model=cfg.model,
                              precision=config.precision, seed=a.seed, device="cpu")
    seconds = time.perf_counter() - t0
    record = {
        "variant": a.variant, "seed": a.seed, "rho": a.rho, "source": a.source,
        "rendering": rendering, "classifier_protocol": cfg.protocol,
        "visible_fraction": round(float(vis.mean()), 4),
        "cnn": {"model": cfg.model, "steps": a.steps or cfg.steps, "epochs": cfg.epochs,
                "optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size,
                "precision": config.precision, "seconds": round(seconds, 1),
                **_scores(predict(cnn, ood.images), labels, vis)},
        "machine": machine_info(),
    }
    if a.texture_ood:
        from causalkit.datasets.texture_sets import texture_set_folder

        record["cnn"]["ood_textures"] = {}
        for spec in a.texture_ood:
            ts = build_split(name, "ood", **{**common, "textures": texture_set_folder(
                spec, training=a.textures)})
            record["cnn"]["ood_textures"][spec] = round(
                float((predict(cnn, ts.images) == np.asarray(ts.labels)).mean()), 4)
    if a.variant == "double-colored" and rendering == "pad" and not a.no_lenet:
        # the LeNet oracle is trained on this rendering of double-colored MNIST
        lenet, _ = train_shape_oracle(a.source, ROOT / "runs" / "oracle_lenet")
        lenet_pred = classify(lenet, to_float(torch.as_tensor(np.asarray(ood.images)))).numpy()
        record["lenet_oracle"] = {"steps": 800, **_scores(lenet_pred, labels, vis)}
    append_record(RESULTS, record)
    print({k: record.get(k) for k in ("variant", "seed", "visible_fraction", "cnn",
                                      "lenet_oracle")})


if __name__ == "__main__":
    main()
