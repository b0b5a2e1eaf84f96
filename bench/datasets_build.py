"""Benchmark: build the 60k training split of each biased MNIST variant.

Times ``build_split(variant, "train", cache=False)`` on the full MNIST training pool
(the source is loaded once, outside the timing), ``--repeats`` times, and records the
median with machine information. Writing the ~184 MB cache file is timed separately
because it measures the disk, not the build.

    python bench/datasets_build.py [--mnist ../shared/data/mnist] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from causalkit.datasets import build_split, resolve_source
from causalkit.datasets.cache import save_arrays
from causalkit.io import atomic_write_text
from causalkit.records import machine_info

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = ("colored-mnist", "double-colored-mnist", "wildlife-mnist")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--textures", default=str(ROOT.parent / "shared" / "data" / "textures"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "datasets_build.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    if not Path(args.mnist).is_dir():
        print(f"MNIST folder {args.mnist} not found; pass --mnist DIR", file=sys.stderr)
        return 2
    start = time.perf_counter()
    src = resolve_source(f"mnist:{args.mnist}")
    load_s = time.perf_counter() - start
    textures = args.textures if Path(args.textures).is_dir() else None

    results = []
    for variant in VARIANTS:
        kw = {"textures": textures} if variant == "wildlife-mnist" else {}
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            split = build_split(variant, "train", source=src, cache=False, **kw)
            times.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            save_arrays(Path(tmp) / "split.npz", split.arrays(), split.meta)
            write_s = time.perf_counter() - t0
        row = {"variant": variant, "n": len(split), "seconds_median": statistics.median(times),
               "seconds_all": [round(t, 3) for t in times], "cache_write_seconds": write_s,
               "textures": split.meta.get("textures_name")}
        results.append(row)
        print(f"{variant:22s} n={len(split)}  median {row['seconds_median']:.2f} s  "
              f"(runs {row['seconds_all']})  cache write {write_s:.2f} s")

    record = {"benchmark": "datasets_build", "source": src.name,
              "load_average_1_5_15": list(os.getloadavg()),
              "source_load_seconds": load_s, "repeats": args.repeats, "results": results,
              "machine": machine_info()}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"source load {load_s:.2f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
