"""Perceptual features (torchvision-layout VGGs, random features) and the CGN's losses.

The VGG weight files here are stand-ins in torchvision's layout, built from this
module's own random-initialised VGG (plus dummy ``classifier.*`` tensors), not
torchvision's weights.
"""

from __future__ import annotations

import pytest
import torch

import generators.perceptual as perceptual
from causalkit.errors import CausalKitError, DataError, WeightsMismatchError
from generators.perceptual import (
    VGGFeatures,
    gram,
    perceptual_features,
    perceptual_loss,
    random_features,
    texture_loss,
    vgg_features,
)


def test_default_layers_are_the_last_relu_before_each_pool():
    assert VGGFeatures("vgg16").layers == (3, 8, 15, 22)
    assert VGGFeatures("vgg16_bn").layers == (5, 12, 22, 32)
    assert VGGFeatures("vgg19").layers == (3, 8, 17, 26)
    assert VGGFeatures("vgg16", ["relu3_1", 1]).layers == (11, 1)
    assert isinstance(VGGFeatures("vgg16").features[22], torch.nn.ReLU)
    assert isinstance(VGGFeatures("vgg16_bn").features[31], torch.nn.BatchNorm2d)
    with pytest.raises(CausalKitError, match="no layer"):
        VGGFeatures("vgg16", ["relu9_9"])
    with pytest.raises(CausalKitError, match="unknown VGG"):
        VGGFeatures("vgg11")


def test_vgg_normalises_inside_and_returns_the_chosen_maps():
    torch.manual_seed(0)
    net = VGGFeatures("vgg16", ["relu1_2", "relu2_2"])
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = net(x)
    assert [tuple(m.shape) for m in maps] == [(2, 64, 16, 16), (2, 128, 8, 8)]
    z = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(maps[0], net.features[:4](z), atol=1e-6)


def _torchvision_file(tmp_path, arch):
    torch.manual_seed(1)
    full = VGGFeatures(arch, ["pool5"])  # every layer
    state = {f"features.{k}": v for k, v in full.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    return path, state


def test_torchvision_format_file_loads_strictly(tmp_path):
    path, state = _torchvision_file(tmp_path, "vgg16")
    net = vgg_features("vgg16", path)
    for key, value in net.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"])
    assert isinstance(perceptual_features(f"vgg16:{path}"), VGGFeatures)
    with pytest.raises(WeightsMismatchError, match="vgg16_bn"):
        vgg_features("vgg16_bn", path)
    cut = tmp_path / "cut.pth"
    torch.save({k: v for k, v in state.items() if k != "features.28.bias"}, cut)
    with pytest.raises(WeightsMismatchError, match="features.28.bias"):
        vgg_features("vgg16", cut)
    stray = tmp_path / "stray.pth"
    torch.save({**state, "fc.weight": torch.zeros(1)}, stray)
    with pytest.raises(DataError, match="not a torchvision vgg16"):
        vgg_features("vgg16", stray)


def test_vgg16_bn_file_loads(tmp_path):
    path, state = _torchvision_file(tmp_path, "vgg16_bn")
    net = vgg_features("vgg16_bn", path)
    assert torch.equal(net.features[1].running_var, state["features.1.running_var"])


def test_specs_and_their_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(perceptual, "_WARNED", set())
    first = perceptual_features(None)
    second = perceptual_features("random")
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "random features" in err
    assert len(first(torch.rand(1, 3, 16, 16))) == 4
    assert torch.equal(first.stages[0][0].weight, second.stages[0][0].weight)
    assert not torch.equal(perceptual_features("random:1").stages[0][0].weight,
                           first.stages[0][0].weight)
    with pytest.raises(CausalKitError, match="integer seed"):
        perceptual_features("random:x")
    with pytest.raises(CausalKitError, match="weights file"):
        perceptual_features("vgg16")
    with pytest.raises(DataError, match="does not exist"):
        perceptual_features(f"vgg16:{tmp_path / 'none.pth'}")
    with pytest.raises(CausalKitError, match="unknown perceptual"):
        perceptual_features("alexnet:x")
    with pytest.raises(CausalKitError, match="not offered"):
        perceptual_features("torchvision:alexnet")


def test_torchvision_and_timm_are_optional(monkeypatch):
    import importlib

    real = importlib.import_module

    def broken(name, *args):
        if name.startswith(("torchvision", "timm")):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(CausalKitError, match="torchvision is not usable"):
        perceptual_features("torchvision:vgg16")
    with pytest.raises(CausalKitError, match="timm is not usable"):
        perceptual_features("timm:vgg16")


class _Toy(torch.nn.Module):
    """Two fixed maps: the image and its 2x2 average pool of squares."""

    def forward(self, x):
        return [x, torch.nn.functional.avg_pool2d(x * x, 2)]


def _l1_gram_by_hand(a, b):
    n, c = a.shape[:2]
    fa, fb = a.reshape(n, c, -1), b.reshape(n, c, -1)
    hw = fa.shape[-1]
    total = 0.0
    for i in range(n):
        for p in range(c):
            for q in range(c):
                ga = float((fa[i, p] * fa[i, q]).sum()) / (c * hw)
                gb = float((fb[i, p] * fb[i, q]).sum()) / (c * hw)
                total += abs(ga - gb)
    return total / (n * c * c)


def test_perceptual_loss_is_the_official_formula():
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    toy = _Toy()
    fx, fy = toy(x), toy(y)
    want = 4 ** 2 * 5e3 * _l1_gram_by_hand(fx[0], fy[0]) \
        + 2 ** 2 * 5e3 * _l1_gram_by_hand(fx[1], fy[1])
    got = perceptual_loss(toy, x, y, weights=[4, 2])
    assert float(got) == pytest.approx(want, rel=1e-5)
    content = perceptual_loss(toy, x, y, weights=[0, 0], content_weights=[0.5, 3])
    want_c = 0.5 * float((fx[0] - fy[0]).abs().mean()) + 3 * float((fx[1] - fy[1]).abs().mean())
    assert float(content) == pytest.approx(want_c, rel=1e-5)
    assert float(perceptual_loss(toy, x, x, weights=[4, 4])) == 0
    assert torch.allclose(gram(fx[0])[0], fx[0][0].reshape(3, 16) @ fx[0][0].reshape(3, 16).T
                          / 48)
    with pytest.raises(CausalKitError, match="one weight per layer"):
        perceptual_loss(toy, x, y, weights=[1, 2, 3])
    with pytest.raises(CausalKitError, match="one shape"):
        perceptual_loss(toy, x, y[:, :, :2], weights=[1, 2])


def test_gradients_flow_to_the_image_not_the_target():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 3, 16, 16, generator=g, requires_grad=True)
    y = torch.rand(1, 3, 16, 16, generator=g, requires_grad=True)
    perceptual_loss(random_features(0, (8, 8, 8, 8)), x, y, weights=[1, 1, 1, 1]).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert y.grad is None


def test_texture_loss_is_the_gram_loss_with_the_cgn_weights():
    g = torch.Generator().manual_seed(5)
    f, patches = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    net = random_features(0, (8, 8, 8, 8))
    assert torch.equal(texture_loss(net, f, patches),
                       perceptual_loss(net, f, patches, weights=[0, 5, 5, 0]))
    assert float(texture_loss(net, f, patches)) > 0


def test_transfer_reexports_the_moved_helpers():
    from robust_training import transfer

    assert transfer.random_features is random_features and transfer.gram is gram
