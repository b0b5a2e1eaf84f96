"""Benchmark: ImageNet training-data throughput, decoding plus augmentation, in images/s.

The data is a synthetic ImageFolder of real photographs at ImageNet's typical size:
scikit-image's sample photos (chelsea, coffee, astronaut, rocket, ...), each image a
seeded random 4:3 crop of one of them resized to 500 x 375 (every fourth one portrait,
375 x 500) and saved as a JPEG of quality 90, ten classes, ``--per-class`` each. The
same images are then written as WebDataset shards
(:func:`robust_training.tar_shards.write_shards`, bytes copied).

For each layout (``imagefolder``, ``webdataset``) and each number of DataLoader workers
it times :func:`robust_training.imagenet_data.real_source` batches: the training view
(random resized crop to 224, flip, and the conversion to ``[-1, 1]``), ``--batch``
images per step. ``img_s`` is the rate of a run of ``--steps`` steps from its first
request, worker start-up and shard indexing included (what a run pays again after a
resume), the median of ``--repeats`` runs; ``first_batch_s`` is the wait for the first
batch. ``img_per_cpu_s`` divides the images by the CPU seconds of the process and its
workers: the cost, which other jobs on a shared machine leave as it is while they change
the rate. ``decode_img_s`` is the decoding alone, in this process. The files sit in the
page cache (just written), so this is the CPU's cost, not the disk's.

    python bench/imagenet_loading.py                          # about 2 minutes here
    python bench/imagenet_loading.py --workers 0 4 8 16 --augment gpu --device cuda

One JSON record per (layout, workers, augment) goes to ``bench/results/imagenet_loading.json``.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from causalkit.records import append_record, machine_info  # noqa: E402
from robust_training.imagenet_data import decode, real_source  # noqa: E402
from robust_training.tar_shards import write_shards  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "imagenet_loading.json"
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "ihc.png")


def _photos() -> list[Image.Image]:
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    return [Image.open(folder / name).convert("RGB") for name in PHOTOS
            if (folder / name).is_file()]


def write_folder(root: Path, *, per_class: int, classes: int = 10, seed: int = 0) -> dict:
    """The synthetic ImageFolder; returns its image count and mean file size."""
    photos = _photos()
    rng = np.random.default_rng(seed)
    sizes = []
    for i in range(classes * per_class):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw = int(min(w, h * 4 / 3) * rng.uniform(0.5, 1.0))
        ch = int(cw * 3 / 4)
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        view = photo.resize((500, 375), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        if i % 4 == 3:
            view = view.transpose(Image.Transpose.ROTATE_90)
        path = root / f"n{i % classes:08d}" / f"{i:06d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        view.save(path, quality=90)
        sizes.append(path.stat().st_size)
    return {"images": len(sizes), "mean_kb": round(float(np.mean(sizes)) / 1024, 1)}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the loader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_source(spec: str, args, workers: int, augment: str, device: torch.device
                ) -> tuple[float, float, float]:
    """(seconds to the first batch, images/s over all ``args.steps`` steps, images per
    CPU second of this process and its workers)."""
    source = real_source(spec, batch_size=args.batch, steps=args.steps, size=args.size,
                         seed=0, num_workers=workers, augment=augment, jitter=args.jitter)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    source.batch(0, device=device)
    first = time.perf_counter() - t0
    for step in range(1, args.steps):
        source.batch(step, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    source._it = None  # the workers exit and are joined, so their CPU time is counted
    gc.collect()
    images = args.steps * args.batch
    return first, images / wall, images / (_cpu_seconds() - cpu0)


def decode_rate(files: list[str]) -> float:
    t0 = time.perf_counter()
    for f in files:
        decode(f)
    return len(files) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=40, help="images per class (10 classes)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--layouts", nargs="+", default=["imagefolder", "webdataset"])
    ap.add_argument("--augment", nargs="+", default=["cpu"], choices=["cpu", "gpu"])
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="imagenet_loading_") as tmp:
        folder = Path(tmp) / "train"
        data = write_folder(folder, per_class=args.per_class)
        pattern = write_shards(folder, Path(tmp) / "shards", shard_size=128)
        specs = {"imagefolder": f"imagefolder:{folder}", "webdataset": f"webdataset:{pattern}"}
        for layout in args.layouts:
            files = [str(f) for f in real_source(specs[layout], batch_size=1, steps=1)
                     .streams[0].files[:64]]
            decode_img_s = statistics.median(decode_rate(files) for _ in range(args.repeats))
            for augment in args.augment:
                for workers in args.workers:
                    load = os.getloadavg()[0]
                    runs = [time_source(specs[layout], args, workers, augment, device)
                            for _ in range(args.repeats)]
                    record = {
                        "bench": "imagenet_loading", "layout": layout, "workers": workers,
                        "augment": augment, "jitter": args.jitter, "device": str(device),
                        "batch": args.batch, "size": args.size, "timed_steps": args.steps,
                        "repeats": args.repeats, "stored_image": "500x375 JPEG q90",
                        **data,
                        "img_s": round(statistics.median(r[1] for r in runs), 2),
                        "img_s_runs": [round(r[1], 2) for r in runs],
                        "first_batch_s": round(statistics.median(r[0] for r in runs), 3),
                        "img_per_cpu_s": round(statistics.median(r[2] for r in runs), 2),
                        "decode_img_s": round(decode_img_s, 2),
                        "loadavg_1min": round(load, 2), "machine": machine_info()}
                    append_record(args.out, record)
                    print({k: v for k, v in record.items() if k != "machine"}, flush=True)


if __name__ == "__main__":
    main()
