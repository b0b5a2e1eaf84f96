"""Why does the Wildlife CGN classifier lose unseen textures? Interventions on its inputs.

Reads a finished ``causalkit reproduce cgn-mnist --variant wildlife`` run folder (its
``results.json`` and ``classifiers/{cgn,original}``), rebuilds the run's own OOD split,
and scores the classifiers on the same digits with one property of the image changed at
a time, through the digit masks of the split's geometry (rendered with white digit and
black ground textures, so the mask is exact):

* the ground, or the digit fill, or both, made grey (luminance kept, colour removed);
* the ground replaced by its mean colour (colour kept, texture removed);
* the ground's or the digit's hue rotated by 180 degrees (texture kept, colour moved);
* shape alone: the digit and the ground each replaced by its mean colour (a flat
  silhouette in the image's own colours), only the digit's outline drawn in its mean
  colour on its flat ground, and the bare mask (a white digit on black, and inverted),
  which no training image resembles in colour;
* the texture-OOD sets of :mod:`causalkit.datasets.texture_sets` for reference (the
  validation set ``procedural`` among them, so that a run's score there can be read
  from its record).

Each set is also split by the digit's *contrast polarity*: whether its mean luminance
is above or below the mean luminance of its ground (the ``by_polarity`` entry).

Nothing is trained or chosen here. Appends one record to
``bench/results/texture_diagnosis.json`` and writes a grid of one row per variant.

    python bench/texture_diagnosis.py RUN_DIR [--png docs/_static/texture_diagnosis.png]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from causalkit.datasets import build_split
from causalkit.datasets.texture_sets import texture_set_folder
from causalkit.records import append_record, machine_info
from generators.images import save_grid
from robust_training.engine import accuracy, load_model
from robust_training.experiments.cgn_runs import data_kwargs

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "texture_diagnosis.json"


def _flat_textures(root: Path) -> Path:
    """White object textures, black background textures: renders the digit mask."""
    from PIL import Image

    for role, value in (("object", 255), ("background", 0)):
        (root / role).mkdir(parents=True, exist_ok=True)
        for k in range(10):
            Image.fromarray(np.full((150, 150, 3), value, np.uint8)).save(
                root / role / f"{k}_flat.png")
    return root


def _grey(x: np.ndarray) -> np.ndarray:
    lum = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    return np.repeat(lum, 3, axis=1)


def _hue_rotate(x: np.ndarray) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(x.transpose(0, 2, 3, 1) / 255.0)
    hsv[..., 0] = (hsv[..., 0] + 0.5) % 1.0
    return hsv2rgb(hsv).transpose(0, 3, 1, 2) * 255.0


def _outline(m: np.ndarray) -> np.ndarray:
    """The digit's boundary band: mask pixels with a ground pixel among their 8
    neighbours (about one pixel wide, inside the digit)."""
    from scipy.ndimage import binary_erosion

    inside = m[:, 0] > 0.5
    core = np.stack([binary_erosion(d, np.ones((3, 3), bool)) for d in inside])
    return (inside & ~core)[:, None].astype(np.float64)


def variants(x: np.ndarray, m: np.ndarray) -> dict[str, np.ndarray]:
    """The intervened images: ``x`` uint8 (N, 3, H, W), ``m`` the digit mask in [0, 1]."""
    xf = x.astype(np.float64)
    fg, bg = xf * m, xf * (1 - m)
    area = np.maximum((1 - m).sum(axis=(2, 3), keepdims=True), 1)
    mean_bg = bg.sum(axis=(2, 3), keepdims=True) / area
    mean_fg = fg.sum(axis=(2, 3), keepdims=True) / np.maximum(m.sum(axis=(2, 3),
                                                                   keepdims=True), 1)
    edge = _outline(m)
    out = {
        "as rendered": xf,
        "grey ground": fg + _grey(xf) * (1 - m),
        "grey digit": _grey(xf) * m + bg,
        "all grey": _grey(xf),
        "flat ground (its mean colour)": fg + mean_bg * (1 - m),
        "ground hue +180": fg + _hue_rotate(x) * (1 - m),
        "digit hue +180": _hue_rotate(x) * m + bg,
        "flat silhouette (both mean colours)": mean_fg * m + mean_bg * (1 - m),
        "outline only (flat ground)": mean_fg * edge + mean_bg * (1 - edge),
        "mask: white digit on black": 255.0 * np.repeat(m, 3, axis=1),
        "mask: black digit on white": 255.0 * (1 - np.repeat(m, 3, axis=1)),
    }
    return {k: np.clip(np.rint(v), 0, 255).astype(np.uint8) for k, v in out.items()}


def brighter_digit(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per image: is the digit's mean luminance above its ground's?"""
    lum = _grey(x.astype(np.float64))[:, 0]
    mm = m[:, 0]
    fg = (lum * mm).sum(axis=(1, 2)) / np.maximum(mm.sum(axis=(1, 2)), 1)
    bg = (lum * (1 - mm)).sum(axis=(1, 2)) / np.maximum((1 - mm).sum(axis=(1, 2)), 1)
    return fg > bg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--n", type=int, default=None, help="OOD images (default: the run's)")
    p.add_argument("--png", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    record = json.loads((args.run / "results.json").read_text())
    data = data_kwargs(record)
    seed = int(record["config"]["seed"])
    n = args.n or record["n_ood"]
    split = dict(seed=seed, n=n, source=data["source"], rendering=data["rendering"],
                 cache=False)
    ood = build_split("wildlife-mnist", "ood", textures=data["textures"], **split)
    with tempfile.TemporaryDirectory() as tmp:
        mask = build_split("wildlife-mnist", "ood", textures=_flat_textures(Path(tmp)),
                           **split)
    assert np.array_equal(mask.labels, ood.labels)
    m = mask.images[:, :1].astype(np.float64) / 255.0
    sets = variants(ood.images, m)
    for spec in ("photos", "photos:background", "photos:object", "photos-gray", "procedural"):
        sets[f"texture set {spec}"] = build_split(
            "wildlife-mnist", "ood", textures=texture_set_folder(spec, training=data["textures"]),
            **split).images
    models = {name: load_model(args.run / "classifiers" / name)
              for name in ("cgn", "original") if (args.run / "classifiers" / name).is_dir()}
    labels = torch.as_tensor(ood.labels)
    table = {v: {name: round(accuracy(model, torch.as_tensor(imgs), labels), 4)
                 for name, model in models.items()} for v, imgs in sets.items()}
    for v, row in table.items():
        print(f"{v:<40}" + "  ".join(f"{k} {100 * a:5.1f}" for k, a in row.items()))
    polarity: dict[str, dict[str, dict[str, float]]] = {}
    for v in ["as rendered"] + [k for k in sets if k.startswith("texture set")]:
        bright = brighter_digit(sets[v], m)
        polarity[v] = {}
        for side, sel in (("digit brighter", bright), ("digit darker", ~bright)):
            row = {"share": round(float(sel.mean()), 4)}
            if sel.any():
                idx = torch.as_tensor(np.flatnonzero(sel))
                for name, model in models.items():
                    row[name] = round(accuracy(model, torch.as_tensor(sets[v][sel]),
                                               labels[idx]), 4)
            polarity[v][side] = row
            print(f"{v:<32}{side:<16}" + "  ".join(f"{k} {a:.3f}" for k, a in row.items()))
    append_record(RESULTS, {"benchmark": "texture_diagnosis", "run": str(args.run),
                            "variant": "wildlife", "seed": seed, "n": n,
                            "config": record["config"], "accuracy": table,
                            "by_polarity": polarity,
                            "machine": machine_info()})
    if args.png:
        rows = [torch.as_tensor(imgs[:12]) for imgs in sets.values()]
        print(save_grid(torch.cat(rows), args.png, nrow=12, upscale=2))


if __name__ == "__main__":
    main()
