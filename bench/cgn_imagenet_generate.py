"""Benchmark: counterfactual ImageNet written to disk against plain BigGAN forwards.

Three rates at the same batch size, on a random-initialised ImageNet CGN (its four
BigGANs share one architecture):

``plain_biggan``   one BigGAN forward (noise, class, the frozen ``biggan_GT``): the
                   issue's baseline;
``cgn_forward``    the CGN's forward in memory (three BigGANs, the U^2-Net, the composer);
``written``        :func:`generators.cgn.imagenet.generate.write_counterfactual_imagenet`:
                   the CGN, PNG encoding and atomic writes of every image, shard records
                   and ``labels.csv``.

``written / cgn_forward`` is what the writer costs; ``written / plain_biggan`` compares
with one BigGAN, which a CGN (three BigGANs and a U^2-Net per image) cannot reach: the
record keeps both. The three are timed in turns, ``--repeats`` times, medians kept.

    python bench/cgn_imagenet_generate.py --arch tiny --batch 8 --images 32
    python bench/cgn_imagenet_generate.py --arch biggan-deep-256 --batch 2 --images 4
    python bench/cgn_imagenet_generate.py --arch biggan-deep-256 --device cuda --batch 32 \\
        --images 512      # on a GPU

One JSON record per run is appended to ``bench/results/cgn_imagenet_generate.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

from causalkit.records import append_record, machine_info  # noqa: E402
from generators.base import truncated_normal  # noqa: E402
from generators.biggan import tiny_config  # noqa: E402
from generators.cgn.imagenet import build_cgn_imagenet  # noqa: E402
from generators.cgn.imagenet.generate import (  # noqa: E402
    GenerationSettings,
    write_counterfactual_imagenet,
)
from generators.cgn.imagenet.model import BIGGAN_DEEP_256  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cgn_imagenet_generate.json"
U2NETP = ROOT.parent / "shared" / "data" / "u2netp" / "u2netp.onnx"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _inputs(cgn, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    u = truncated_normal(n, cgn.dim_z, 1.0, generator=g).to(cgn.device)
    y = torch.randint(0, cgn.num_classes, (n,), generator=g).to(cgn.device)
    return u, y


def plain_rate(cgn, images: int, batch: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, images, batch):
            u, y = _inputs(cgn, min(batch, images - start), start)
            cgn.ground_truth(u, y, 1.0)
    _sync(device)
    return images / (time.perf_counter() - t0)


def forward_rate(cgn, images: int, batch: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, images, batch):
            u, y = _inputs(cgn, min(batch, images - start), start)
            cgn(u, y, truncation=1.0).image.cpu()
    _sync(device)
    return images / (time.perf_counter() - t0)


def written_rate(cgn, images: int, batch: int, device: torch.device, folder: Path,
                 repeat: int, threads: int) -> float:
    settings = GenerationSettings(n=images, shard_size=max(batch, images // 2), seed=repeat)
    t0 = time.perf_counter()
    write_counterfactual_imagenet(cgn, folder / f"run{repeat}", settings, batch_size=batch,
                                  device=device, progress=False, encode_threads=threads)
    return images / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=("tiny", "biggan-deep-256"), default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--encode-threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = tiny_config() if args.arch == "tiny" else dict(BIGGAN_DEEP_256)
    u2net = str(U2NETP) if U2NETP.is_file() else "u2netp"
    t0 = time.perf_counter()
    cgn = build_cgn_imagenet(config, u2net=u2net, seed=0, device=device,
                             calibrate=args.arch == "tiny").eval()
    build_s = time.perf_counter() - t0
    forward_rate(cgn, args.batch, args.batch, device)  # warm-up
    rates: dict[str, list[float]] = {"plain_biggan": [], "cgn_forward": [], "written": []}
    with tempfile.TemporaryDirectory(prefix="cgn_gen_bench_") as tmp:
        for r in range(args.repeats):
            rates["plain_biggan"].append(plain_rate(cgn, args.images, args.batch, device))
            rates["cgn_forward"].append(forward_rate(cgn, args.images, args.batch, device))
            rates["written"].append(written_rate(cgn, args.images, args.batch, device,
                                                 Path(tmp), r, args.encode_threads))
    med = {k: statistics.median(v) for k, v in rates.items()}
    record = {
        "bench": "cgn_imagenet_generate", "arch": args.arch, "device": str(device),
        "batch": args.batch, "images": args.images, "repeats": args.repeats,
        "torch_threads": args.threads, "encode_threads": args.encode_threads,
        "u2net": Path(u2net).name, "weights": "random", "build_s": round(build_s, 2),
        **{f"{k}_img_s": round(v, 3) for k, v in med.items()},
        "written_over_cgn_forward": round(med["written"] / med["cgn_forward"], 3),
        "written_over_plain_biggan": round(med["written"] / med["plain_biggan"], 3),
        "all_rates": {k: [round(x, 3) for x in v] for k, v in rates.items()},
        "machine": machine_info(),
    }
    if device.type == "cuda":
        record["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)
    append_record(args.out, record)
    print({k: v for k, v in record.items() if k not in ("machine", "all_rates")})


if __name__ == "__main__":
    main()
