"""Amortised inference for the MNIST CGN: ``q(u_shape | x, y)``.

Adversarial training alone teaches the mask mechanism slowly: the discriminator's
gradient reaches each mask pixel only through "does the whole image look real", and the
official schedule needs ~47k iterations. A reconstruction term gives every pixel a
direct target. An encoder maps a real image and its label to the three mechanisms'
noise; the CGN, fed that noise and the label, must rebuild the image through its
composer ``x = m * f + (1 - m) * b``. Because the texture outputs are randomly shifted
(patch shuffling) they cannot place the digit, so the mask has to carry the shape --
the same inductive bias the adversarial CGN relies on, with a far denser signal.

Only the shape noise is inferred (``n_noise=1``, the default); the texture and
background noise are drawn from the prior during reconstruction too. An encoder that
also inferred them could copy the observed colours into the noise, and a
counterfactual texture label would then change nothing; with prior noise the texture
mechanisms can only learn a texture's class from its label, as the CGN intends.
A KL term keeps ``q`` close to ``N(0, I)``, so prior draws land where the decoder was
trained (a VAE-GAN; Larsen et al., 2016).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from causalkit.errors import CausalKitError
from causalkit.io import load_torch
from causalkit.weights import check_state_dict

__all__ = ["MnistCGNEncoder", "kl_standard_normal", "load_encoder"]


class MnistCGNEncoder(nn.Module):
    """A small CNN from ``(x, y)`` to Gaussian posteriors over the three noise vectors.

    Parameters
    ----------
    n_classes : int
        Number of labels.
    latent_dim : int
        Size of each mechanism's noise (the CGN's ``latent_dim``).
    nef : int
        Width of the first convolution.
    n_noise : int
        How many mechanisms' noise to infer, in the order shape, texture, background.
    seed : int
        Seed of the initialisation.
    """

    def __init__(self, n_classes: int = 10, latent_dim: int = 32, nef: int = 32,
                 n_noise: int = 1, seed: int = 0) -> None:
        super().__init__()
        if not 1 <= n_noise <= 3:
            raise CausalKitError(f"n_noise must be 1, 2 or 3, got {n_noise}")
        self.latent_dim, self.n_noise = latent_dim, n_noise
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.features = nn.Sequential(
                nn.Conv2d(3, nef, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 16 x 16
                nn.Conv2d(nef, 2 * nef, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 8 x 8
                nn.Conv2d(2 * nef, 4 * nef, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Flatten(),
            )
            self.label_emb = nn.Embedding(n_classes, n_classes)
            self.head = nn.Linear(4 * nef * 16 + n_classes, 2 * n_noise * latent_dim)
            # start at the prior: mu = 0, log-variance = 0
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance, each ``(N, n_noise, latent_dim)``."""
        h = torch.cat([self.features(x), self.label_emb(y)], dim=1)
        mu, logvar = self.head(h).view(len(x), 2, self.n_noise, self.latent_dim).unbind(1)
        return mu, logvar.clamp(-8.0, 4.0)

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterised draw ``mu + exp(logvar / 2) * eps`` (``eps`` from ``generator``)."""
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` summed over latent dimensions, batch mean."""
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1).mean()


def load_encoder(path: str | os.PathLike, *, n_classes: int = 10, latent_dim: int = 32,
                 n_noise: int = 1, device: str | torch.device = "cpu") -> MnistCGNEncoder:
    """Load an ``encoder.pt`` written by :func:`generators.cgn.mnist.train.train_cgn`.

    The width is read from the weights; the keys and shapes are checked strictly.
    """
    state = load_torch(path)
    if "features.0.weight" not in state:
        raise CausalKitError(f"{path} is not a CGN encoder state_dict (no features.0.weight)")
    enc = MnistCGNEncoder(n_classes, latent_dim, nef=state["features.0.weight"].shape[0],
                          n_noise=n_noise)
    check_state_dict(enc, state, source=str(path), what="the CGN encoder",
                     hint=f"Was it written by train_cgn with latent_dim={latent_dim} and "
                          f"n_noise={n_noise}?")
    enc.load_state_dict(state)
    return enc.to(device).eval()
