"""Class-conditional discriminators for the MNIST CGN (the official configs' two kinds).

* ``linear``: an MLP on the flattened image concatenated with a label embedding
  (colored and double-colored MNIST);
* ``conv``: a small CNN whose fourth input channel is a per-class constant plane
  (Wildlife MNIST).

Both return one score per image (N,), trained with the LSGAN loss.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LinearDiscriminator", "ConvDiscriminator", "make_discriminator"]


class LinearDiscriminator(nn.Module):
    """MLP discriminator on ``[flatten(x), embed(y)]`` (``ndf`` hidden units, dropout 0.4)."""

    def __init__(self, n_classes: int = 10, ndf: int = 512, img_size: int = 32) -> None:
        super().__init__()
        self.label_emb = nn.Embedding(n_classes, n_classes)
        self.net = nn.Sequential(
            nn.Linear(3 * img_size * img_size + n_classes, ndf), nn.LeakyReLU(0.2),
            nn.Linear(ndf, ndf), nn.Dropout(0.4), nn.LeakyReLU(0.2),
            nn.Linear(ndf, ndf), nn.Dropout(0.4), nn.LeakyReLU(0.2),
            nn.Linear(ndf, 1),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), self.label_emb(y)], dim=1)).squeeze(1)


class ConvDiscriminator(nn.Module):
    """CNN discriminator on ``[x, plane(embed(y))]`` (4 input channels)."""

    def __init__(self, n_classes: int = 10, ndf: int = 32) -> None:
        super().__init__()
        self.label_emb = nn.Embedding(n_classes, 1)

        def block(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, stride=s, bias=False), nn.BatchNorm2d(cout),
                    nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            *block(4, ndf, 3, 1), *block(ndf, ndf * 2, 3, 1),
            *block(ndf * 2, ndf * 4, 4, 2), *block(ndf * 4, ndf * 4, 4, 2),
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(ndf * 4, 1, 1, bias=False),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        plane = self.label_emb(y)[:, :, None, None].expand(-1, 1, *x.shape[-2:])
        return self.net(torch.cat([x, plane], dim=1)).flatten()


def make_discriminator(kind: str, n_classes: int = 10, ndf: int | None = None) -> nn.Module:
    """``"linear"`` or ``"conv"`` discriminator (default widths 512 and 32)."""
    if kind == "linear":
        return LinearDiscriminator(n_classes, ndf or 512)
    if kind == "conv":
        return ConvDiscriminator(n_classes, ndf or 32)
    raise ValueError(f"discriminator kind must be 'linear' or 'conv', got {kind!r}")
