"""A torch :class:`~torch.utils.data.Dataset` over a built split.

Items are ``(image, label, nuisances)``: a uint8 ``(3, 32, 32)`` tensor (or whatever
``transform`` makes of it), an int label and a dict of per-sample nuisance tensors, so
the default collate function batches them for any training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from causalkit.datasets.build import BiasedSplit

__all__ = ["BiasedMNIST", "to_model_input"]


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], the convention inside models."""
    return images.float().div_(127.5).sub_(1.0)


class BiasedMNIST(Dataset):
    """A built split as a torch Dataset.

    Attributes
    ----------
    images
        uint8 tensor ``(N, 3, 32, 32)`` (shares memory with the split's array).
    labels
        int64 tensor ``(N,)``.
    nuisances
        name -> tensor with first axis ``N`` (see
        :class:`~causalkit.datasets.build.BiasedSplit`).
    meta
        How the split was built (variant, split, rho, sigma, seed, source...).
    """

    def __init__(self, split: BiasedSplit,
                 transform: Callable[[torch.Tensor], Any] | None = None) -> None:
        self.split = split
        self.images = torch.from_numpy(np.ascontiguousarray(split.images))
        self.labels = torch.from_numpy(np.ascontiguousarray(split.labels))
        self.nuisances = {k: torch.from_numpy(np.ascontiguousarray(v))
                          for k, v in split.nuisances.items()}
        self.meta = split.meta
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int, dict[str, torch.Tensor]]:
        image = self.images[i]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[i]), {k: v[i] for k, v in self.nuisances.items()}

    def __repr__(self) -> str:
        m = self.meta
        return (f"BiasedMNIST({m.get('variant')}, split={m.get('split')}, n={len(self)}, "
                f"rho={m.get('rho')}, seed={m.get('seed')}, source={m.get('source_name')})")
