"""Draw docs/_static/corruptions_grid.png: every ImageNet-C corruption at severities 1-5.

scikit-image's ``chelsea``, resized (short side 224) and centre-cropped to 224x224, is
corrupted by :func:`analysis.benchmarks.corruptions.corrupt` with seed 0; one row per
corruption (the 15 benchmark ones, then the 4 extra), the clean image in the first column.

    python docs/_scripts/corruptions_grid.py [--frost-source auto]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frost-source", default="auto",
                        choices=("auto", "reference", "procedural"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "_static" / "corruptions_grid.png"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image
    from skimage.data import chelsea

    from analysis.benchmarks.corruptions import BENCHMARK, EXTRA, corrupt, frost_texture_source

    im = Image.fromarray(chelsea())
    w, h = im.size
    im = im.resize((round(w * 224 / h), 224), Image.BILINEAR)
    left = (im.size[0] - 224) // 2
    cat = np.asarray(im)[:, left:left + 224].copy()
    names = BENCHMARK + EXTRA
    frost = frost_texture_source(args.frost_source)
    fig, axes = plt.subplots(len(names), 6, figsize=(6 * 1.15, len(names) * 0.88), dpi=72)
    for r, name in enumerate(names):
        for c in range(6):
            ax = axes[r, c]
            img = cat if c == 0 else corrupt(cat, name, c, seed=0,
                                             frost_source=args.frost_source)
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("clean" if c == 0 else f"severity {c}", fontsize=8)
            if c == 0:
                label = name + (" (extra)" if name in EXTRA else "")
                if name == "frost":
                    label += f"\n[{frost} textures]"
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(left=0.22, right=0.99, top=0.98, bottom=0.01, wspace=0.03,
                        hspace=0.05)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out} (frost: {frost} textures)")


if __name__ == "__main__":
    main()
