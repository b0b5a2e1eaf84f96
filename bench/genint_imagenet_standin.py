"""GenInt on ImageNet, the CPU stand-in end to end: the ``tiny`` preset's five stages.

The tiny preset (``presets/genint-imagenet/tiny.yaml``) runs the ImageNet pipeline of
:mod:`robust_training.experiments.genint_imagenet` on colored MNIST written as
ImageNet-shaped PNG folders, the 32 x 32 random BigGAN-deep through the real adapter and
a narrow ResNet-18: directions, pre-generation, transfer, the five methods, and the
evaluation on the stand-in's ImageNet-V2 / ImageNet-C layouts and its val folder. One
record per run goes to ``bench/results/genint_imagenet_standin.json``: the seconds of
every stage, each method's training steps and evaluation summary, the machine and its
load (the 1-minute load average at the end: on a shared machine the seconds grow with
it).

    python bench/genint_imagenet_standin.py                   # a fresh temporary folder
    python bench/genint_imagenet_standin.py --out runs/tiny   # kept (a rerun resumes)

Its numbers say that the code runs and what it costs on this machine, not what GenInt
reaches: the generator has random weights.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from causalkit.records import append_record, machine_info
from robust_training.experiments.genint_imagenet import (
    STAGES,
    GenIntImageNetConfig,
    format_stage,
    run_stage,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "genint_imagenet_standin.json"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-record", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    config = GenIntImageNetConfig.resolve("tiny")
    with tempfile.TemporaryDirectory(prefix="genint_tiny_") as tmp:
        out = Path(a.out) if a.out else Path(tmp) / "run"
        seconds, results = {}, {}
        start = time.perf_counter()
        for stage in STAGES:
            record = run_stage(config, stage, out, device="cpu", progress=False)
            seconds[stage] = record["seconds"]
            results[stage] = record["result"]
            print(format_stage(record))
    total = round(time.perf_counter() - start, 3)
    train = {m: {"steps": r["steps"], "seconds": r["seconds"], "streams": r["streams"]}
             for m, r in results["train"].items()}
    rec = {"benchmark": "genint_imagenet_standin", "preset": "tiny",
           "settings": config.to_dict(), "seconds": seconds, "seconds_total": total,
           "generated_images": {k: v.get("images") for k, v in results["generate"].items()},
           "transferred_images": results["transfer"].get("images"),
           "train": train, "evaluation": results["evaluate"]["summary"],
           "loadavg_1min": round(os.getloadavg()[0], 2), "machine": machine_info()}
    if not a.no_record:
        append_record(RESULTS, rec)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
