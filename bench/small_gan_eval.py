"""Evaluate a trained small GAN: class fidelity and what its top directions change.

1. An "oracle" digit classifier is trained on *real* double-colored MNIST with
   rho = 0.1 (colours independent of the digit): a LeNet-style CNN reading a colour-free
   view of the image (each pixel's distance from the background colour), so it judges
   shape only. Its accuracy on the real OOD split is recorded.
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
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._machine import machine_info  # noqa: E402
from causalkit.io import atomic_write, atomic_write_text  # noqa: E402


def _rgb255(x: torch.Tensor) -> torch.Tensor:
    """Float RGB in 0-255 from uint8 images or float images in [-1, 1]."""
    return (x.float() + 1) * 127.5 if x.is_floating_point() else x.float()


def _border_mean(x255: torch.Tensor) -> torch.Tensor:
    mask = torch.ones(x255.shape[-2:], dtype=torch.bool)
    mask[2:-2, 2:-2] = False
    return x255[:, :, mask].mean(dim=2)


def background_color(x: torch.Tensor) -> torch.Tensor:
    """Mean RGB (0-255) of the 2-pixel border (always background: digits are padded)."""
    return _border_mean(_rgb255(x))


def foreground_color(x: torch.Tensor, frac: float = 0.1) -> torch.Tensor:
    """Mean RGB of the ``frac`` of pixels farthest from the background colour."""
    x = _rgb255(x)
    bg = _border_mean(x)  # not background_color(x): x is already 0-255 floats
    flat = x.flatten(2)  # (n, 3, hw)
    dist = (flat - bg[:, :, None]).norm(dim=1)  # (n, hw)
    k = max(1, int(frac * flat.shape[2]))
    idx = dist.topk(k, dim=1).indices
    return torch.gather(flat, 2, idx[:, None, :].expand(-1, 3, -1)).mean(dim=2)


def shape_map(x: torch.Tensor) -> torch.Tensor:
    """Colour-free view of float images in [-1, 1]: each pixel's RGB distance from the
    image's background colour, scaled to [-1, 1] and repeated on 3 channels."""
    bg = background_color(x) / 127.5 - 1.0
    d = (x - bg[:, :, None, None]).norm(dim=1, keepdim=True) / (2 * 3 ** 0.5)
    return (2.0 * d - 1.0).expand(-1, 3, -1, -1)


class ShapeOracle(torch.nn.Module):
    """A LeNet-style CNN on :func:`shape_map` inputs: a digit reader that ignores colour.

    (LeNet's flattened features learn MNIST shapes in a few hundred steps; the MNIST CNN
    of :mod:`robust_training.models`, which pools globally, reached 88 % in 800.)
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        nn = torch.nn
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.cnn = nn.Sequential(
                nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(32 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
        self.head_names = ("label",)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"label": self.cnn(shape_map(x)[:, :1])}

    def logits(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        return self(x)["label"]


def train_oracle(source: str | None, out: Path, *, steps: int = 800, seed: int = 0):
    """A :class:`ShapeOracle` trained (ERM) on real double-colored MNIST, rho = 0.1.

    Cached as ``out/oracle.pt``. Returns the model and its accuracy on the real OOD split.
    """
    from causalkit.datasets import build_split
    from robust_training.engine import FitConfig, evaluate, fit
    from robust_training.streams import MultiStream, Stream

    ood = build_split("double-colored-mnist", "ood", rho=0.1, seed=seed, source=source,
                      cache=False)
    model = ShapeOracle(seed)
    path = out / "oracle.pt"
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        tr = build_split("double-colored-mnist", "train", rho=0.1, seed=seed, source=source,
                         cache=False)
        streams = MultiStream([Stream("real", tr.images, tr.labels, 128)], seed=seed)
        model, _ = fit(streams, FitConfig("erm", steps=steps, lr=1e-3, seed=seed), None,
                       device="cpu", model=model)
        atomic_write(path, lambda fh: torch.save(model.state_dict(), fh))
    model.eval()
    return model, evaluate(model, ood.images, ood.labels)["accuracy"]


@torch.no_grad()
def classify(model, images: torch.Tensor) -> torch.Tensor:
    """Oracle predictions for float images in [-1, 1]."""
    return torch.cat([model.logits(images[i:i + 500], "label").argmax(1)
                      for i in range(0, len(images), 500)])


def strip_png(rows: list[torch.Tensor], path: Path, scale: int = 3) -> None:
    """Save rows of images (each (m, 3, 32, 32) in [-1, 1]) as one PNG."""
    from PIL import Image

    from robust_training.streams import to_uint8

    pad, s = 2, rows[0].shape[-1]
    m = max(len(r) for r in rows)
    grid = torch.full((3, len(rows) * (s + pad) + pad, m * (s + pad) + pad), 255,
                      dtype=torch.uint8)
    for i, r in enumerate(rows):
        u = to_uint8(r)
        for j in range(len(r)):
            grid[:, pad + i * (s + pad):pad + i * (s + pad) + s,
                 pad + j * (s + pad):pad + j * (s + pad) + s] = u[j]
    img = Image.fromarray(grid.permute(1, 2, 0).numpy())
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    atomic_write(path, lambda fh: img.save(fh, format="PNG"))


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
    oracle, oracle_ood = train_oracle(a.source, Path(a.oracle), seed=a.seed)
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
    strip_png([samples[labels == c][:10] for c in range(nc)], Path(a.grid), scale=2)

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
    strip_png(rows, Path(a.strips))
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
