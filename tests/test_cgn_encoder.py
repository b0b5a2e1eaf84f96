"""The CGN encoder: posterior shapes, the KL term, strict loading."""

from __future__ import annotations

import pytest
import torch

from causalkit.errors import CausalKitError
from generators.cgn.mnist.encoder import MnistCGNEncoder, kl_standard_normal, load_encoder


def test_posterior_shapes_and_start_at_the_prior():
    enc = MnistCGNEncoder(latent_dim=8, nef=4, n_noise=1, seed=0)
    mu, logvar = enc(torch.randn(5, 3, 32, 32), torch.arange(5))
    assert mu.shape == logvar.shape == (5, 1, 8)
    assert torch.all(mu == 0) and torch.all(logvar == 0)  # zero-initialised head
    assert kl_standard_normal(mu, logvar).item() == 0.0
    with pytest.raises(CausalKitError, match="n_noise"):
        MnistCGNEncoder(n_noise=4)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 1, 6, generator=g), torch.randn(4, 1, 6, generator=g)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1).mean()
    assert kl_standard_normal(mu, logvar).item() == pytest.approx(expected.item(), rel=1e-5)


def test_load_encoder_round_trip_and_strict_errors(tmp_path):
    enc = MnistCGNEncoder(latent_dim=32, nef=8, seed=1)
    torch.save(enc.state_dict(), tmp_path / "encoder.pt")
    back = load_encoder(tmp_path / "encoder.pt")
    assert all(torch.equal(a, b) for a, b in zip(enc.parameters(), back.parameters(),
                                                 strict=True))
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CausalKitError, match="not a CGN encoder"):
        load_encoder(tmp_path / "other.pt")
    with pytest.raises(CausalKitError, match="latent_dim=16"):
        load_encoder(tmp_path / "encoder.pt", latent_dim=16)
