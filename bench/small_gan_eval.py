"""Evaluate a trained small GAN: class fidelity and what its top directions change.

1. An "oracle" digit classifier (:class:`robust_training.oracle.ShapeOracle`) is trained
   on *real* double-colored MNIST with rho = 0.1 (colours independent of the digit): a
   LeNet-style CNN reading a colour-free view of the image (each pixel's distance from
   the background colour), so it judges shape only. Its accuracy on the real OOD split
   is recorded.
2. The generator's samples (``--per-class`` per class, truncation 1 and 0.5) are
   classified by it: the fraction whose predicted digit is the conditioning class.
3. The top directions (SVD shortcut on the affine first layer ``gen_z``) are applied
   with offsets ``-r_j .. +r_j`` (the strategy range at s = 1); for each the mean change
   of the background and foreground colour (RGB, 0-255) between the two ends is
   measured, against random unit directions as a baseline, together with the oracle's
   agreement with the conditioning class after the edit. Image strips are saved.

Usage::

    python bench/small_gan_eval.py --generator runs/small_gan_dcm09/generator \\
        --source mnist:../shared/data/mnist --out bench/results/small_gan.json \\
        --strips docs/_static/small_gan_directions.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from causalkit.datasets.nuisances import background_color, foreground_color
from causalkit.io import atomic_write_text
from causalkit.records import machine_info
from generators.images import save_strip
from robust_training.oracle import classify, train_shape_oracle


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", required=True)
    p.add_argument("--source", default=None)
    p.add_argument("--oracle", default="runs/oracle_lenet")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--k", type=int, default=5, help="directions to measure")
    p.add_argument("--out", default="bench/results/small_gan.json")
    p.add_argument("--strips", default="docs/_static/small_gan_directions.png")
    p.add_argument("--grid", default="docs/_static/small_gan_samples.png")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from generators.directions import RANGE_FACTOR, shortcut_directions
    from generators.small_gan import load_small_gan

    t0 = time.perf_counter()
    oracle, oracle_ood = train_shape_oracle(a.source, Path(a.oracle), seed=a.seed)
    gen = load_small_gan(a.generator, device="cpu")
    nc = gen.num_classes
    labels = torch.arange(nc).repeat_interleave(a.per_class)
    fidelity = {}
    for t in (1.0, 0.5):
        z = gen.sample_noise(len(labels), t, seed=a.seed)
        x = gen.generate(z, labels, t)
        pred = classify(oracle, x)
        per = [(pred[labels == c] == c).float().mean().item() for c in range(nc)]
        fidelity[f"t={t:g}"] = {"accuracy": (pred == labels).float().mean().item(),
                                "per_class": [round(v, 3) for v in per]}
        if t == 1.0:
            samples = x
    # Sample grid: 10 classes x 10 samples at truncation 1.
    save_strip([samples[labels == c][:10] for c in range(nc)], Path(a.grid), upscale=2)

    dirs = shortcut_directions(gen)
    r = dirs.ranges(RANGE_FACTOR)
    n = 20 * nc
    z = gen.sample_noise(n, 1.0, seed=a.seed + 1)
    y = torch.arange(nc).repeat(n // nc)
    gen_rand = torch.Generator().manual_seed(a.seed + 2)

    def effect(u: torch.Tensor, rj: float) -> dict:
        lo, hi = gen.generate(z - rj * u, y), gen.generate(z + rj * u, y)
        d_bg = (background_color(hi) - background_color(lo)).norm(dim=1).mean().item()
        d_fg = (foreground_color(hi) - foreground_color(lo)).norm(dim=1).mean().item()
        keep = torch.cat([classify(oracle, lo) == y, classify(oracle, hi) == y])
        return {"delta_bg_rgb": round(d_bg, 2), "delta_fg_rgb": round(d_fg, 2),
                "class_kept": round(keep.float().mean().item(), 3)}

    directions = []
    for j in range(a.k):
        u = torch.from_numpy(dirs.components[j])
        directions.append({"direction": j, "range": round(float(r[j]), 3),
                           "singular_value_sq": round(float(dirs.explained_variance[j]), 3),
                           **effect(u, float(r[j]))})
    randoms = []
    for _ in range(a.k):
        u = torch.randn(gen.z_dim, generator=gen_rand)
        randoms.append(effect(u / u.norm(), float(r[0])))
    baseline = {k: round(float(np.mean([e[k] for e in randoms])), 3) for k in randoms[0]}
    # Strips: per direction, two (class, z) pairs, offsets -2r .. 2r in 7 steps.
    rows = []
    zs = gen.sample_noise(2, 1.0, seed=a.seed + 3)
    for j in range(a.k):
        u = torch.from_numpy(dirs.components[j])
        steps = torch.linspace(-2.0, 2.0, 7) * float(r[j])
        for i, c in enumerate((3, 7)):
            zz = zs[i] + steps[:, None] * u
            rows.append(gen.generate(zz, [c] * 7))
    save_strip(rows, Path(a.strips))
    record = {"benchmark": "small_gan_eval", "generator": a.generator,
              "provenance": json.loads((Path(a.generator) / "config.json").read_text()
                                       ).get("provenance", {}),
              "oracle": {"data": "double-colored-mnist rho=0.1 (train), LeNet on shape_map, ERM",
                         "ood_accuracy": round(oracle_ood, 4)},
              "class_fidelity": fidelity,
              "directions": directions, "random_direction_baseline": baseline,
              "n_pairs_per_direction": n, "seconds": round(time.perf_counter() - t0, 1),
              "machine": machine_info()}
    atomic_write_text(a.out, json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("oracle", "class_fidelity", "directions",
                                            "random_direction_baseline")}, indent=1))
    return record


if __name__ == "__main__":
    main()
