"""Benchmark: U^2-Net forward speed and peak memory at 320 x 320 (random init).

Times ``U2Net.forward`` (preprocessing included, no gradients) of the small
``u2netp`` and the full ``u2net``, both random-initialised (speed does not depend on
the weights), on batches of 320 x 320 images, and records images/s and peak memory:
on the CPU the peak resident memory of the process (``ru_maxrss``; each kind runs in
its own process so the peaks do not mix) and its rise over the memory after building
the model; on CUDA ``torch.cuda.max_memory_allocated``. ``--grad`` times forward and
backward to the input instead (what the CGN's shape mechanism pays).

    python bench/u2net.py --threads 2 --batch 1 --repeats 5
    python bench/u2net.py --device cuda --batch 16

One record per kind is appended to ``bench/results/u2net.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "u2net.json"
KINDS = ("u2netp", "u2net")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(kind: str, *, batch: int, repeats: int, size: int, device: str, grad: bool,
            threads: int) -> dict:
    import torch

    from generators.u2net import build_u2net

    torch.set_num_threads(threads)
    dev = torch.device(device)
    net = build_u2net(kind, seed=0).to(dev)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(dev)
    rss_built = _rss_mib()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def step() -> None:
        if grad:
            inp = x.clone().requires_grad_(True)
            net(inp).mean().backward()
        else:
            with torch.no_grad():
                net(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    best = min(times)
    record = {
        "bench": "u2net", "kind": kind, "size": size, "batch": batch, "device": device,
        "threads": threads, "grad": grad, "repeats": repeats,
        "params": sum(p.numel() for p in net.parameters()),
        "seconds_best": best, "seconds_median": sorted(times)[len(times) // 2],
        "images_per_s": batch / best,
        "peak_rss_mib": _rss_mib(), "activation_rss_mib": _rss_mib() - rss_built,
    }
    if dev.type == "cuda":
        record["peak_cuda_mib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, help="one kind, in this process")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grad", action="store_true", help="forward + backward to input")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--print-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch < 1 or args.repeats < 1 or args.size < 32:
        parser.error("--batch and --repeats must be >= 1 and --size >= 32")
    if args.kind is None:  # each kind in a fresh process: separate peak memory
        for kind in KINDS:
            subprocess.run([sys.executable, __file__, "--kind", kind, *sys.argv[1:]],
                           check=True)
        return
    from causalkit.records import append_record, machine_info

    record = measure(args.kind, batch=args.batch, repeats=args.repeats, size=args.size,
                     device=args.device, grad=args.grad, threads=args.threads)
    record.update(note=args.note, machine=machine_info())
    if not args.print_only:
        append_record(args.out, record)
    print(json.dumps({k: v for k, v in record.items() if k != "machine"}))


if __name__ == "__main__":
    main()
