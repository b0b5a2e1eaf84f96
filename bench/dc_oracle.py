"""Benchmark: how far a classifier trained on *unconfounded* real data reads the
double-colored OOD split -- the reference for the CGN benchmark's 93 % target.

In about a tenth of the OOD images the digit colour is within jitter of the
background (see ``bench/cgn_classifier.py``'s ``visible``). This trains the CGN
benchmark's classifier (the paper's CNN, the pipeline's optimisation settings, ERM)
and the small LeNet oracle of ``bench/small_gan_eval.py`` (trained once, on seed 0, and
cached in runs/oracle_lenet) on real double-colored MNIST
with ``rho`` = 0.1 (digit colours almost independent of the label), and scores both on
the OOD split, on its visible and its faint digits. One record per run in
``bench/results/dc_oracle.json``.

    python bench/dc_oracle.py --seed 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._machine import append_record, machine_info  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dc_oracle.json"


def _scores(pred: np.ndarray, labels: np.ndarray, vis: np.ndarray) -> dict[str, float]:
    ok = pred == labels
    return {"ood": round(float(ok.mean()), 4), "ood_visible": round(float(ok[vis].mean()), 4),
            "ood_faint": round(float(ok[~vis].mean()), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="mnist:" + str(ROOT.parent / "shared/data/mnist"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rho", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=None, help="default: the full preset's")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default="cnn",
                   help="cnn (the paper's; the full preset has used cnn-cn since 2026-12-05)")
    p.add_argument("--no-lenet", action="store_true", help="skip the LeNet oracle")
    p.add_argument("--rendering", default="pad", help="pad | paper (the official code's)")
    a = p.parse_args()

    import torch

    from bench.cgn_classifier import visible
    from bench.small_gan_eval import classify, train_oracle
    from causalkit.datasets import build_split
    from robust_training.cgn_mnist import PipelineConfig
    from robust_training.streams import to_float
    from robust_training.trainer import TrainData, predict, train_classifier

    torch.set_num_threads(a.threads)
    cfg = PipelineConfig.full("double-colored", seed=a.seed)
    steps = a.steps or cfg.steps
    train = build_split("double-colored-mnist", "train", rho=a.rho, seed=a.seed,
                        source=a.source, rendering=a.rendering)
    ood = build_split("double-colored-mnist", "ood", seed=a.seed, source=a.source,
                      rendering=a.rendering)
    labels, vis = np.asarray(ood.labels), visible(np.asarray(ood.images))
    t0 = time.perf_counter()
    cnn, _ = train_classifier("erm", TrainData.real_images(train.images, train.labels),
                              steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                              schedule=cfg.schedule, shift=cfg.shift, model=a.model,
                              seed=a.seed, device="cpu")
    seconds = time.perf_counter() - t0
    record = {
        "variant": "double-colored", "seed": a.seed, "rho": a.rho, "source": a.source,
        "rendering": a.rendering,
        "visible_fraction": round(float(vis.mean()), 4),
        "cnn": {"model": a.model, "steps": steps, "lr": cfg.lr,
                "batch_size": cfg.batch_size, "seconds": round(seconds, 1),
                **_scores(predict(cnn, ood.images), labels, vis)},
        "machine": machine_info(),
    }
    if a.rendering == "pad" and not a.no_lenet:  # the LeNet oracle is trained on this rendering
        lenet, _ = train_oracle(a.source, ROOT / "runs" / "oracle_lenet")
        lenet_pred = classify(lenet, to_float(torch.as_tensor(np.asarray(ood.images)))).numpy()
        record["lenet_oracle"] = {"steps": 800, **_scores(lenet_pred, labels, vis)}
    append_record(RESULTS, record)
    print({k: record.get(k) for k in ("seed", "visible_fraction", "cnn", "lenet_oracle")})


if __name__ == "__main__":
    main()
