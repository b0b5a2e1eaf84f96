"""Benchmark: the CGN pipeline on full MNIST (or the embedded subset), one record per run.

Each run appends a record (accuracies per method, wall time per stage, peak memory,
machine facts) to ``bench/results/cgn_mnist.json``, so seeds and variants can run in
separate sessions or machines. ``--summary`` prints mean +- std over the seeds.

    python bench/cgn_mnist.py --variant colored --seed 0            # full MNIST
    python bench/cgn_mnist.py --variant colored --cgn official      # official weights
    python bench/cgn_mnist.py --summary
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from causalkit.records import append_record, machine_info

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results" / "cgn_mnist.json"
SHARED = ROOT.parent / "shared" / "data"


def run(args: argparse.Namespace) -> dict:
    import torch

    from robust_training.experiments.cgn_mnist import format_results, preset_config, run_cgn_mnist
    from robust_training.experiments.cgn_runs import parse_cgn_override

    torch.set_num_threads(args.threads)
    mnist = SHARED / "mnist"
    source = args.source or (f"mnist:{mnist}" if mnist.is_dir() else "embedded")
    kw = dict(source=source, cgn=args.cgn, seed=args.seed,
              official_root=str(SHARED / "cgn_official"),
              textures=str(SHARED / "textures") if (SHARED / "textures").is_dir() else None)
    for name in ("cgn_iterations", "cgn_batch", "cgn_ngf", "n_generated", "epochs",
                 "n_train", "lambda_texture", "per_noise", "steps", "schedule", "shift",
                 "model", "cgn_aux_weight", "rendering", "classifier_protocol", "optimizer",
                 "lr", "batch_size", "precision", "backgrounds", "masks", "palette",
                 "palette_target", "contrast", "random_texture", "random_background",
                 "random_family"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if args.cgn_set:  # on top of the variant's preset overrides
        kw["cgn_overrides"] = dict(parse_cgn_override(a) for a in args.cgn_set)
    if args.methods:
        kw["methods"] = tuple(args.methods.split(","))
    if args.texture_ood is not None:
        kw["texture_ood"] = tuple(args.texture_ood)
    config = (preset_config(preset=args.preset, **kw) if args.preset else
              preset_config(args.variant, quick=args.quick, **kw))
    out = Path(args.out or tempfile.mkdtemp(prefix="cgn_bench_"))
    record = run_cgn_mnist(config, out, device=args.device, progress=True)
    record["machine"] = machine_info()
    record["out"] = str(out)
    record["preset"] = args.preset or ("quick" if args.quick else "full")
    append_record(RESULTS, record)
    print(format_results(record))
    return record


def _row(method: str, runs: list[dict]) -> str:
    ood = np.array([r["results"][method]["ood"] for r in runs]) * 100
    tr = np.array([r["results"][method]["train"] for r in runs]) * 100
    if len(runs) == 1:  # one seed: no spread to report
        return f"  {method:<14} train {tr[0]:5.1f}   ood {ood[0]:5.1f}   (1 run)"
    return (f"  {method:<14} train {tr.mean():5.1f} +- {tr.std(ddof=1):4.1f}   "
            f"ood {ood.mean():5.1f} +- {ood.std(ddof=1):4.1f}   ({len(runs)} runs)")


def _numbers_as_floats(value: object) -> object:
    # "--cgn-set recon_features=10" records 10 where the preset records 10.0
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _device_type(record: dict) -> str:
    return record.get("device", "cpu").split(":")[0]  # records before the field: CPU


def summary() -> None:
    """Mean +- std over the runs whose settings (pipeline and CGN training) and device
    type agree except for the seed (the same seed trains differently on a GPU).

    ``irm_penalty`` changes only the IRM rows, so runs that differ in it share a group
    and their IRM rows are averaged per penalty (records from before the option
    existed ran with 100).
    """
    from dataclasses import asdict

    from generators.cgn.mnist.train import CGNTrainConfig
    from robust_training.experiments.cgn_mnist import CGNMnistConfig, config_of_record

    records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    # pipeline fields tried and removed since, with the value that meant "not used"
    removed_defaults = {"foregrounds": "generated"}
    defaults = asdict(CGNTrainConfig())
    # a pipeline field added later (rendering, optimizer, ...) counts as its default
    pipeline_defaults = CGNMnistConfig().flat()
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        cfg = {k: v for k, v in {**pipeline_defaults, **config_of_record(r)}.items()
               if k not in ("seed", "irm_penalty") and removed_defaults.get(k, ...) != v}
        # the CGN's settings as today's config reads them: a field added later counts
        # as its default, one removed since is dropped (its non-default uses are
        # still in the pipeline config's cgn_overrides)
        cgn_cfg = ({**defaults, **{k: v for k, v in r["cgn_train_config"].items()
                                   if k in defaults}} if r.get("cgn_train_config") else {})
        cgn_cfg.pop("seed", None)
        # the CGN recipe's full settings; runs on a GPU never average with CPU runs
        key = [r["source"], _device_type(r), cfg, cgn_cfg]
        groups[json.dumps(_numbers_as_floats(key), sort_keys=True)].append(r)
    for runs in groups.values():
        cfg = {k: v for k, v in config_of_record(runs[0]).items()
               if removed_defaults.get(k, ...) != v}
        seeds = sorted(config_of_record(r)["seed"] for r in runs)
        extra = "".join(f", {k}={cfg[k]}" for k in ("rendering", "classifier_protocol", "model",
                                                    "precision", "backgrounds", "masks",
                                                    "palette")
                        if cfg.get(k, pipeline_defaults[k]) != pipeline_defaults[k])
        # a pipeline field tried and removed since (foregrounds="real") still names its group
        extra += "".join(f", {k}={v} (option removed)" for k, v in cfg.items()
                         if k not in pipeline_defaults)
        if cfg["cgn"] == "train":
            extra += f", {cfg['cgn_iterations']} CGN iterations at ngf {cfg['cgn_ngf']}"
        # runs that found their CGN trained (copied in, or resumed): stage times without it
        # (records from before cgn_resumed_at: no real CGN trains 100 iterations a second)
        reused = sum(r.get("cgn_resumed_at", 0) > 0 or r["seconds"].get("cgn", 1e9)
                     < 0.01 * cfg["cgn_iterations"] for r in runs if cfg["cgn"] == "train")
        if reused:
            extra += f", CGN training reused in {reused} run(s)"
        device = _device_type(runs[0])  # one per group: it is part of the key
        if device != "cpu":
            extra += f", device={device}"
        print(f"\n{runs[0]['variant']} [cgn={cfg['cgn']}, recipe={cfg.get('cgn_recipe')}, "
              f"{runs[0]['source']}{extra}] seeds={seeds}")
        for method in runs[0]["results"]:
            if not method.startswith("irm"):
                print(_row(method, runs))
                continue
            by_penalty: dict[float, list[dict]] = defaultdict(list)
            for r in runs:
                by_penalty[config_of_record(r).get("irm_penalty", 100.0)].append(r)
            for penalty, rs in sorted(by_penalty.items()):
                print(_row(method, rs) + f" penalty {penalty:g}")
        tot = np.array([r["seconds_total"] for r in runs])
        print(f"  total time {np.median(tot):.0f}s (median), stages: "
              + ", ".join(f"{k} {np.median([r['seconds'][k] for r in runs]):.0f}s"
                          for k in runs[0]["seconds"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=["colored", "double-colored", "wildlife"],
                   default="colored")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cgn", default="train", help="train | official | PATH")
    p.add_argument("--quick", action="store_true", help="the quick preset")
    p.add_argument("--preset", default=None, help="a named preset instead of the variant's "
                   "(e.g. wildlife-texture-ood; it brings its own variant)")
    p.add_argument("--source", default=None, help="default: ../shared/data/mnist")
    p.add_argument("--out", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=1)
    for name, typ in (("cgn_iterations", int), ("cgn_batch", int), ("cgn_ngf", int),
                      ("n_generated", int), ("epochs", float), ("n_train", int),
                      ("lambda_texture", float), ("per_noise", int), ("steps", int),
                      ("schedule", str), ("shift", int), ("model", str),
                      ("cgn_aux_weight", float), ("rendering", str),
                      ("classifier_protocol", str), ("optimizer", str), ("lr", float),
                      ("batch_size", int), ("precision", str),
                      ("backgrounds", str), ("masks", str), ("palette", str),
                      ("palette_target", str), ("contrast", float),
                      ("random_texture", float), ("random_background", float),
                      ("random_family", str)):
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    p.add_argument("--cgn-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a CGNTrainConfig field (repeatable), e.g. recon_pool=2")
    p.add_argument("--texture-ood", dest="texture_ood", nargs="*", default=None,
                   help="texture sets to score beside the OOD split (Wildlife), e.g. "
                   "photos photos:object photos:background photos-gray, and the validation "
                   "sets photos-val procedural")
    p.add_argument("--methods", default=None,
                   help="comma-separated subset of the table's methods (default: all)")
    p.add_argument("--summary", action="store_true", help="print mean +- std and exit")
    args = p.parse_args()
    if args.summary:
        summary()
    else:
        run(args)


if __name__ == "__main__":
    main()
