"""Benchmark: cost of GenInt interventions, and of computing latent directions.

1. Throughput (images/s) of interventional sampling -- noise, random choice of
   directions, offsets, the edit, then the generator -- against a plain generator forward
   (noise, then the generator) at the same batch size. The two are timed interleaved, so
   that load from other processes hits both alike; medians over ``--repeats``. The
   latent-side work alone is also timed, because on a busy machine it is the more stable
   measure of the overhead.
2. Time to compute directions: GANSpace PCA + regression on ``generator.gen_z`` against
   the exact SVD shortcut.

Models: the tiny test BigGAN (32x32, z_dim 8) and a mid-size random-weights BigGAN-deep
(128x128, z_dim 128, 1000 classes, channel_width 32; the real biggan-deep-128 has 128).
``--arch biggan-deep-256`` times a biggan-deep-256-sized architecture (random weights;
meant for a GPU, at batch 64). Its layer list (12 blocks, 6 upsamplings, channel width
128) was written without the released config.json at hand; with the weights cached,
prefer ``load_biggan("biggan-deep-256")``.

    python bench/generation.py [--repeats 7] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# OpenBLAS threads spin-wait: on a shared machine two of them per process are far slower
# than one. Set before numpy/scipy load (threadpoolctl misses libraries loaded later).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

from causalkit.interventions import LatentStrategy  # noqa: E402
from causalkit.io import atomic_write_text  # noqa: E402
from causalkit.records import machine_info  # noqa: E402
from generators.biggan import random_biggan, tiny_biggan  # noqa: E402
from generators.directions import fit_pca_directions, shortcut_directions  # noqa: E402
from generators.strategies import sample_latents  # noqa: E402

MID = dict(output_dim=128, z_dim=128, class_embed_dim=128, channel_width=32,
           num_classes=1000, attention_layer_position=8, eps=1e-4, n_stats=51,
           layers=[(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8),
                   (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2),
                   (True, 2, 1)])
DEEP256 = dict(MID, output_dim=256, channel_width=128,
               layers=[(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8),
                       (False, 8, 8), (True, 8, 8), (False, 8, 4), (True, 4, 4),
                       (False, 4, 2), (True, 2, 2), (False, 2, 1), (True, 1, 1)],
               attention_layer_position=8)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(gen, dirs, strategy, batch: int, repeats: int) -> dict:
    """Median seconds per batch of plain vs interventional sampling (interleaved)."""
    labels = torch.arange(batch) % gen.num_classes
    device = gen.device
    plain, inter, lat_plain, lat_inter = [], [], [], []
    def plain_once(r):
        t0 = time.perf_counter()
        z = gen.sample_noise(batch, strategy.truncation, seed=r)
        t1 = time.perf_counter()
        gen(z, labels, strategy.truncation)
        _sync(device)
        return time.perf_counter() - t0, t1 - t0

    def inter_once(r):
        t0 = time.perf_counter()
        b = sample_latents(strategy, batch, gen.z_dim, directions=dirs, seed=r)
        z_star = b.z_star.to(device)
        t1 = time.perf_counter()
        gen(z_star, labels, b.truncation)
        _sync(device)
        return time.perf_counter() - t0, t1 - t0

    with torch.no_grad():
        for r in range(repeats + 1):  # the first round warms up and is dropped
            # Alternate which goes first, so that drifting load favours neither.
            if r % 2:
                (pt, pl), (it, il) = plain_once(r), inter_once(r)
            else:
                (it, il), (pt, pl) = inter_once(r), plain_once(r)
            if r:
                plain.append(pt)
                inter.append(it)
                lat_plain.append(pl)
                lat_inter.append(il)
    med = statistics.median
    forward = med(plain) - med(lat_plain)
    return dict(batch=batch, repeats=repeats,
                plain_s=med(plain), interventional_s=med(inter),
                plain_images_per_s=batch / med(plain),
                interventional_images_per_s=batch / med(inter),
                overhead_total=med(inter) / med(plain) - 1,
                latent_plain_s=med(lat_plain), latent_interventional_s=med(lat_inter),
                overhead_latent_only=(med(lat_inter) - med(lat_plain)) / med(plain),
                forward_s=forward)


def directions_time(gen, n_samples: int, k: int, repeats: int) -> dict:
    """Median seconds of the SVD shortcut and of PCA + regression (and their overlap)."""
    from generators.directions import subspace_overlap

    short_t, pca_t = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        short = shortcut_directions(gen, k=k)
        short_t.append(time.perf_counter() - t0)
    pca = None
    for _ in range(max(1, repeats // 3)):
        t0 = time.perf_counter()
        pca = fit_pca_directions(gen, k=k, n_samples=n_samples, seed=0, progress=False)
        pca_t.append(time.perf_counter() - t0)
    return dict(k=k, n_samples=n_samples, shortcut_s=statistics.median(short_t),
                pca_s=statistics.median(pca_t), pca_runs=len(pca_t),
                speedup=statistics.median(pca_t) / statistics.median(short_t),
                overlap_top5=subspace_overlap(pca.top(5), short.top(5)),
                overlap_topk=subspace_overlap(pca, short))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", choices=["cpu-set", "biggan-deep-256"], default="cpu-set")
    parser.add_argument("--pca-samples", type=int, default=20_000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "generation.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.arch == "cpu-set":
        models = [("tiny (32x32, z 8, ch 4)", tiny_biggan(0, device=args.device), 64, 8,
                   LatentStrategy(1.0, 8, 1.0)),
                  ("mid (128x128, z 128, ch 32, 1000 cls)",
                   random_biggan(MID, 0, calibrate=False, device=args.device), 16, 60,
                   LatentStrategy(1.0, 60, 1.0))]
    else:
        models = [("biggan-deep-256 architecture",
                   random_biggan(DEEP256, 0, calibrate=False, device=args.device), 64, 60,
                   LatentStrategy(1.0, 60, 1.0))]
    results = []
    for name, gen, batch, k, strategy in models:
        print(f"{name}: directions ...", flush=True)
        dirs_rec = directions_time(gen, args.pca_samples, k, args.repeats)
        dirs = shortcut_directions(gen, k=k)
        print(f"{name}: throughput at batch {batch} ...", flush=True)
        tp = throughput(gen, dirs, strategy, batch, args.repeats)
        rec = dict(model=name, params=sum(p.numel() for p in gen.module.parameters()),
                   strategy=str(strategy), throughput=tp, directions=dirs_rec)
        results.append(rec)
        print(f"  plain {tp['plain_images_per_s']:.1f} img/s, interventional "
              f"{tp['interventional_images_per_s']:.1f} img/s, overhead total "
              f"{100 * tp['overhead_total']:+.2f} %, latent-side only "
              f"{100 * tp['overhead_latent_only']:+.3f} %")
        print(f"  directions: shortcut {dirs_rec['shortcut_s'] * 1e3:.2f} ms, PCA "
              f"{dirs_rec['pca_s']:.2f} s ({args.pca_samples} samples), overlap top-5 "
              f"{dirs_rec['overlap_top5']:.4f}")
    import json

    payload = dict(benchmark="generation", machine=machine_info(), device=args.device,
                   threads=args.threads, results=results)
    atomic_write_text(args.out, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
