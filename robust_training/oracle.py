"""A colour-blind digit reader: does a generated MNIST image still show its digit?

Screening an intervention needs a judge of the object that the intervened nuisance
cannot fool. :class:`ShapeOracle` is one for the colour variants: a LeNet-style CNN that
never sees colours, only :func:`~causalkit.datasets.nuisances.shape_map` -- each pixel's
distance from the image's background colour -- so it reads the digit's shape and
nothing else. :func:`train_shape_oracle` trains it (ERM) on *real* double-colored MNIST
with ``rho = 0.1``, where colours carry almost no information about the digit, and
caches the weights; :func:`classify` applies it in batches.

Its accuracy on the real OOD split is what a "recognised" fraction of generated images
is to be read against (about 93 % for the default 800 steps).

Examples
--------
>>> oracle, ood_accuracy = train_shape_oracle("embedded", "runs/oracle")  # doctest: +SKIP
>>> (classify(oracle, images) == labels).float().mean()                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from causalkit.datasets.nuisances import shape_map
from causalkit.io import atomic_write, load_torch

__all__ = ["ShapeOracle", "train_shape_oracle", "classify"]


class ShapeOracle(nn.Module):
    """A LeNet-style CNN on :func:`~causalkit.datasets.nuisances.shape_map` inputs: a
    digit reader that ignores colour.

    (LeNet's flattened features learn MNIST shapes in a few hundred steps; the MNIST CNN
    of :mod:`robust_training.models`, which pools globally, reached 88 % in 800.)
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.cnn = nn.Sequential(
                nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(32 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
        self.head_names = ("label",)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"label": logits}`` of float images in [-1, 1]."""
        return {"label": self.cnn(shape_map(x)[:, :1])}

    def logits(self, x: torch.Tensor, head: str | None = None) -> torch.Tensor:
        """The label logits (the only head)."""
        return self(x)["label"]


def train_shape_oracle(source: str | None, out: str | os.PathLike, *, steps: int = 800,
                       seed: int = 0) -> tuple[ShapeOracle, float]:
    """A :class:`ShapeOracle` trained (ERM) on real double-colored MNIST, rho = 0.1.

    Parameters
    ----------
    source
        The MNIST source (:func:`causalkit.datasets.resolve_source`).
    out
        Cache folder: ``out/oracle.pt`` is loaded when it exists, else trained and saved.
    steps, seed
        Training steps (batch 128, Adam at 1e-3) and the seed of data and weights.

    Returns
    -------
    tuple
        ``(model, ood_accuracy)``: the model in eval mode and its accuracy on the real
        OOD split.
    """
    from causalkit.datasets import build_split
    from robust_training.engine import FitConfig, evaluate, fit
    from robust_training.streams import MultiStream, Stream

    ood = build_split("double-colored-mnist", "ood", rho=0.1, seed=seed, source=source,
                      cache=False)
    model = ShapeOracle(seed)
    path = Path(out) / "oracle.pt"
    if path.is_file():
        model.load_state_dict(load_torch(path))
    else:
        tr = build_split("double-colored-mnist", "train", rho=0.1, seed=seed, source=source,
                         cache=False)
        streams = MultiStream([Stream("real", tr.images, tr.labels, 128)], seed=seed)
        model, _ = fit(streams, FitConfig("erm", steps=steps, lr=1e-3, seed=seed), None,
                       device="cpu", model=model)
        atomic_write(path, lambda fh: torch.save(model.state_dict(), fh))
    model.eval()
    return model, evaluate(model, ood.images, ood.labels)["accuracy"]


@torch.no_grad()
def classify(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Label predictions of ``model`` for float images in [-1, 1], 500 at a time."""
    return torch.cat([model.logits(images[i:i + 500], "label").argmax(1)
                      for i in range(0, len(images), 500)])
