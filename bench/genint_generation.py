"""Benchmark: GenInt's interventional BigGAN-deep-256 stream against a plain forward.

What is timed, per batch of ``--batch`` images, interleaved (which goes first
alternates) so that load from other processes hits both alike, medians over
``--repeats`` after one warm-up round:

* **plain** -- BigGAN noise for the batch, then the generator's forward (at
  ``--precision``), synchronised;
* **interventional** -- :class:`robust_training.generated_source.OnTheFlySource`'s
  batch (every row keyed by ``(seed, step, row)``, the paper's strategy
  ``genint:t=1,k=60`` on ``generator.gen_z``: one of 60 components per image, its
  official range, GANSpace's centred edit), then the images to uint8 on the CPU (what
  the pre-generation writes). The on-the-fly rate without the uint8 copy is recorded
  as well (what training consumes: float images left on the device).

The generator is BigGAN-deep-256 at full size (``BIGGAN_DEEP_256``, the released
``config.json``) with random weights: the arithmetic, and so the speed, is that of the
real weights; its per-truncation BatchNorm statistics are left uncalibrated (calibration
runs 51 batches, minutes on a CPU, and does not change the cost of a forward pass).
The directions are the exact SVD shortcut of ``gen_z``.

The target is an interventional rate of at least 90 % of the plain one (``ratio``, of the
wall-clock medians). On a shared CPU the wall clock swings with other processes' load
(the record keeps the load average), so three steadier views are recorded too: the
median of each round's own ratio (``ratio_paired``: the two halves of a round run back
to back), the ratio of the process's CPU times (``ratio_cpu_time``), and the work the
interventional batch adds -- keyed latents and the uint8 copy -- timed alone against the
plain batch (``ratio_added_work``). Records are appended to
``bench/results/genint_generation.json``.

    python bench/genint_generation.py                       # CPU, batch 2, 5 repeats
    python bench/genint_generation.py --device cuda --precision bf16   # batch 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# OpenBLAS threads spin-wait on a shared machine; set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

from causalkit.precision import autocast  # noqa: E402
from causalkit.records import append_record, machine_info  # noqa: E402
from generators.biggan import random_biggan  # noqa: E402
from generators.cgn.imagenet.model import BIGGAN_DEEP_256  # noqa: E402
from generators.directions import generator_digest  # noqa: E402
from generators.images import to_uint8  # noqa: E402
from generators.keyed import row_keys  # noqa: E402
from generators.sampling import make_sampler  # noqa: E402
from generators.strategies import sample_rows  # noqa: E402
from robust_training.generated_source import OnTheFlySource  # noqa: E402

STRATEGY = "genint:t=1,k=60"
TARGET = 0.9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(gen, sampler, *, batch: int, repeats: int, precision: str) -> dict:
    """Median seconds per batch: plain forward, the on-the-fly batch, and it to uint8."""
    device = gen.device
    source = OnTheFlySource(gen, sampler, batch_size=batch, seed=0, precision=precision,
                            overlap=False)
    labels = torch.arange(batch) % gen.num_classes
    truncation = sampler.strategy.truncation

    def plain(r: int) -> tuple[float, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        z = gen.sample_noise(batch, truncation, seed=r)
        with torch.no_grad(), autocast(device, precision):
            gen(z, labels, truncation)
        _sync(device)
        t = time.perf_counter() - t0
        return t, t, time.process_time() - c0

    def intervened(r: int) -> tuple[float, float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        x = source.batch(r, device=device)["x"]
        _sync(device)
        t1 = time.perf_counter()
        to_uint8(x)
        return time.perf_counter() - t0, t1 - t0, time.process_time() - c0

    rounds: list[dict[str, tuple[float, float, float]]] = []
    for r in range(repeats + 1):  # round 0 warms up and is dropped
        order = (plain, intervened) if r % 2 else (intervened, plain)
        times = {f.__name__: f(r) for f in order}
        if r:
            rounds.append(times)
        print(f"  round {r}: plain {times['plain'][0]:.3f} s (cpu {times['plain'][2]:.3f}),"
              f" interventional {times['intervened'][0]:.3f} s (cpu "
              f"{times['intervened'][2]:.3f})", flush=True)
    keys = row_keys(0, 0, torch.arange(batch).numpy())
    side_t = []
    for _ in range(max(5, repeats)):  # the work the interventional batch adds
        x = torch.rand(batch, 3, gen.image_size, gen.image_size, device=device) * 2 - 1
        _sync(device)
        t0 = time.perf_counter()
        sample_rows(sampler.strategy, keys, gen.z_dim, directions=sampler.directions)
        to_uint8(x)
        side_t.append(time.perf_counter() - t0)
    med = statistics.median
    plain_t = [t["plain"][0] for t in rounds]
    int_t = [t["intervened"][0] for t in rounds]
    fly_t = [t["intervened"][1] for t in rounds]
    plain_c = [t["plain"][2] for t in rounds]
    int_c = [t["intervened"][2] for t in rounds]
    return dict(batch=batch, repeats=repeats,
                plain_s=med(plain_t), interventional_s=med(int_t), on_the_fly_s=med(fly_t),
                plain_images_per_s=batch / med(plain_t),
                interventional_images_per_s=batch / med(int_t),
                on_the_fly_images_per_s=batch / med(fly_t),
                ratio=med(plain_t) / med(int_t), ratio_on_the_fly=med(plain_t) / med(fly_t),
                # adjacent rounds share the machine's load: their ratio is steadier
                ratio_paired=med(p / i for p, i in zip(plain_t, int_t, strict=True)),
                plain_cpu_s=med(plain_c), interventional_cpu_s=med(int_c),
                ratio_cpu_time=med(plain_c) / med(int_c),
                added_work_s=med(side_t), ratio_added_work=1 / (1 + med(side_t) / med(plain_t)),
                plain_rounds_s=plain_t, interventional_rounds_s=int_t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per batch (default 2 on the CPU, 64 on CUDA)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds (default 5 on the CPU, 20 on CUDA)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                             "genint_generation.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch or (64 if device.type == "cuda" else 2)
    repeats = args.repeats or (20 if device.type == "cuda" else 5)

    t0 = time.perf_counter()
    gen = random_biggan(BIGGAN_DEEP_256, 0, calibrate=False, device=device)
    sampler = make_sampler(gen, STRATEGY, fit="shortcut").sampler
    print(f"biggan-deep-256 (random weights) on {device}: built in "
          f"{time.perf_counter() - t0:.1f} s; {STRATEGY}, batch {batch}, {args.precision}",
          flush=True)
    load_before = os.getloadavg()
    result = measure(gen, sampler, batch=batch, repeats=repeats, precision=args.precision)
    record = dict(benchmark="genint_generation", generator="biggan-deep-256 (random:0)",
                  generator_sha256=generator_digest(gen),
                  params=sum(p.numel() for p in gen.module.parameters()),
                  strategy=STRATEGY, layer="generator.gen_z", row_seeding="keyed per row",
                  device=str(device), precision=args.precision, threads=args.threads,
                  target_ratio=TARGET, meets_target=result["ratio"] >= TARGET, **result,
                  load_average=dict(before=load_before, after=os.getloadavg()),
                  machine=machine_info())
    append_record(args.out, record)
    print(f"plain {result['plain_images_per_s']:.3f} img/s, interventional to uint8 "
          f"{result['interventional_images_per_s']:.3f} img/s "
          f"({100 * result['ratio']:.1f} % of plain; target {100 * TARGET:.0f} %), "
          f"on the fly {100 * result['ratio_on_the_fly']:.1f} %; paired rounds "
          f"{100 * result['ratio_paired']:.1f} %, CPU time {100 * result['ratio_cpu_time']:.1f}"
          f" %; the added work (latents, uint8) {1e3 * result['added_work_s']:.2f} ms a "
          f"batch = {100 * result['ratio_added_work']:.2f} %")
    print(f"appended to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
