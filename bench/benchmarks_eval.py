"""Throughput of the OOD evaluators: images/s of each on stand-in folders.

Builds stand-in folders in the released layouts from scikit-image's and matplotlib's
sample photos (ImageNet-V2, ObjectNet, IN-9, ImageNet-C on the fly) and scores a
classifier on them with the registry's evaluators, plus shape bias on the shared
cue-conflict sample when present, and records images/s per evaluator. The GPU target
(data loading never holding a ResNet-50 under 80 % utilisation) is read from the loop's
own timings (``analysis.benchmarks.inference.Predictions.timings``: data wait vs.
compute); this script does not record them yet, and no GPU run exists so far.

    python bench/benchmarks_eval.py --model resnet50 --device cuda --amp --workers 8
    python bench/benchmarks_eval.py --model efficientnet-lite0       # CPU, this machine

Appends one record to ``bench/results/benchmarks_eval.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUE = ROOT.parent / "shared" / "data" / "cue_conflict_sample"


def _photos() -> list:
    import matplotlib.cbook
    import numpy as np
    import skimage.data as sd
    from PIL import Image

    names = ["chelsea", "coffee", "astronaut", "rocket"]
    photos = [np.asarray(getattr(sd, n)()) for n in names]
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos.append(np.asarray(Image.open(f).convert("RGB")))
    return [p if p.ndim == 3 else np.repeat(p[..., None], 3, 2) for p in photos]


def _build(root: Path, per_folder: int) -> dict[str, Path]:
    from PIL import Image

    from analysis.benchmarks.classes import IN9_CLASSES, OBJECTNET_TO_IMAGENET
    from analysis.benchmarks.imagenet_ids import WNIDS
    from causalkit.datasets.image_folder import resize_center_crop

    photos = _photos()

    def put(folder: Path, k: int, view: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_folder):
            p = photos[(k + i) % len(photos)]
            Image.fromarray(resize_center_crop(p) if view else p).save(folder / f"{i}.jpg")

    for k in range(10):
        put(root / "v2" / "imagenetv2-matched-frequency-format-val" / str(k), k)
        put(root / "objectnet" / "images" / sorted(OBJECTNET_TO_IMAGENET)[k], k)
        put(root / "plain" / WNIDS[k], k)
    for k, name in enumerate(IN9_CLASSES):
        put(root / "in9" / "original" / "val" / f"{k:02d}_{name}", k, view=True)
    return {"imagenet-v2": root / "v2", "objectnet": root / "objectnet", "in9": root / "in9",
            "imagenet-c": root / "plain"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0",
                        help="efficientnet-lite0, resnet50 (random init), or a --model spec")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-folder", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                             "benchmarks_eval.json"))
    args = parser.parse_args()

    import torch

    from analysis.benchmarks import ImageNetClassifier, load_model, run_benchmark
    from causalkit.records import append_record, machine_info

    torch.set_num_threads(args.threads)
    if args.model == "resnet50":
        from robust_training.resnet import build_resnet

        model = ImageNetClassifier(build_resnet("resnet50", 1000, seed=0).eval())
    else:
        model = load_model(args.model)
    runs = {}
    common = dict(batch_size=args.batch_size, device=args.device, amp=args.amp,
                  num_workers=args.workers, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        folders = _build(Path(tmp), args.per_folder)
        if CUE.is_dir():
            folders["shape-bias"] = CUE
        for name, folder in folders.items():
            extra = {"imagenet-c": {"source": "folder", "severities": (3,),
                                    "corruptions": ["gaussian_noise", "contrast"]},
                     "objectnet": {"allow_missing_classes": True}}.get(name, {})
            start = time.perf_counter()
            result = run_benchmark(name, model, folder, **common, **extra)
            seconds = time.perf_counter() - start
            runs[name] = {"images": result.n, "seconds": round(seconds, 3),
                          "images_per_s": round(result.n / seconds, 2),
                          "metrics": result.metrics}
            print(f"{name:12s} {result.n:4d} images  {result.n / seconds:7.1f} img/s")
    record = {"benchmark": "OOD evaluators throughput (stand-in folders)",
              "machine": machine_info(), "model": args.model, "device": args.device,
              "amp": args.amp, "batch_size": args.batch_size, "workers": args.workers,
              "threads": args.threads, "runs": runs}
    append_record(args.out, record)


if __name__ == "__main__":
    main()
