"""Benchmark: the default correlation probe at MNIST scale on CPU (target <= 5 min).

Runs ``causalkit probe-correlation``'s defaults (8,000 generated training images, 3
epochs, up to 20,000 images per dataset, N in 2, 5, 10, 10 class subsets) with the
ground-truth source ``scm:colored-mnist`` on the biased train split (60,000-image pool),
the in-distribution test split and the OOD split, and appends a JSON record with the
machine information to ``bench/results/probe.json``.

    python bench/probe.py [--source mnist:../shared/data/mnist] [--repeats 1]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_src = ROOT.parent / "shared" / "data" / "mnist"
    parser.add_argument("--source", default=f"mnist:{default_src}" if default_src.is_dir()
                        else None, help="MNIST source (default: ../shared/data/mnist if "
                        "present, else causalkit's default)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "probe.json"))
    args = parser.parse_args()

    import numpy as np
    import torch

    from analysis.probes import check_against_truth, probe_correlation
    from causalkit.records import append_record, machine_info

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    data = ["colored-mnist:train", "colored-mnist:test", "colored-mnist:ood"]
    runs = []
    for r in range(args.repeats):
        start = time.perf_counter()
        rep = probe_correlation("scm:colored-mnist", data,
                                dataset_options={"source": args.source} if args.source else {},
                                seed=r, progress=False, log=print)
        total = time.perf_counter() - start
        runs.append({"seconds": round(total, 2),
                     "train_seconds": round(rep.regressor.seconds, 2),
                     "r2": rep.regressor.r2,
                     "ratios": {d.name: {str(k): [round(v.mean, 3), round(v.std, 3)]
                                         for k, v in d.ratios.items()}
                                for d in rep.datasets},
                     "true_ratios": {d.name: {str(k): round(v.mean, 3)
                                              for k, v in d.true_ratios.items()}
                                     for d in rep.datasets if d.true_ratios},
                     "truth_check": {d.name: {str(k): v["ok"] for k, v in
                                              check_against_truth(d).items()}
                                     for d in rep.datasets if d.name.endswith(":train")},
                     "n": {d.name: d.n for d in rep.datasets}})
        print(f"run {r}: {total:.1f} s (regressor {rep.regressor.seconds:.1f} s, "
              f"R² {rep.regressor.r2:.3f})")
    secs = [x["seconds"] for x in runs]
    record = {"benchmark": "probe-correlation default, colored MNIST (scm source)",
              "machine": machine_info(), "source": args.source, "threads": args.threads,
              "median_seconds": float(np.median(secs)), "target_seconds": 300,
              "within_target": bool(np.median(secs) <= 300), "runs": runs}
    append_record(args.out, record)
    print(f"median {record['median_seconds']:.1f} s (target 300 s); appended to {args.out}")


if __name__ == "__main__":
    main()
