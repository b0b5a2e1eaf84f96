"""GPU benchmark of the ImageNet CGN: training speed and memory, generation against BigGAN.

On one CUDA GPU, with a full-size CGN (four BigGAN-deep-256 with random weights, the
full U^2-Net, VGG16 features; weights do not change the cost):

* **training**: iterations/s and peak GPU memory of
  :func:`generators.cgn.imagenet.train.train_cgn_imagenet` at batch 1 and at doubling
  batches until one does not fit (CUDA out of memory); the projected time of the
  official run, 300 episodes x 4,000 iterations at batch 1 (the paper: 12 h on one GTX
  1080 Ti), from the batch-1 rate;
* **generation**: counterfactual images/s of the CGN's forward in memory and written to
  disk by :func:`generators.cgn.imagenet.generate.write_counterfactual_imagenet`,
  against a plain BigGAN forward (the frozen ``biggan_GT``) at the same batch; the
  issue's target is written / plain >= 0.9.

    python bench/cgn_imagenet_gpu.py --precision fp32
    python bench/cgn_imagenet_gpu.py --precision bf16 --max-batch 32

One record per run is appended to ``bench/results/cgn_imagenet_gpu.json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from causalkit.records import append_record, machine_info  # noqa: E402
from generators.base import truncated_normal  # noqa: E402
from generators.cgn.imagenet import build_cgn_imagenet  # noqa: E402
from generators.cgn.imagenet.model import BIGGAN_DEEP_256  # noqa: E402
from generators.cgn.imagenet.train import CGNImageNetTrainConfig, train_cgn_imagenet  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cgn_imagenet_gpu.json"
OFFICIAL_ITERATIONS = 300 * 4000


def train_rate(cgn, features, batch: int, iterations: int, skip: int, precision: str
               ) -> dict[str, float]:
    """Iterations/s (after ``skip`` warm-up iterations) and peak memory at ``batch``."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    config = CGNImageNetTrainConfig(episodes=1, batch_acc=skip + iterations, batch_size=batch,
                                    precision=precision, checkpoint_every=10**9,
                                    sample_every=10**9, log_every=10**9)
    stamps: list[float] = []

    def stamp(_: int) -> None:
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    out = tempfile.mkdtemp(prefix="cgn_gpu_")
    try:
        train_cgn_imagenet(cgn, config, out, features=features, progress=False, callback=stamp)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    seconds = stamps[-1] - stamps[skip - 1]
    return {"batch": batch, "it_s": round(iterations / seconds, 3),
            "img_s": round(batch * iterations / seconds, 3),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


@torch.no_grad()
def generation_rates(cgn, batch: int, images: int) -> dict[str, float]:
    from generators.cgn.imagenet.generate import GenerationSettings, write_counterfactual_imagenet

    g = torch.Generator().manual_seed(0)
    u = truncated_normal(batch, cgn.dim_z, 1.0, generator=g).cuda()
    y = torch.randint(0, cgn.num_classes, (batch,), generator=g).cuda()
    cgn.eval()

    def rate(fn) -> float:
        fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(images // batch):
            fn()
        torch.cuda.synchronize()
        return batch * (images // batch) / (time.perf_counter() - t0)

    plain = rate(lambda: cgn.ground_truth(u, y, 1.0).cpu())
    forward = rate(lambda: cgn(u, y).image.cpu())
    with tempfile.TemporaryDirectory(prefix="cgn_gpu_gen_") as tmp:
        settings = GenerationSettings(n=images, shard_size=images, seed=0)
        t0 = time.perf_counter()
        write_counterfactual_imagenet(cgn, Path(tmp) / "cf", settings, batch_size=batch,
                                      device=cgn.device, progress=False)
        written = images / (time.perf_counter() - t0)
    return {"batch": batch, "plain_biggan_img_s": round(plain, 2),
            "cgn_forward_img_s": round(forward, 2), "written_img_s": round(written, 2),
            "cgn_forward_over_plain": round(forward / plain, 3),
            "written_over_plain": round(written / plain, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16")
    ap.add_argument("--iterations", type=int, default=10, help="timed iterations per batch")
    ap.add_argument("--skip", type=int, default=3, help="warm-up iterations per batch")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--gen-batch", type=int, default=32)
    ap.add_argument("--gen-images", type=int, default=256)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this benchmark needs a CUDA GPU")
    from generators.perceptual import vgg_features

    t0 = time.perf_counter()
    cgn = build_cgn_imagenet(BIGGAN_DEEP_256, u2net="u2net", seed=0, device="cuda",
                             calibrate=False)
    features = vgg_features("vgg16").cuda()
    build_s = time.perf_counter() - t0
    runs, batch, largest = [], 1, None
    while batch <= args.max_batch:
        try:
            runs.append(train_rate(cgn, features, batch, args.iterations, args.skip,
                                   args.precision))
            largest = batch
            print(runs[-1], flush=True)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            for p in cgn.parameters():
                p.grad = None
        batch *= 2
    torch.cuda.empty_cache()
    one = runs[0]
    record = {
        "bench": "cgn_imagenet_gpu", "device": torch.cuda.get_device_name(),
        "precision": args.precision, "weights": "random", "u2net": "u2net",
        "features": "vgg16", "build_s": round(build_s, 1), "train": runs,
        "largest_batch_fitting": largest,
        "official_run_projected_h": round(OFFICIAL_ITERATIONS / one["it_s"] / 3600, 2),
        "paper_gtx1080ti_h": 12,
        "generation": generation_rates(cgn, args.gen_batch, args.gen_images),
        "machine": machine_info(),
    }
    append_record(args.out, record)
    print({k: v for k, v in record.items() if k != "machine"})


if __name__ == "__main__":
    main()
