"""ResNet-50 training images/s with GenInt's on-the-fly interventional stream against ERM.

GenInt trains on real images plus interventions that BigGAN-deep-256 generates during
training. Generating them on the training device costs time; the issue's target is that
a step with the generated stream runs at >= 80 % of plain ERM's images/s, on the same
GPU and at the same batch.

Both runs are :func:`robust_training.engine.fit` with ``model="resnet50",
stem="imagenet"`` (torchvision's ResNet-50, 1,000 classes), SGD, for ``--warmup +
--steps`` steps; the rate counts the last ``--steps`` steps (a CUDA synchronisation at
the first timed step and at the end):

The classifier runs under float16 AMP on CUDA (``FitConfig.amp``) unless ``--precision
bf16`` asks for bfloat16 autocast.

* **erm**: ``--real-batch + --int-batch`` real rows a step, from memory (random uint8
  images at ``--size``; decoding from disk is measured by the data-loading benchmark,
  not here, so that the comparison isolates the generator);
* **genint**: ``--real-batch`` real rows from memory plus ``--int-batch`` rows of
  :class:`robust_training.generated_source.OnTheFlySource` (BigGAN-deep-256 with random
  weights -- weights do not change the cost --, the GANSpace shortcut directions of
  ``gen_z``, the strategy ``--strategy`` (default the paper's ``genint:t=1,k=60``),
  generated in ``--gen-precision`` and resized to
  ``--size``), joined by :class:`robust_training.streams.Concat`, objective ``genint``.

On CUDA the source generates step ``t+1``'s interventions on a side stream while the
classifier trains on step ``t``; on a CPU it generates them in line, so a CPU record
says what the generator costs, not what overlap achieves. A CPU cannot afford the GPU
settings: ``--cpu-smoke`` runs 1 real + 1 generated image a step at 224 for 2 timed steps
(one warm-up step; records are labelled ``mode: cpu-smoke``).

    python bench/genint_train_throughput.py                      # GPU: 256 + 64 at 224
    python bench/genint_train_throughput.py --precision bf16
    python bench/genint_train_throughput.py --cpu-smoke          # this CPU, labelled

One record per run is appended to ``bench/results/genint_train_throughput.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch

from causalkit.records import append_record, machine_info
from generators.biggan import random_biggan
from generators.cgn.imagenet.model import BIGGAN_DEEP_256
from generators.sampling import make_sampler
from robust_training.engine import FitConfig, fit
from robust_training.streams import Concat, MultiStream, Stream

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "genint_train_throughput.json"
TARGET = 0.8


class Timed:
    """A batch source that notes when the first timed step's batch is asked for (after a
    device synchronisation), so the rate excludes the warm-up steps."""

    def __init__(self, source: Any, first_timed: int, device: torch.device) -> None:
        self.source, self.first_timed, self.device = source, first_timed, device
        self.t0: float | None = None

    def batch(self, step: int, **kw: Any) -> dict[str, torch.Tensor]:
        if step == self.first_timed:
            _sync(self.device)
            self.t0 = time.perf_counter()
        return self.source.batch(step, **kw)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def real_images(n: int, size: int, batch: int, seed: int = 0) -> MultiStream:
    """``n`` random uint8 images with 1,000-class labels, ``batch`` rows a step."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return MultiStream([Stream("real", x, torch.randint(0, 1000, (n,), generator=g), batch)],
                       seed=seed)


def rate(source: Any, objective: str, images_per_step: int, args: argparse.Namespace,
         device: torch.device) -> dict[str, float]:
    """Images/s of ``--steps`` timed steps of ResNet-50 training on ``source``."""
    timed = Timed(source, args.warmup, device)
    cfg = FitConfig(objective=objective, steps=args.warmup + args.steps, model="resnet50",
                    stem="imagenet", n_classes=1000, optimizer="sgd", lr=0.1,
                    weight_decay=1e-4, precision=args.precision, seed=0,
                    log_every=10**6, checkpoint_every=10**6,
                    hparams={"lambda1": 0.2} if objective == "genint" else {})
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fit(timed, cfg, None, device=device, progress=False)
    _sync(device)
    seconds = time.perf_counter() - timed.t0
    out = {"images_per_s": round(args.steps * images_per_step / seconds, 3),
           "seconds": round(seconds, 3)}
    if device.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def generation_rate(make_source: Any, args: argparse.Namespace, device: torch.device
                    ) -> dict[str, float]:
    """Images/s of the interventional source alone (no classifier), over the timed steps."""
    source = make_source()
    for step in range(args.warmup):
        source.batch(step, device=device)
    _sync(device)
    t = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.steps):
        source.batch(step, device=device)
    _sync(device)
    seconds = time.perf_counter() - t
    return {"images_per_s": round(args.steps * args.int_batch / seconds, 3),
            "seconds": round(seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-batch", type=int, default=256)
    parser.add_argument("--int-batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", default="fp32", help="classifier: fp32 | bf16")
    parser.add_argument("--gen-precision", default="bf16", help="generator: fp32 | bf16")
    parser.add_argument("--strategy", default="genint:t=1,k=60",
                        help="the paper's (generators.strategies.GenIntStrategy)")
    parser.add_argument("--no-overlap", action="store_true",
                        help="generate in line on CUDA too (the overlap's ablation)")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="batch 1 + 1 at 224, 1 warm-up and 2 timed steps, on the CPU")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.cpu_smoke:
        args.real_batch, args.int_batch, args.steps, args.warmup = 1, 1, 2, 1
        args.device = "cpu"
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    mode = "cpu-smoke" if args.cpu_smoke else device.type

    from robust_training.generated_source import OnTheFlySource

    t = time.perf_counter()
    # random weights, stored batch-norm statistics left uncalibrated: both change the
    # images' values, not the cost of making them
    generator = random_biggan(BIGGAN_DEEP_256, seed=0, calibrate=False, device=device)
    sampler = make_sampler(generator, args.strategy).sampler
    setup_s = round(time.perf_counter() - t, 1)
    pool = max(64, 4 * (args.real_batch + args.int_batch))
    erm = rate(real_images(pool, args.size, args.real_batch + args.int_batch), "erm",
               args.real_batch + args.int_batch, args, device)
    def onthefly() -> OnTheFlySource:
        return OnTheFlySource(generator, sampler, kind="int", batch_size=args.int_batch,
                              seed=0, size=args.size, precision=args.gen_precision,
                              overlap=not args.no_overlap, steps=args.warmup + args.steps)

    genint = rate(Concat([real_images(pool, args.size, args.real_batch), onthefly()]),
                  "genint", args.real_batch + args.int_batch, args, device)
    generation = generation_rate(onthefly, args, device)
    ratio = round(genint["images_per_s"] / erm["images_per_s"], 3)
    record = {"benchmark": "genint_train_throughput", "mode": mode, "device": str(device),
              "model": "resnet50", "generator": "biggan-deep-256 (random weights)",
              "real_batch": args.real_batch, "int_batch": args.int_batch, "size": args.size,
              "steps": args.steps, "warmup": args.warmup, "precision": args.precision,
              "classifier_fp16_amp": device.type == "cuda" and args.precision == "fp32",
              "gen_precision": args.gen_precision, "strategy": args.strategy,
              "overlap": not args.no_overlap and device.type == "cuda",
              "setup_s": setup_s, "erm": erm, "genint": genint, "generation": generation,
              "ratio": ratio, "load_average": [round(v, 2) for v in os.getloadavg()],
              "target": TARGET, "meets_target": ratio >= TARGET,
              "machine": machine_info()}
    print(f"{mode}: ERM {erm['images_per_s']} img/s, GenInt on the fly "
          f"{genint['images_per_s']} img/s, ratio {ratio} (target >= {TARGET}); the "
          f"generator alone {generation['images_per_s']} img/s")
    if not args.no_record:
        append_record(RESULTS, record)


if __name__ == "__main__":
    main()
