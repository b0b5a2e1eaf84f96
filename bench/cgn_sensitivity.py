"""Benchmark: a pipeline run's classifier under do() on each nuisance of its variant.

Reads a finished ``bench/cgn_mnist.py --out DIR`` run, loads the classifier one of its
methods trained (``classifiers/METHOD``), and scores it on the variant's in-distribution
test data observationally, under ``do(Z := uniform)`` for each nuisance ``Z`` alone,
and under all at once (the OOD split's intervention), with the accuracy per value of
each nuisance (``analysis.sensitivity``). One record per run in
``bench/results/cgn_sensitivity.json``.

    python bench/cgn_sensitivity.py --run runs/wl0 --method cgn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cgn_sensitivity.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a bench/cgn_mnist.py --out folder")
    p.add_argument("--method", default="cgn", help="whose classifier (default: cgn)")
    p.add_argument("--n", type=int, default=5000, help="samples per world")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    import torch

    from analysis.sensitivity import nuisance_sensitivity
    from causalkit.datasets.build import get_scm, get_variant
    from robust_training.engine import load_model, predict
    from robust_training.experiments.cgn_mnist import VARIANTS, config_of_record
    from robust_training.experiments.cgn_runs import data_kwargs

    torch.set_num_threads(a.threads)
    run = Path(a.run)
    res = json.loads((run / "results.json").read_text())
    cfg, name = config_of_record(res), VARIANTS[res["variant"]]
    model = load_model(run / "classifiers" / a.method)
    scm = get_scm(name, "test", **data_kwargs(res))
    nodes = list(get_variant(name).class_nodes)
    report = nuisance_sensitivity(lambda x: predict(model, torch.as_tensor(x)), scm, nodes,
                                  n=a.n, seed=a.seed)
    record = {"run": str(run), "method": a.method, "variant": res["variant"],
              "cgn_seed": cfg["seed"], "ood": res["results"][a.method]["ood"],
              **report.to_dict(), "machine": machine_info()}
    append_record(RESULTS, record)
    print(report.format())


if __name__ == "__main__":
    main()
