"""Build the training streams' data: generated pools, generated folders, transfers.

* :func:`generated_pool` -- images from a generator under a strategy (interventional
  ``"t=1,k=8,s=1"`` or observational ``"observational:t=0.2"``), the same number per
  class, seeded; directions default to the exact SVD shortcut when the generator has an
  affine first layer, else a GANSpace fit.
* :func:`load_generated_folder` -- a folder written by ``causalkit generate``
  (``labels.csv`` + PNGs).
* :func:`feature_net` -- the transfer's feature network from a spec: ``random[:SEED]``
  (offline) or ``resnet18:PATH`` (a torchvision checkpoint file).
* :func:`transfer_stream` -- ``T(I, X)`` for random pairs of real and interventional
  images, labelled with the real image's label.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from causalkit.errors import CausalKitError, DataError
from robust_training.streams import to_float, to_uint8

__all__ = ["generated_pool", "load_generated_folder", "feature_net", "transfer_stream"]


def generated_pool(generator, strategy: str, per_class: int, *, seed: int = 0,
                   directions=None, layer: str | None = None, batch_size: int = 256,
                   device: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` images per class from ``generator`` (a spec string or an instance).

    An interventional strategy moves along ``directions``; without them, along GANSpace
    directions fitted on ``layer`` (one name or several joined by ``+``, see
    :func:`~generators.directions.fit_layerwise_directions`; seed 0, so they belong to
    the generator, not to the run), or else along the first layer's exact shortcut.
    Returns uint8 images ``(n, 3, H, W)`` and int64 labels.
    """
    from generators.directions import default_directions
    from generators.registry import load_generator
    from generators.strategies import InterventionSampler, Observational, parse_strategy

    if isinstance(generator, str):
        if generator.startswith("small:"):
            from generators.small_gan import register

            register()
        generator = load_generator(generator, device=device or "cpu")
    strat = parse_strategy(strategy)
    if not isinstance(strat, Observational) and directions is None:
        directions = default_directions(generator, k=strat.components, layer=layer)
    sampler = InterventionSampler(generator, strat, directions)
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    labels = labels[perm]  # mixed classes per forward pass
    images, _ = sampler.sample(labels, seed, batch_size=batch_size)
    return to_uint8(images), labels


def load_generated_folder(folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a ``causalkit generate`` output folder."""
    from PIL import Image

    folder = Path(folder)
    index = folder / "labels.csv"
    if not index.is_file():
        raise DataError(f"{index} not found; pass a folder written by `causalkit generate`")
    with open(index, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DataError(f"{index} lists no images")
    images = np.stack([np.asarray(Image.open(folder / r["file"]).convert("RGB"))
                       for r in rows]).transpose(0, 3, 1, 2)
    labels = torch.tensor([int(r["label"]) for r in rows])
    return torch.from_numpy(np.ascontiguousarray(images)), labels


def feature_net(spec: str = "random") -> torch.nn.Module:
    """``random[:SEED]`` or ``resnetNN:PATH`` (torchvision weights file)."""
    from robust_training.transfer import random_features, resnet_features

    name, _, arg = spec.partition(":")
    if name == "random":
        try:
            return random_features(int(arg) if arg else 0)
        except ValueError:
            raise CausalKitError(f"random features take an integer seed (random:0), got "
                                 f"{arg!r}") from None
    if name.startswith("resnet"):
        if not arg:
            raise CausalKitError(f"{name} needs a weights file: {name}:PATH (torchvision "
                                 "state_dict), or use 'random' offline")
        return resnet_features(name, arg)
    raise CausalKitError(f"unknown feature net {spec!r}; use 'random[:SEED]' or "
                         "'resnet18:PATH'")


def transfer_stream(real_images: torch.Tensor, real_labels: torch.Tensor,
                    int_images: torch.Tensor, n: int, *, features: str = "random",
                    seed: int = 0, progress: bool = False, **kwargs
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` transferred images ``T(I, X)`` (uint8) with the real images' labels."""
    from robust_training.transfer import transfer_pool

    out, idx = transfer_pool(to_float(torch.as_tensor(real_images)),
                             to_float(torch.as_tensor(int_images)), feature_net(features),
                             n=n, seed=seed, progress=progress, **kwargs)
    return to_uint8(out), torch.as_tensor(real_labels)[idx]
