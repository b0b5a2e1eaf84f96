"""Benchmark: GenInt's transfer (L-BFGS Gram matching) in images/s, per feature network.

Times :func:`robust_training.transfer.statistics_transfer` on a batch of real photos
(scikit-image's chelsea, astronaut, coffee and rocket, resized and centre-cropped to
``--size``), each styled by another photo of the batch, for two feature networks:

* ``random``: the offline fallback (:class:`generators.perceptual.RandomFeatures`,
  widths 32-64-128-256);
* ``vgg19``: VGG19 at its real widths with torch's random initialisation (the cost
  does not depend on the weights); as in the official code only its layers up to
  conv3_1, the deepest one a loss reads, run.

Each repeat runs ``--steps`` L-BFGS evaluations (forward and backward through the
features) on one batch; the record keeps every repeat's seconds, the median, images/s
at that step count and evaluations x images per second. The official run draws 20..70
evaluations per batch (mean 45), so its images/s is the recorded ``eval_images_per_s /
45``; the record says so in ``official_mean_steps`` rather than timing 45 on a CPU.

    python bench/transfer_stage.py [--device cpu] [--size 224] [--batch 4] [--steps 10]
    python bench/transfer_stage.py --device cuda --batch 32 --steps 45 --size 256

One record per feature network is appended to ``bench/results/transfer_stage.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from causalkit.devices import resolve_device
from causalkit.records import append_record, machine_info
from robust_training.transfer import (
    OFFICIAL_STEPS,
    statistics_transfer,
    transfer_features,
    vgg19_transfer_features,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "transfer_stage.json"
PHOTOS = ("chelsea", "astronaut", "coffee", "rocket")


def _photos(batch: int, size: int) -> torch.Tensor:
    import numpy as np
    from skimage import data

    from causalkit.datasets.image_folder import resize_center_crop

    arrays = [resize_center_crop(getattr(data, PHOTOS[i % len(PHOTOS)])(), resize=size,
                                 crop=size) for i in range(batch)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="L-BFGS evaluations per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--features", default="random,vgg19",
                        help="comma-separated: random, vgg19")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    for name in ("size", "batch", "steps", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    kinds = [k.strip() for k in args.features.split(",") if k.strip()]
    if not kinds or any(k not in ("random", "vgg19") for k in kinds):
        parser.error("--features takes random and/or vgg19")
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    photos = _photos(args.batch, args.size).to(device)
    content, style = photos, photos.roll(1, dims=0)
    mean_steps = sum(OFFICIAL_STEPS) / 2
    for kind in kinds:
        features = transfer_features("random:0") if kind == "random" \
            else vgg19_transfer_features(None)
        statistics_transfer(content, style, features, steps=2, device=device)  # warm-up
        seconds = []
        for _ in range(args.repeats):
            _sync(device)
            start = time.perf_counter()
            statistics_transfer(content, style, features, steps=args.steps, device=device)
            _sync(device)
            seconds.append(round(time.perf_counter() - start, 4))
        median = statistics.median(seconds)
        record = {
            "bench": "transfer_stage", "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "threads": args.threads if device.type == "cpu" else None,
            "features": "random:0 (RandomFeatures 32-64-128-256)" if kind == "random"
            else "vgg19 (random init, conv1_1..conv3_1)",
            "size": args.size, "batch_size": args.batch, "steps": args.steps,
            "repeats": args.repeats, "seconds": seconds, "median_s": median,
            "images_per_s": round(args.batch / median, 4),
            "eval_images_per_s": round(args.batch * args.steps / median, 3),
            "official_mean_steps": mean_steps,
            "machine": machine_info(), **({"note": args.note} if args.note else {}),
        }
        append_record(args.out, record)
        print(f"{kind:6s} {device} size {args.size} batch {args.batch} steps {args.steps}: "
              f"median {median:.2f} s, {record['images_per_s']:.3f} img/s "
              f"({record['eval_images_per_s'] / mean_steps:.3f} img/s at the official mean "
              f"{mean_steps:g} steps)")


if __name__ == "__main__":
    main()
