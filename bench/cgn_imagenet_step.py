"""Benchmark: a full-size ImageNet CGN takes optimisation steps on the CPU (smoke + cost).

Builds the ImageNet CGN at its real size -- four BigGAN-deep-256 generators with random
weights (no BatchNorm calibration: the cost of a step does not depend on the weights),
the full U^2-Net (random init) and VGG16 perceptual features (random init) -- and runs
:func:`generators.cgn.imagenet.train.train_cgn_imagenet` for ``--steps`` optimiser steps
of one iteration each (``batch_acc=1``) at batch 1, the official settings otherwise.
It records the build time, the seconds of each step and the peak resident memory of the
process (``ru_maxrss``). It is the issue's full-size smoke test: it stays out of CI.

    python bench/cgn_imagenet_step.py --steps 2 --threads 2

One record per run is appended to ``bench/results/cgn_imagenet_step.json``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from causalkit.records import append_record, machine_info  # noqa: E402
from generators.cgn.imagenet import build_cgn_imagenet  # noqa: E402
from generators.cgn.imagenet.model import BIGGAN_DEEP_256  # noqa: E402
from generators.cgn.imagenet.train import CGNImageNetTrainConfig, train_cgn_imagenet  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cgn_imagenet_step.json"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="optimiser steps (1 iteration each)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--u2net", default="u2net", help="u2net | u2netp")
    parser.add_argument("--precision", default="fp32", help="fp32 | bf16")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    torch.set_num_threads(args.threads)
    from generators.perceptual import vgg_features

    t0 = time.perf_counter()
    cgn = build_cgn_imagenet(BIGGAN_DEEP_256, u2net=args.u2net, seed=0, device="cpu",
                             calibrate=False)
    features = vgg_features("vgg16")
    build_s = time.perf_counter() - t0
    rss_built = _rss_mib()
    config = CGNImageNetTrainConfig(episodes=args.steps, batch_acc=1, precision=args.precision,
                                    checkpoint_every=10**9, sample_every=10**9)
    stamps: list[float] = []
    out = tempfile.mkdtemp(prefix="cgn_imagenet_step_")
    try:
        start = time.perf_counter()
        train_cgn_imagenet(cgn, config, out, features=features, progress=False,
                           callback=lambda _i: stamps.append(time.perf_counter()))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    ends = [start, *stamps]
    steps = [round(b - a, 2) for a, b in zip(ends[:-1], ends[1:], strict=True)]
    params = {name: sum(p.numel() for p in cgn.mechanism(name).parameters())
              for name in ("shape", "texture", "background")}
    record = {
        "bench": "cgn_imagenet_step", "device": "cpu", "precision": args.precision,
        "threads": args.threads, "biggan": "biggan-deep-256 (random, uncalibrated)",
        "u2net": f"{args.u2net} (random)", "features": "vgg16 (random)", "batch_size": 1,
        "steps": args.steps, "seconds_per_step": steps, "build_s": round(build_s, 1),
        "peak_rss_mib_after_build": round(rss_built), "peak_rss_mib": round(_rss_mib()),
        "trainable_parameters": params, "machine": machine_info(),
        **({"note": args.note} if args.note else {}),
    }
    append_record(args.out, record)
    print(f"build {build_s:.1f} s; steps {steps} s; peak RSS {record['peak_rss_mib']} MiB "
          f"({args.threads} threads, {args.precision})")


if __name__ == "__main__":
    main()
