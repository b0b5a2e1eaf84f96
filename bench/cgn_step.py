"""Benchmark: seconds per CGN training iteration, per variant, at the full preset.

Trains the CGN of ``PipelineConfig.full(variant)`` (width, batch, recipe and the
variant's overrides exactly as the benchmark pipeline) on random images for a few
iterations and records the median time of an iteration after ``--skip`` warm-up
iterations. Images are random because an iteration's cost does not depend on what the
images show; ``bg_warmup`` is set to 0 so that every timed iteration runs every loss
(the pipeline's first 100 iterations are cheaper).

To compare two versions of the code, run this file against each, alternately, with
the same settings; ``--label`` names them in the records:

    python bench/cgn_step.py --variant wildlife --label after
    PYTHONPATH=/path/to/old/checkout python bench/cgn_step.py --variant wildlife \\
        --label before

Each run appends one record per variant to ``bench/results/cgn_step.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

import generators  # noqa: E402
from causalkit.records import append_record, machine_info  # noqa: E402
from generators.cgn.mnist.train import train_cgn  # noqa: E402
from robust_training.experiments.cgn_mnist import cgn_train_config, preset_config  # noqa: E402

VARIANTS = ("colored", "double-colored", "wildlife")


def _commit(path: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def time_iterations(variant: str, iterations: int, skip: int,
                    device: str = "cpu", precision: str = "fp32") -> list[float]:
    """Seconds of each CGN iteration after the first ``skip``, at the full preset."""
    config = replace(cgn_train_config(preset_config(variant, precision=precision)),
                     iterations=skip + iterations, bg_warmup=0, log_every=10**6,
                     sample_every=10**6, checkpoint_every=10**6)
    gen = torch.Generator().manual_seed(0)
    n = 4 * config.batch_size
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.arange(n) % 10
    stamps: list[float] = []
    out = tempfile.mkdtemp(prefix="cgn_step_")
    try:
        start = time.perf_counter()
        train_cgn(images, labels, config, out, device=device, progress=False,
                  callback=lambda _it: stamps.append(time.perf_counter()))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    ends = [start, *stamps]
    return [b - a for a, b in zip(ends[skip:-1], ends[skip + 1:], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", choices=VARIANTS,
                        help="repeatable; default: all three")
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations")
    parser.add_argument("--skip", type=int, default=3, help="untimed first iterations")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32",
                        help="fp32 | bf16 (autocast); fp32 unless given, whatever the preset")
    parser.add_argument("--label", default="", help="names the code version in the record")
    parser.add_argument("--note", default="", help="e.g. what else ran on the machine")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cgn_step.json"))
    args = parser.parse_args()
    if args.iterations < 1 or args.skip < 0:
        parser.error("need --iterations >= 1 and --skip >= 0")
    torch.set_num_threads(args.threads)
    code = Path(generators.__file__).resolve().parents[1]
    for variant in args.variant or VARIANTS:
        times = time_iterations(variant, args.iterations, args.skip, args.device,
                                args.precision)
        record = {
            "bench": "cgn_step", "variant": variant, "label": args.label,
            "code": str(code), "commit": _commit(code), "device": args.device,
            "precision": args.precision,
            "iterations": args.iterations, "skip": args.skip,
            "median_s_per_iteration": round(statistics.median(times), 4),
            "min_s_per_iteration": round(min(times), 4),
            "machine": machine_info(), **({"note": args.note} if args.note else {}),
        }
        append_record(args.out, record)
        print(f"{variant:15s} {args.label:8s} {args.precision} median "
              f"{record['median_s_per_iteration']:.3f} s/it "
              f"(min {record['min_s_per_iteration']:.3f}; {args.iterations} its, "
              f"{args.threads} thread(s); code {code})")


if __name__ == "__main__":
    main()
