"""Labelled image sets under test: torch Datasets, PNG folders and named datasets.

The correlation probe and the likelihood both consume an :class:`ImageSet`: uint8 NCHW
images, integer labels and, when the data were made by a known SCM, the true nuisance
values of every sample. :func:`load_image_set` resolves what a user types after
``--data``:

``colored-mnist[:train|test|ood]`` (and ``double-colored-mnist``, ``wildlife-mnist``)
    A split of a biased MNIST variant (:func:`causalkit.datasets.get_dataset`); the
    split defaults to ``train``. Options ``rho``, ``seed``, ``source`` and ``n`` go
    through ``options``.
``gan:<generator>@<strategy>``
    Samples drawn on the fly from a generator spec (``tiny``, ``small:DIR``,
    ``biggan:DIR|NAME``): observational with ``@observational:t=0.2`` (GAN
    augmentation), interventional with ``@t=1,k=8,s=1`` (GenInt), classes uniform,
    labelled by the class they were generated for (default 2,000 images).
``cgn:colored|double-colored|wildlife``
    A CGN counterfactual set: the official MNIST CGN (``../shared/data/cgn_official``)
    with the shape class, the texture class and the background class drawn
    independently and uniformly, labelled by the shape class.
a directory
    ImageFolder layout (``DIR/<class>/<image>.png``; class folders sorted by name give
    labels ``0, 1, ...``), or a flat folder of PNGs with a ``labels.csv`` (columns
    ``file,label``) as ``causalkit generate`` writes it. torchvision is not needed.
a :class:`torch.utils.data.Dataset`
    Items ``(image, label, ...)`` with the image a uint8 or float tensor / array.

Examples
--------
>>> from analysis.imagesets import load_image_set              # doctest: +SKIP
>>> s = load_image_set("colored-mnist:ood", options={"n": 2000})  # doctest: +SKIP
>>> s.images.shape, s.labels.shape                             # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.datasets.image_folder import read_image
from causalkit.errors import DataError
from causalkit.io import read_labels_csv

__all__ = ["ImageSet", "load_image_set", "read_image_folder", "from_dataset", "resize",
           "NAMED_KINDS", "describe_names"]

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")

#: The name forms :func:`load_image_set` resolves, for help texts and errors.
NAMED_KINDS = {
    "<variant>[:train|test|ood]": "a biased MNIST split (colored-mnist, "
                                  "double-colored-mnist, wildlife-mnist)",
    "cgn:<colored|double-colored|wildlife>": "CGN counterfactuals from the official weights",
    "gan:<generator>@<strategy>": "GAN samples, e.g. gan:tiny@observational:t=0.2 or "
                                  "gan:small:DIR@t=1,k=8,s=1",
    "<directory>": "an ImageFolder / labels.csv folder of PNGs (e.g. GAN samples written "
                   "by 'causalkit generate')",
}


@dataclass
class ImageSet:
    """Labelled images, optionally with their true nuisances.

    Attributes
    ----------
    name
        How the set was named (shown in tables and plots).
    images
        uint8 tensor ``(N, 3, H, W)``.
    labels
        int64 tensor ``(N,)``.
    nuisances
        node name -> per-sample array (``None`` when unknown).
    true_z
        The true nuisances as one float matrix ``(N, d)`` for the ground-truth probe
        (colours as RGB, categorical nuisances one-hot), or ``None``.
    meta
        How the set was made.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    nuisances: dict[str, np.ndarray] | None = None
    true_z: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray | torch.Tensor) -> ImageSet:
        """The samples at ``idx`` (true nuisances included)."""
        idx_np = np.asarray(idx)
        idx_t = torch.as_tensor(idx_np, dtype=torch.long)
        return ImageSet(self.name, self.images[idx_t], self.labels[idx_t],
                        None if self.nuisances is None else
                        {k: np.asarray(v)[idx_np] for k, v in self.nuisances.items()},
                        None if self.true_z is None else self.true_z[idx_np], dict(self.meta))


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of float NCHW images to ``size x size``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                           align_corners=False, antialias=True)


def _as_uint8(images: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise DataError(f"images must be NCHW (or CHW per item), got shape {tuple(t.shape)}")
    if t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)  # NHWC -> NCHW
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    if t.dtype != torch.uint8:
        t = t.float()
        lo = float(t.min()) if t.numel() else 0.0
        # float images in [-1, 1] (the model convention) or [0, 1]
        t = (t + 1.0) * 127.5 if lo < -1e-6 else t * 255.0
        t = t.round().clamp(0, 255).to(torch.uint8)
    return t.contiguous()


def from_dataset(dataset: Any, name: str = "dataset", *, n: int | None = None,
                 seed: int = 0) -> ImageSet:
    """Read a torch Dataset with items ``(image, label, ...)`` into an :class:`ImageSet`.

    A :class:`~causalkit.datasets.torch_dataset.BiasedMNIST` is read without iterating
    and keeps its true nuisances. ``n`` takes a seeded random subset.
    """
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        images, labels = _as_uint8(dataset.images), torch.as_tensor(dataset.labels).long()
        nuis = getattr(dataset, "nuisances", None)
        nuis = None if nuis is None else {k: np.asarray(v) for k, v in nuis.items()}
        out = ImageSet(name, images, labels, nuis, meta=dict(getattr(dataset, "meta", {})))
        if nuis is not None:
            out.true_z = true_nuisance_matrix(nuis)
    else:
        if len(dataset) == 0:
            raise DataError(f"dataset {name!r} is empty")
        order = range(len(dataset))
        if n is not None and n < len(dataset):
            order = np.random.default_rng(seed).permutation(len(dataset))[:n]
        imgs, labs = [], []
        for i in order:
            item = dataset[int(i)]
            if not isinstance(item, (tuple, list)) or len(item) < 2:
                raise DataError(f"dataset {name!r} must yield (image, label, ...) items")
            imgs.append(_as_uint8(item[0])[0])
            labs.append(int(item[1]))
        out = ImageSet(name, torch.stack(imgs), torch.tensor(labs, dtype=torch.long))
        n = None
    return _take(out, n, seed)


def _take(s: ImageSet, n: int | None, seed: int) -> ImageSet:
    if n is None or n >= len(s):
        return s
    return s.subset(np.sort(np.random.default_rng(seed).permutation(len(s))[:n]))


def true_nuisance_matrix(nuisances: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The true *rendered* nuisances as floats ``(N, d)``.

    Colours (float RGB, e.g. ``fg_color``) when the set has them -- the latent colour
    *classes* are not visible in the image, the colours are; otherwise the class-id
    nuisances one-hot (Wildlife's textures). Bookkeeping columns (``digit``, the MNIST
    image index; ``aligned``; patch offsets) are left out. ``None`` when nothing is left.
    """
    keys = [k for k in sorted(nuisances)
            if k not in ("digit", "aligned") and not k.endswith("_offset")]
    floats = [k for k in keys if np.asarray(nuisances[k]).dtype.kind == "f"]
    ints = [k for k in keys if np.asarray(nuisances[k]).dtype.kind in "iu"
            and np.asarray(nuisances[k]).ndim == 1]
    if floats:
        cols = [np.asarray(nuisances[k], dtype=np.float32).reshape(len(nuisances[k]), -1)
                for k in floats]
    else:
        cols = [_one_hot(np.asarray(nuisances[k])) for k in ints]
    return np.concatenate(cols, axis=1) if cols else None


def _one_hot(v: np.ndarray) -> np.ndarray:
    k = max(10, int(v.max()) + 1) if v.size else 10
    return np.eye(k, dtype=np.float32)[v]


def read_image_folder(path: str | os.PathLike, *, n: int | None = None,
                      seed: int = 0) -> ImageSet:
    """Read PNGs from an ImageFolder tree or a flat folder with ``labels.csv``.

    Parameters
    ----------
    path
        ``DIR/<class>/*.png`` (class folders sorted by name; folders named by integers
        are sorted numerically) or ``DIR/labels.csv`` with columns ``file,label`` (paths
        relative to ``DIR``).
    n
        Read a seeded random subset of ``n`` images.
    """

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory of images")
    entries: list[tuple[Path, int]] = []
    csv_path = root / "labels.csv"
    if csv_path.is_file():
        entries = [(root / f, label) for f, label in read_labels_csv(csv_path)]
        class_names = None
    else:
        folders = [d for d in root.iterdir() if d.is_dir()]
        if not folders:
            raise DataError(f"{root} has neither class sub-folders (ImageFolder layout) nor "
                            "a labels.csv; see analysis.imagesets for the layouts")
        numeric = all(d.name.isdigit() for d in folders)
        folders.sort(key=(lambda d: int(d.name)) if numeric else (lambda d: d.name))
        class_names = [d.name for d in folders]
        for label, d in enumerate(folders):
            label_value = int(d.name) if numeric else label
            entries += [(f, label_value) for f in sorted(d.iterdir())
                        if f.suffix.lower() in _IMAGE_EXT]
    if not entries:
        raise DataError(f"no images ({', '.join(_IMAGE_EXT)}) found under {root}")
    if n is not None and n < len(entries):
        keep = np.sort(np.random.default_rng(seed).permutation(len(entries))[:n])
        entries = [entries[i] for i in keep]
    images = []
    size = None
    for f, _ in entries:
        if not f.is_file():
            raise DataError(f"{f} is listed in labels.csv but does not exist")
        arr = read_image(f)
        if size is None:
            size = arr.shape[:2]
        elif arr.shape[:2] != size:
            raise DataError(f"{f} is {arr.shape[1]}x{arr.shape[0]} but earlier images are "
                            f"{size[1]}x{size[0]}; resize the folder to one size")
        images.append(arr)
    imgs = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([lab for _, lab in entries], dtype=torch.long)
    return ImageSet(root.name, imgs, labels, meta={"path": str(root),
                                                   "classes": class_names})


def _cgn_counterfactuals(variant: str, n: int, seed: int, name: str) -> ImageSet:
    from generators.cgn.mnist.checkpoint import load_official

    model = load_official(variant)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, model.n_classes, (n, 3), generator=gen)
    out = []
    with torch.no_grad():
        for s in range(0, n, 256):
            o = model(y[s:s + 256, 0], y[s:s + 256, 1], y[s:s + 256, 2], generator=gen)
            out.append(o.image.cpu())
    images = _as_uint8(torch.cat(out).clamp(-1, 1))
    nuis = {"texture_class": y[:, 1].numpy(), "background_class": y[:, 2].numpy()}
    return ImageSet(name, images, y[:, 0].clone(), nuis, meta={"cgn": variant, "seed": seed})


def _gan_samples(spec: str, n: int, seed: int, name: str) -> ImageSet:
    from analysis.sources import resolve_source

    gen_spec, at, strategy = spec.rpartition("@")
    if not at or not gen_spec:
        raise DataError(f"gan:{spec} needs the form gan:<generator>@<strategy>, e.g. "
                        "gan:tiny@observational:t=0.2 or gan:small:DIR@t=1,k=8,s=1")
    batch = resolve_source(gen_spec, strategy).sample(n, seed=seed)
    return ImageSet(name, _as_uint8(batch.images), torch.from_numpy(batch.labels),
                    meta={"generator": gen_spec, "strategy": strategy, "seed": seed})


def load_image_set(spec: Any, *, options: Mapping[str, Any] | None = None,
                   name: str | None = None) -> ImageSet:
    """Resolve a dataset under test (see the module docstring for the forms).

    Parameters
    ----------
    spec
        A name, a directory, a torch Dataset or an :class:`ImageSet`.
    options
        ``n`` (subsample size, seeded), ``seed``, and for the biased MNIST variants
        ``rho``, ``source``, ``sigma``, ``cache``.
    name
        Display name; defaults to the spec.
    """
    opts = dict(options or {})
    n, seed = opts.pop("n", None), int(opts.pop("seed", 0))
    if isinstance(spec, ImageSet):
        return _take(spec, n, seed)
    if not isinstance(spec, (str, os.PathLike)):
        return from_dataset(spec, name or type(spec).__name__, n=n, seed=seed)
    text = str(spec)
    label = name or text
    from causalkit.datasets import DATASETS, get_dataset

    base, _, split = text.partition(":")
    if base in DATASETS:
        kwargs = {k: opts[k] for k in ("rho", "source", "sigma", "cache", "textures")
                  if k in opts}
        # Build the whole pool and subsample: asking the SCM for more samples than the
        # pool holds would repeat digits.
        ds = get_dataset(base, split or "train", seed=seed, **kwargs)
        return from_dataset(ds, label, n=n, seed=seed)
    if base == "cgn":
        return _cgn_counterfactuals(split, n or 2000, seed, label)
    if base == "gan":
        return _gan_samples(split, n or 2000, seed, label)
    if Path(text).is_dir():
        out = read_image_folder(text, n=n, seed=seed)
        out.name = label
        return out
    raise DataError(f"cannot resolve dataset {text!r}: not an existing directory nor a known "
                    f"name. Known forms: {describe_names()}")


def describe_names() -> str:
    """One line listing the name forms and the registered biased variants."""
    from causalkit.datasets import DATASETS

    forms = "; ".join(f"{k} ({v})" for k, v in NAMED_KINDS.items())
    return f"{forms}; variants: {', '.join(sorted(DATASETS))}"
