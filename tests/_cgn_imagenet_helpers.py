"""Stand-ins for the ImageNet CGN pipeline's tests: a tiny CGN and a tiny ImageFolder.

The CGN is the real :class:`generators.cgn.imagenet.model.CGNImageNet` on a 32 x 32,
10-class BigGAN-deep with random weights (through the strict BigGAN loader) and the real
u2netp weights from ``../shared/data`` (a random u2netp when they are absent), saved once
per process so that subprocesses can load it quickly.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from conftest import SHARED_DATA

U2NETP = SHARED_DATA / "u2netp" / "u2netp.onnx"


def u2net_spec() -> str:
    """The real u2netp file when present, else a random u2netp."""
    return str(U2NETP) if U2NETP.is_file() else "random:u2netp"


@functools.lru_cache(maxsize=1)
def tiny_cgn_file() -> Path:
    """A saved tiny CGN (``load_cgn_imagenet`` reads it)."""
    import pytest

    pytest.importorskip("generators.u2net", reason="generators.u2net (the U^2-Net) is "
                        "not in this tree")
    from generators.biggan import tiny_config
    from generators.cgn.imagenet import build_cgn_imagenet, save_cgn_imagenet

    spec = u2net_spec()
    cgn = build_cgn_imagenet(tiny_config(), u2net=spec.split(":")[-1] if spec.startswith(
        "random:") else spec, seed=0, device="cpu")
    path = Path(tempfile.mkdtemp(prefix="tiny_cgn_")) / "cgn.pt"
    save_cgn_imagenet(cgn, path)
    return path


def tiny_cgn():
    """The tiny CGN in eval mode on the CPU (a fresh copy each call)."""
    from generators.cgn.imagenet import load_cgn_imagenet

    return load_cgn_imagenet(tiny_cgn_file(), device="cpu").eval()


def write_image_folder(root: Path, *, classes: int = 3, per_class: int = 4,
                       size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """An ImageFolder of random RGB images (PNG and JPEG), ``root/c<k>/<i>.<ext>``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"c{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            ext = "png" if i % 2 == 0 else "jpg"
            Image.fromarray(array).save(folder / f"{i}.{ext}")
    return root


def folder_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}
