"""Benchmark: milliseconds per classifier training step, per model and precision.

Times the optimisation step of the CGN pipeline's classifiers (the paper's CNN and its
variants, :data:`robust_training.models.MODELS`) on random images, in float32 and
under bfloat16 autocast (:mod:`causalkit.precision`), with the paper protocol's
batch (64) and optimiser (Adadelta) by default. A step's cost does not depend on what
the images show. Appends one record per model and precision to
``bench/results/classifier_step.json``::

    python bench/classifier_step.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]


def time_steps(model_name: str, precision: str, *, steps: int, skip: int,
               batch_size: int) -> list[float]:
    """Seconds of each training step after the first ``skip``."""
    import torch
    import torch.nn.functional as F

    from causalkit.precision import autocast
    from robust_training.models import build_model

    model = build_model(model_name, ("shape",))
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 3, 32, 32, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (batch_size,), generator=gen)
    times = []
    for _ in range(skip + steps):
        t0 = time.perf_counter()
        with autocast("cpu", precision):
            loss = F.cross_entropy(model(x)["shape"], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[skip:]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="cnn,cnn-cn")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--skip", type=int, default=10, help="untimed first steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--note", default="", help="e.g. what else ran on the machine")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "classifier_step.json"))
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    for model in a.models.split(","):
        for precision in a.precisions.split(","):
            times = time_steps(model, precision, steps=a.steps, skip=a.skip,
                               batch_size=a.batch_size)
            record = {"bench": "classifier_step", "model": model, "precision": precision,
                      "batch_size": a.batch_size, "optimizer": "adadelta",
                      "steps": a.steps, "skip": a.skip,
                      "median_ms_per_step": round(1e3 * statistics.median(times), 2),
                      "min_ms_per_step": round(1e3 * min(times), 2),
                      "machine": machine_info(), **({"note": a.note} if a.note else {})}
            append_record(a.out, record)
            print(f"{model:8s} {precision}  median {record['median_ms_per_step']:.1f} ms/step "
                  f"(min {record['min_ms_per_step']:.1f}; {a.threads} thread(s))")


if __name__ == "__main__":
    main()
