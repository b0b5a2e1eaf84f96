"""Style transfer T(I, X): moves colour statistics to the style, keeps content, labels."""

from __future__ import annotations

import pytest
import torch

from causalkit.errors import CausalKitError
from robust_training.sources import feature_net, transfer_stream
from robust_training.transfer import gram, random_features, style_distance, style_transfer


def _images(n=4):
    content = -torch.ones(n, 3, 32, 32)
    content[:, :, 10:22, 14:18] = 1.0  # white bar on black
    style = torch.zeros(n, 3, 32, 32)
    style[:, 0] = 0.8  # reddish background
    style[:, 1, ::4] = 0.5  # green stripes
    return content, style


def test_transfer_moves_style_and_keeps_content():
    c, s = _images()
    f = random_features(0)
    out = style_transfer(c, s, f, steps=20)
    assert out.shape == c.shape and out.abs().max() <= 1.0
    with torch.no_grad():
        before = sum(style_distance(a, b) for a, b in zip(f(c), f(s), strict=True))
        after = sum(style_distance(a, b) for a, b in zip(f(out), f(s), strict=True))
    assert after < 0.5 * before
    # The bar is still brighter than its surroundings (content kept).
    bar, rest = out[:, :, 10:22, 14:18].mean(), out[:, :, 10:22, 2:8].mean()
    assert bar > rest + 0.3
    # Deterministic: same inputs, same output.
    torch.testing.assert_close(style_transfer(c, s, f, steps=20), out)


def test_gram_and_errors():
    f = torch.randn(2, 3, 4, 4)
    g = gram(f)
    torch.testing.assert_close(g[0], f[0].reshape(3, 16) @ f[0].reshape(3, 16).T / 48)
    with pytest.raises(CausalKitError, match="same shape"):
        style_transfer(torch.zeros(1, 3, 8, 8), torch.zeros(2, 3, 8, 8), random_features())
    with pytest.raises(CausalKitError, match="unknown style distance"):
        style_distance(f, f, "kl")
    with pytest.raises(CausalKitError, match="resnet18:PATH"):
        feature_net("resnet18")
    with pytest.raises(CausalKitError, match="unknown feature net"):
        feature_net("vgg")


def test_transfer_stream_labels_come_from_the_real_image():
    c, s = _images(6)
    real = ((c + 1) * 127.5).to(torch.uint8)
    gen = ((s + 1) * 127.5).to(torch.uint8)
    labels = torch.arange(6)
    x, y = transfer_stream(real, labels, gen, 10, seed=1, steps=2)
    assert x.dtype == torch.uint8 and x.shape == (10, 3, 32, 32)
    idx = torch.randint(0, 6, (10,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(y, labels[idx])


def test_resnet_features_from_a_torchvision_file(tmp_path):
    from robust_training.resnet import build_resnet

    torch.save(build_resnet("resnet18", seed=3).state_dict(), tmp_path / "r18.pth")
    f = feature_net(f"resnet18:{tmp_path / 'r18.pth'}")
    feats = f(torch.zeros(1, 3, 32, 32))
    assert [t.shape[1] for t in feats] == [64, 64, 128, 256]
