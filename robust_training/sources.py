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

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError, DataError
from generators.images import to_float, to_uint8

__all__ = ["generated_pool", "load_generated_folder", "feature_net", "transfer_stream",
           "method_data"]


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
    from generators.registry import load_generator
    from generators.sampling import make_sampler

    if isinstance(generator, str):
        if generator.startswith("small:"):
            from generators.small_gan import register

            register()
        generator = load_generator(generator, device=device or "cpu")
    # Given directions win over ``layer`` here (the factory calls both an error).
    sampler = make_sampler(generator, strategy, directions=directions,
                           layer=layer if directions is None else None).sampler
    labels = torch.arange(generator.num_classes).repeat_interleave(per_class)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    labels = labels[perm]  # mixed classes per forward pass
    images, _ = sampler.sample(labels, seed, batch_size=batch_size)
    return to_uint8(images), labels


def load_generated_folder(folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a ``causalkit generate`` output folder."""
    from causalkit.datasets.image_folder import read_image
    from causalkit.io import read_labels_csv

    folder = Path(folder)
    index = folder / "labels.csv"
    if not index.is_file():
        raise DataError(f"{index} not found; pass a folder written by `causalkit generate`")
    rows = read_labels_csv(index)
    if not rows:
        raise DataError(f"{index} lists no images")
    images = np.stack([read_image(folder / f) for f, _ in rows]).transpose(0, 3, 1, 2)
    labels = torch.tensor([label for _, label in rows])
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


def method_data(method: str, real_images: Any, real_labels: Any, *, generator: str | None,
                strategy: str, obs_strategy: str, layer: str | None, per_class: int,
                int_data: str | os.PathLike | None = None,
                cf_data: str | os.PathLike | None = None, transfer_n: int = 5000,
                transfer_steps: int = 20, features: str = "random", seed: int = 0,
                device: str | None = None, progress: bool = True
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The generated data (kind -> (images, labels)) that the method ``method``
    (:mod:`robust_training.methods`) trains on besides the real images:
    ``int`` (``strategy``, or the folder ``int_data``), ``obs`` (``obs_strategy``),
    ``transfer`` (``T(I, X_int)``) and ``cf`` (a CGN counterfactual set ``cf_data``)."""
    from robust_training.methods import get_method

    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    name = f"--method {method}"

    def pool(strat: str) -> tuple[torch.Tensor, torch.Tensor]:
        if int_data is not None and strat == strategy:
            return load_generated_folder(int_data)
        if generator is None:
            raise CausalKitError(f"{name} needs --generator (e.g. small:DIR) or "
                                 "--int-data DIR")
        return generated_pool(generator, strat, per_class, seed=seed, device=device,
                              layer=layer if strat == strategy else None)

    kinds = get_method(method).streams
    if "int" in kinds:
        out["int"] = pool(strategy)
    if "obs" in kinds:
        out["obs"] = pool(obs_strategy)
    if "transfer" in kinds:
        out["transfer"] = transfer_stream(real_images, real_labels, out["int"][0], transfer_n,
                                          features=features, seed=seed, steps=transfer_steps,
                                          progress=progress)
    if "cf" in kinds:
        if cf_data is None:
            raise CausalKitError(f"{name} needs --cf-data FILE.npz (CGN counterfactuals)")
        from generators.cgn.counterfactuals import CounterfactualSet

        cf = CounterfactualSet.load(cf_data)
        out["cf"] = (cf.images, cf.labels())
    return out
