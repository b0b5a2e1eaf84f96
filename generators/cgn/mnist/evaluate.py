"""Quality measures of a CGN that need no pretrained network.

* :func:`mask_digit_accuracy` -- how often the mask of class ``k`` is read as digit ``k``
  by a small CNN trained on binarised MNIST digits (:func:`train_mask_reader`);
* :func:`colour_distance` -- L1 distance between per-class colour statistics
  (channel means, spreads, covariances) of generated and real images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generators.cgn.mnist.losses import colour_stats
from generators.cgn.mnist.model import MnistCGN

__all__ = ["train_mask_reader", "mask_digit_accuracy", "colour_distance"]


def train_mask_reader(digits: np.ndarray, labels: np.ndarray, *, epochs: int = 2,
                      seed: int = 0) -> nn.Module:
    """A small CNN reading binarised 32 x 32 digits (uint8 or float, N x 32 x 32 or
    N x 1 x 32 x 32; any non-zero stroke counts)."""
    x = torch.as_tensor(np.asarray(digits)).float()
    x = x.reshape(len(x), 1, *x.shape[-2:])
    if x.shape[-1] != 32:
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x > 0.3 * x.amax()).float()
    y = torch.as_tensor(np.asarray(labels)).long()
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(order), 64):
            b = order[i:i + 64]
            dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
            loss = F.cross_entropy(net(torch.roll(x[b], (dy, dx), (2, 3))), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def mask_digit_accuracy(cgn: MnistCGN, reader: nn.Module, *, per_class: int = 50,
                        seed: int = 0) -> float:
    """Fraction of CGN masks (``per_class`` per digit) that ``reader`` reads as their class."""
    cgn.eval()
    y = torch.arange(cgn.n_classes).repeat_interleave(per_class)
    mask = cgn(y.to(cgn.device), generator=torch.Generator().manual_seed(seed)).mask.cpu()
    return float((reader((mask > 0.5).float()).argmax(1) == y).float().mean())


def colour_distance(fake_u8: np.ndarray, fake_y: np.ndarray, real_u8: np.ndarray,
                    real_y: np.ndarray) -> float:
    """Mean over classes of the L1 distance between mean colour statistics (images in
    uint8 N x 3 x H x W, both on the [-1, 1] scale)."""
    def stats(x: np.ndarray) -> torch.Tensor:
        return colour_stats(torch.as_tensor(x).float() / 127.5 - 1).mean(0)

    dists = [float((stats(fake_u8[fake_y == k]) - stats(real_u8[real_y == k])).abs().mean())
             for k in np.unique(real_y) if np.any(fake_y == k)]
    return float(np.mean(dists))
