"""Do the Wildlife counterfactuals cover the colours of unseen grounds? A palette census.

Reads a finished ``causalkit reproduce cgn-mnist --variant wildlife`` run folder (its
``results.json`` and ``counterfactuals.npz``) and compares the ground colours of five
image sets: the biased training split, the run's counterfactuals, the paper's OOD split,
and the texture-OOD sets ``photos`` and ``photos-gray``
(:mod:`causalkit.datasets.texture_sets`), all in the run's rendering.

The ground is read where no digit can be: the outer frame of each image (``--frame``
pixels wide; the digits are centred, so the frame is ground in every set, the
counterfactuals included, whose masks are not stored). Each frame pixel goes to a bin of
hue x saturation (HSV, ``--bins`` x ``--bins``). A set's *coverage by the
counterfactuals* is the share of its frame pixels that fall in bins where the
counterfactuals put at least ``--floor`` of their own frame pixels: 1.0 means every
ground colour of the set was seen in training through a counterfactual.

Nothing is trained or chosen here. Appends one record to
``bench/results/texture_coverage.json`` and draws the five densities side by side.

    python bench/texture_coverage.py RUN_DIR [--png docs/_static/texture_coverage.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from causalkit.datasets import build_split
from causalkit.datasets.texture_sets import texture_set_folder
from causalkit.records import append_record, machine_info
from robust_training.experiments.cgn_runs import data_kwargs

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "texture_coverage.json"


def frame_pixels(images: np.ndarray, width: int) -> np.ndarray:
    """RGB in [0, 1] of the outer ``width`` pixels of uint8 ``images`` (N, 3, H, W)."""
    keep = np.ones(images.shape[2:], bool)
    keep[width:-width, width:-width] = False
    return images.transpose(0, 2, 3, 1)[:, keep].reshape(-1, 3) / 255.0


def hs_density(rgb: np.ndarray, bins: int) -> np.ndarray:
    """Normalised hue x saturation histogram (bins x bins) of RGB pixels in [0, 1]."""
    from skimage.color import rgb2hsv

    hsv = rgb2hsv(rgb[None].astype(np.float64))[0]
    hist, _, _ = np.histogram2d(hsv[:, 0], hsv[:, 1], bins=bins, range=[[0, 1], [0, 1]])
    return hist / max(hist.sum(), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--n", type=int, default=10000, help="images per set (default 10,000)")
    p.add_argument("--frame", type=int, default=3, help="frame width in pixels")
    p.add_argument("--bins", type=int, default=24, help="hue and saturation bins")
    p.add_argument("--floor", type=float, default=1e-4,
                   help="a bin counts as covered from this share of counterfactual pixels")
    p.add_argument("--png", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    record = json.loads((args.run / "results.json").read_text())
    data = data_kwargs(record)
    seed = int(record["config"]["seed"])
    split = dict(seed=seed, n=args.n, source=data["source"], rendering=data["rendering"],
                 cache=False)
    cf = np.load(args.run / "counterfactuals.npz", allow_pickle=False)["images"]
    pick = np.random.default_rng(seed).choice(len(cf), size=min(args.n, len(cf)),
                                              replace=False)
    sets = {
        "training split": build_split("wildlife-mnist", "train", textures=data["textures"],
                                      **split).images,
        "counterfactuals": cf[np.sort(pick)],
        "paper OOD split": build_split("wildlife-mnist", "ood", textures=data["textures"],
                                       **split).images,
    }
    for spec in ("photos", "photos-gray"):
        sets[f"texture set {spec}"] = build_split(
            "wildlife-mnist", "ood", textures=texture_set_folder(spec, training=data["textures"]),
            **split).images
    dens = {k: hs_density(frame_pixels(v, args.frame), args.bins) for k, v in sets.items()}
    covered = dens["counterfactuals"] >= args.floor
    coverage = {k: round(float(d[covered].sum()), 4) for k, d in dens.items()}
    for k, c in coverage.items():
        print(f"{k:<24} share of ground pixels in counterfactual-covered colours: {c:.3f}")
    append_record(RESULTS, {"benchmark": "texture_coverage", "run": str(args.run),
                            "variant": "wildlife", "seed": seed, "n": args.n,
                            "frame": args.frame, "bins": args.bins, "floor": args.floor,
                            "config": record["config"], "coverage": coverage,
                            "machine": machine_info()})
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(dens), figsize=(3.0 * len(dens), 3.2), sharey=True)
        for ax, (name, d) in zip(axes, dens.items(), strict=True):
            ax.imshow(np.log10(d.T + 1e-6), origin="lower", extent=(0, 1, 0, 1),
                      vmin=-6, vmax=-1, cmap="magma", aspect="auto")
            ax.contour(covered.T, levels=[0.5], colors="cyan", linewidths=0.8,
                       extent=(0, 1, 0, 1), origin="lower")
            ax.set_title(f"{name}\n{100 * coverage[name]:.0f}% covered", fontsize=9)
            ax.set_xlabel("hue")
        axes[0].set_ylabel("saturation")
        fig.suptitle("ground colours (image frames), log density; cyan: colours the "
                     "counterfactuals show", fontsize=9)
        fig.tight_layout()
        args.png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=110)
        print(args.png)


if __name__ == "__main__":
    main()
