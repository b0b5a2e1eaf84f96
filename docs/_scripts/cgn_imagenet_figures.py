"""Figures of docs/cgn_imagenet.md: the stand-in CGN's mechanisms and counterfactuals.

The stand-in is the real :class:`generators.cgn.imagenet.model.CGNImageNet` on the tiny
random-weights BigGAN-deep (32 x 32, 10 classes) with the real u2netp weights from
``../shared/data/u2netp/u2netp.onnx``: its masks are the real u2netp's saliency of the
random pre-masks. Writes

* ``docs/_static/cgn_imagenet_mechanisms.png`` -- rows pre-mask, mask, foreground,
  background, composite for six base samples (counterfactual ImageNet, mode random);
* ``docs/_static/cgn_imagenet_interpolation.png`` -- one interpolation sheet per
  mechanism (shape, texture, background, all) from class 1 to class 7, noise fixed.

    python docs/_scripts/cgn_imagenet_figures.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from causalkit.datasets.image_folder import read_image
from generators.biggan import tiny_config
from generators.cgn.imagenet import build_cgn_imagenet
from generators.cgn.imagenet.generate import (
    GenerationSettings,
    noise_from_seed,
    read_labels,
    write_counterfactual_imagenet,
)
from generators.images import save_strip

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "docs" / "_static"
U2NETP = ROOT.parent / "shared" / "data" / "u2netp" / "u2netp.onnx"


def main() -> None:
    torch.set_num_threads(1)
    if not U2NETP.is_file():
        raise SystemExit(f"the real u2netp is missing ({U2NETP}); the figures show its masks")
    cgn = build_cgn_imagenet(tiny_config(), u2net=str(U2NETP), seed=0, device="cpu").eval()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cf"
        write_counterfactual_imagenet(cgn, out, GenerationSettings(n=6, shard_size=6, seed=0),
                                      batch_size=6, progress=False)
        table = read_labels(out)
        u = torch.cat([noise_from_seed(s, cgn.dim_z) for s in table["seed_shape"]])
        y = {m: torch.as_tensor(table[m]) for m in ("shape", "texture", "background")}
        with torch.no_grad():
            o = cgn({m: u for m in y}, y)
        written = torch.from_numpy(np.stack([read_image(out / f) for f in table["file"]]))
        rows = [o.premask, o.mask.expand(-1, 3, -1, -1) * 2 - 1, o.foreground, o.background,
                written.permute(0, 3, 1, 2)]
        save_strip(rows, STATIC / "cgn_imagenet_mechanisms.png", upscale=4)

        sheets = []
        for mech in ("shape", "texture", "background", "all"):
            folder = Path(tmp) / mech
            write_counterfactual_imagenet(
                cgn, folder, GenerationSettings(n=1, shard_size=8, mode="fixed",
                                                classes=(1, 1, 1), interpolate=mech,
                                                interp_class=7, midpoints=6, seed=0),
                batch_size=8, progress=False)
            files = read_labels(folder)["file"]
            sheets.append(torch.from_numpy(np.stack([read_image(folder / f) for f in files]))
                          .permute(0, 3, 1, 2))
        save_strip(sheets, STATIC / "cgn_imagenet_interpolation.png", upscale=4)
    print("wrote", STATIC / "cgn_imagenet_mechanisms.png", "and",
          STATIC / "cgn_imagenet_interpolation.png")


if __name__ == "__main__":
    main()
