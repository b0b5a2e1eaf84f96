"""Benchmark: the CGN classifier's training images/s against plain ResNet ERM.

Both train through :func:`robust_training.engine.fit` on images decoded from disk by
:class:`robust_training.imagenet_data.EvenBatches` (random resized crops, flips):

``cgn_heads``  the shape/texture/background-head ResNet
               (:func:`robust_training.imagenet_classifier.build_imagenet_classifier`)
               with the ``cgn-heads`` objective on ``batch`` real plus ``batch``
               counterfactual images per step;
``erm``        the same ResNet with one head and the ``erm`` objective on ``2 * batch``
               real images per step.

The images are random JPEGs written to a temporary ImageFolder, and the counterfactual
set is a ``labels.csv`` in the generator's format over the same kind of files (what
the classifier costs does not depend on what the pixels show). A one-step run first
warms each model up; the timed run starts the decoding workers again (counted).

    python bench/cgn_imagenet_classifier.py --arch resnet50 --batch 4 --steps 4
    python bench/cgn_imagenet_classifier.py --arch resnet50 --batch 128 --steps 50 \\
        --device cuda --workers 12      # on a GPU

One JSON record per run goes to ``bench/results/cgn_imagenet_classifier.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
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
from generators.cgn.imagenet.generate import LABEL_COLUMNS  # noqa: E402
from robust_training.engine import FitConfig, fit  # noqa: E402
from robust_training.imagenet_classifier import build_imagenet_classifier  # noqa: E402
from robust_training.imagenet_data import EvenBatches, FolderStream  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cgn_imagenet_classifier.json"


def _data(folder: Path, n: int, side: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    real, cf = folder / "real", folder / "cf"
    rows = []
    for i in range(n):
        for root, name in ((real / f"n{i % 10:08d}", f"{i}.JPEG"), (cf / "0", f"{i:07d}.png")):
            root.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
                root / name, quality=90)
        rows.append([f"0/{i:07d}.png", i % 1000, (i * 7) % 1000, (i * 13) % 1000, 0, 0, 0,
                     -1, 0])
    with open(cf / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(LABEL_COLUMNS)
        w.writerows(rows)
    return real, cf


def _run(streams, heads, objective, args, device) -> float:
    model = build_imagenet_classifier(args.arch, heads=heads, seed=0)
    batches = EvenBatches(streams, steps=args.steps, size=args.size, seed=0,
                          num_workers=args.workers)

    def config(steps: int) -> FitConfig:
        return FitConfig(objective=objective, steps=steps, lr=1e-3, model=args.arch, seed=0,
                         log_every=steps, checkpoint_every=steps)

    fit(batches, config(1), None, device=device, progress=False, model=model)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fit(batches, config(args.steps), None, device=device, progress=False, model=model)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * 2 * args.batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--batch", type=int, default=4, help="real (and cf) images per step")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--side", type=int, default=256, help="stored image side")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="cgn_clf_bench_") as tmp:
        tmp = Path(tmp)
        real, cf = _data(tmp, max(4 * args.batch, 20), args.side)
        heads = _run([FolderStream.real(real, args.batch), FolderStream.counterfactual(
            cf, args.batch)], ("shape", "texture", "background"), "cgn-heads", args, device)
        erm = _run([FolderStream.real(real, 2 * args.batch)], ("label",), "erm", args, device)
    record = {"bench": "cgn_imagenet_classifier", "arch": args.arch, "device": str(device),
              "batch_per_source": args.batch, "steps": args.steps, "size": args.size,
              "workers": args.workers, "torch_threads": args.threads,
              "cgn_heads_img_s": round(heads, 3), "erm_img_s": round(erm, 3),
              "cgn_heads_over_erm": round(heads / erm, 3), "machine": machine_info()}
    if device.type == "cuda":
        record["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)
    append_record(args.out, record)
    print({k: v for k, v in record.items() if k != "machine"})


if __name__ == "__main__":
    main()
