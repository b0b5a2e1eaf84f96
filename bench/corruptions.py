"""Benchmark: ImageNet-C corruptions, images per second per corruption at 224x224 on CPU.

Corrupts scikit-image's sample photos (resized and centre-cropped to 224x224) with every
corruption of ``analysis.benchmarks.corruptions`` at all five severities, one process,
one thread, and appends a record with the machine information and the median images/s
over ``--repeats`` repeats to ``bench/results/corruptions.json``. Frost uses the
procedural textures by default (no download; the blend costs the same either way).

    python bench/corruptions.py [--repeats 5] [--frost-source procedural]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _photos(size: int = 224):
    import numpy as np
    from PIL import Image
    from skimage import data

    out = []
    for name in ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field",
                 "immunohistochemistry", "retina", "cat"):
        im = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = im.size
        s = size / min(w, h)
        im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        out.append(np.asarray(im.crop((left, top, left + size, top + size))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frost-source", default="procedural",
                        choices=("auto", "reference", "procedural"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "corruptions.json"))
    args = parser.parse_args()

    import os

    import numpy as np
    import torch

    from analysis.benchmarks.corruptions import BENCHMARK, EXTRA, corrupt, frost_texture_source
    from causalkit.records import append_record, machine_info

    torch.set_num_threads(1)
    photos = _photos()
    frost_src = frost_texture_source(args.frost_source)
    corrupt(photos[0], "frost", 1, seed=0, frost_source=args.frost_source)  # warm caches
    load_before = list(os.getloadavg())  # the CPU may be shared: read rates with it
    per: dict[str, dict] = {}
    for name in BENCHMARK + EXTRA:
        rates = []
        for r in range(args.repeats):
            start = time.perf_counter()
            n = 0
            for s in (1, 2, 3, 4, 5):
                for i, im in enumerate(photos):
                    corrupt(im, name, s, seed=r * 1000 + i, frost_source=args.frost_source)
                    n += 1
            rates.append(n / (time.perf_counter() - start))
        per[name] = {"images_per_s": round(float(np.median(rates)), 1),
                     "repeats": [round(x, 1) for x in rates]}
        print(f"{name:18s} {per[name]['images_per_s']:8.1f} images/s")
    total = sum(1 / v["images_per_s"] for v in per.values())
    record = {"benchmark": "ImageNet-C corruptions, 224x224, CPU, 1 thread",
              "machine": machine_info(), "image_size": 224, "images": len(photos),
              "severities": 5, "repeats": args.repeats, "frost_source": frost_src,
              "load_average_before_after": [load_before, list(os.getloadavg())],
              "corruptions": per,
              "all_95_settings_seconds_per_image": round(total * 5, 3)}
    append_record(args.out, record)
    print(f"all 19 corruptions x 5 severities: {record['all_95_settings_seconds_per_image']} "
          f"s per image; appended to {args.out}")


if __name__ == "__main__":
    main()
