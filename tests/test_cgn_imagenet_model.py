"""The ImageNet CGN model: mechanisms, composer, noise options, protocol, weights files.

Every test runs the real model on a tiny BigGAN-deep config (32 x 32, 10 classes, random
weights saved and reloaded through the strict BigGAN loader) with the real u2netp weights
from ``../shared/data`` where they exist and a random-init u2netp otherwise.
"""

from __future__ import annotations

import functools

import pytest
import torch
from conftest import SHARED_DATA

from causalkit.errors import CausalKitError, WeightsMismatchError
from generators.biggan import tiny_config
from generators.cgn import cgn_graph, check_cgn, compose, generate_counterfactuals
from generators.cgn.imagenet import (
    build_cgn_imagenet,
    from_unit,
    load_cgn_imagenet,
    load_official_cgn_imagenet,
    save_cgn_imagenet,
    to_unit,
)
from generators.cgn.imagenet.checkpoint import OFFICIAL_CHILDREN
from generators.cgn.imagenet.model import MASK_EPS

U2NETP = SHARED_DATA / "u2netp" / "u2netp.onnx"
pytest.importorskip("generators.u2net", reason="the CGN's U^2-Net comes from generators.u2net, "
                    "which this checkout lacks")


@functools.lru_cache(maxsize=4)
def _cgn_file(noise: str, tmp: str) -> str:
    u2net = str(U2NETP) if U2NETP.is_file() else "u2netp"
    cgn = build_cgn_imagenet(tiny_config(), u2net=u2net, seed=0, device="cpu", noise=noise)
    path = f"{tmp}/cgn_{noise}.pt"
    save_cgn_imagenet(cgn, path)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> str:
    return _cgn_file("shared", str(tmp_path_factory.mktemp("cgn")))


@pytest.fixture
def cgn(saved):
    return load_cgn_imagenet(saved, device="cpu")


def _inputs(cgn, n=2, seed=0):
    return cgn.sample_noise(n, generator=seed), torch.tensor([3, 7][:n])


def test_forward_shapes_ranges_and_composer(cgn):
    u, y = _inputs(cgn)
    with torch.no_grad():
        out = cgn(u, y)
    assert out.premask.shape == out.foreground.shape == out.background.shape == (2, 3, 32, 32)
    assert out.mask.shape == (2, 1, 32, 32)
    lo, hi = torch.tensor([MASK_EPS, 1 - MASK_EPS])  # the clamp's bounds in float32
    assert lo <= out.mask.min() and out.mask.max() <= hi
    for x in (out.premask, out.foreground, out.background, out.image):
        assert -1 <= float(x.min()) and float(x.max()) <= 1
    expected = out.mask * out.foreground + (1 - out.mask) * out.background
    assert torch.equal(out.image, expected)
    assert torch.equal(out.image, compose(out.mask, out.foreground, out.background))
    assert torch.allclose(from_unit(to_unit(out.image)), out.image, atol=1e-6)


def test_mechanisms_start_as_the_frozen_biggan(cgn):
    # f_shape, f_text and f_bg are copies of the pretrained BigGAN; in eval mode each one
    # reproduces x_gt = G(u, y) exactly before training.
    u, y = _inputs(cgn)
    with torch.no_grad():
        x_gt = cgn.ground_truth(u, y)
        assert torch.equal(cgn.texture(u, y), x_gt)
        assert torch.equal(cgn.background(u, y), x_gt)
        assert torch.equal(cgn.premask(u, y), x_gt)


def test_shared_noise_equals_a_mapping_of_equal_noise_and_separate_noise_is_separate(cgn):
    u, y = _inputs(cgn)
    names = ("shape", "texture", "background")
    with torch.no_grad():
        shared = cgn(u, y)
        mapped = cgn(dict.fromkeys(names, u), dict.fromkeys(names, y))
        other = cgn({"shape": u, "texture": u, "background": -u},
                    {"shape": y, "texture": torch.tensor([1, 1]), "background": y})
    assert torch.equal(shared.image, mapped.image)
    assert torch.equal(other.mask, shared.mask)          # shape inputs unchanged
    assert not torch.equal(other.foreground, shared.foreground)
    assert not torch.equal(other.background, shared.background)


def test_soft_class_vectors_and_bad_inputs(cgn):
    u, _ = _inputs(cgn, n=1)
    onehot = torch.nn.functional.one_hot(torch.tensor([4]), 10).float()
    with torch.no_grad():
        assert torch.equal(cgn(u, onehot).image, cgn(u, torch.tensor([4])).image)
    with pytest.raises(CausalKitError, match="class ids must lie"):
        cgn(u, torch.tensor([10]))
    with pytest.raises(CausalKitError, match="noise must be"):
        cgn(torch.zeros(1, 5), torch.tensor([1]))
    with pytest.raises(CausalKitError, match="mapping needs exactly"):
        cgn({"shape": u}, torch.tensor([1]))
    with pytest.raises(CausalKitError, match="truncation"):
        cgn(u, torch.tensor([1]), truncation=0.0)


def test_gradient_flows_through_the_u2net_into_f_shape_only(cgn):
    torch.manual_seed(0)
    cgn.train()
    u, y = _inputs(cgn)
    out = cgn(u, y)
    out.mask.mean().backward()
    grads = {name: [p.grad for p in cgn.mechanism(name).parameters()]
             for name in ("shape", "texture", "background")}
    shape_norm = sum(float(g.abs().sum()) for g in grads["shape"] if g is not None)
    assert shape_norm > 0
    assert all(g is None for g in grads["texture"] + grads["background"])
    assert all(p.grad is None and not p.requires_grad for p in cgn.u2net.parameters())
    assert all(not p.requires_grad for p in cgn.biggan_GT.parameters())
    assert not cgn.u2net.training and not cgn.biggan_GT.training and cgn.f_shape.training


def test_one_channel_premask_head(saved):
    cgn = load_cgn_imagenet(saved, device="cpu")
    cgn.premask_channels = 1
    u, y = _inputs(cgn)
    with torch.no_grad():
        out = cgn(u, y)
        full = cgn.ground_truth(u, y)
    assert out.premask.shape == (2, 1, 32, 32)
    assert torch.equal(out.premask, full[:, :1])
    grey = cgn.saliency(full[:, :1].expand(-1, 3, -1, -1)).clamp(MASK_EPS, 1 - MASK_EPS)
    assert torch.equal(out.mask, grey)


def test_protocol_graph_is_the_library_graph_and_counterfactuals_hold_noise(cgn):
    from causalkit.library import get_graph

    check_cgn(cgn)
    graph, library = cgn_graph(cgn), get_graph("cgn-imagenet")
    assert set(graph.edges) == set(library.edges)
    assert {v: graph.role(v) for v in graph.nodes} == {v: library.role(v)
                                                       for v in library.nodes}
    cfs = generate_counterfactuals(cgn, 4, per_noise=2, randomise=("background",), seed=3,
                                   progress=False)
    assert cfs.images.shape == (4, 3, 32, 32)
    assert (cfs.shape == cfs.texture).all()
    # recompute the first counterfactual from its labels and the set's noise stream
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence([3, 0]))
    u = torch.from_numpy(cgn.noise_nodes["U"].sample(2, rng))
    with torch.no_grad():
        out = cgn({k: u[:1] for k in ("shape", "texture", "background")},
                  {"shape": torch.tensor(cfs.shape[:1]),
                   "texture": torch.tensor(cfs.texture[:1]),
                   "background": torch.tensor(cfs.background[:1])})
    from generators.images import to_uint8

    assert np.array_equal(to_uint8(out.image).numpy(), cfs.images[:1])


def test_separate_noise_declares_one_noise_node_per_mechanism(tmp_path):
    cgn = load_cgn_imagenet(_cgn_file("separate", str(tmp_path)), device="cpu")
    assert list(cgn.noise_nodes) == ["U1", "U2", "U3"]
    parents = {v: m.parents for v, m in cgn.mechanism_nodes.items()}
    assert parents == {"Mp": ("Y1", "U1"), "M": ("Mp",), "F": ("Y2", "U2"),
                       "B": ("Y3", "U3")}
    check_cgn(cgn)


def test_save_load_round_trip_is_exact_and_strict(cgn, saved, tmp_path):
    u, y = _inputs(cgn)
    with torch.no_grad():
        cgn.f_text.generator.gen_z.bias.add_(0.5)  # a change the file must carry
        path = save_cgn_imagenet(cgn, tmp_path / "c.pt")
        again = load_cgn_imagenet(path, device="cpu")
        assert torch.equal(again(u, y).image, cgn(u, y).image)
    blob = torch.load(path, weights_only=True)
    del blob["state_dict"]["f_bg.embeddings.weight"]
    torch.save(blob, tmp_path / "broken.pt")
    with pytest.raises(WeightsMismatchError, match="f_bg.embeddings.weight"):
        load_cgn_imagenet(tmp_path / "broken.pt", device="cpu")
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CausalKitError, match="not an ImageNet CGN file"):
        load_cgn_imagenet(tmp_path / "other.pt", device="cpu")


def test_official_checkpoint_layout_loads_strictly(cgn, tmp_path):
    # Stand-in: no official ImageNet cgn.pth exists offline. We build the official
    # layout through our own model: the plain state dict of the CGN module, saved as
    # nn.DataParallel does (``module.`` prefixes), with the five official children; its
    # U^2-Net has batch norm, as the authors' u2net.pth (here a random u2netp).
    from generators.u2net import build_u2net

    cgn = build_cgn_imagenet(tiny_config(), u2net=build_u2net("u2netp", seed=1),
                             device="cpu")
    state = cgn.state_dict()
    assert any(".bn_s1." in k for k in state if k.startswith("u2net."))
    assert {k.split(".")[0] for k in state} == set(OFFICIAL_CHILDREN)
    # each BigGAN child has pytorch-pretrained-biggan's (= the official biggan.py's) keys
    from generators.biggan import build_biggan

    biggan_keys = set(build_biggan(tiny_config()).state_dict())
    for child in ("biggan_GT", "f_shape", "f_text", "f_bg"):
        assert {k[len(child) + 1:] for k in state if k.startswith(child + ".")} == biggan_keys
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "cgn.pth")
    official = load_official_cgn_imagenet(tmp_path / "cgn.pth", biggan_config=tiny_config(),
                                          u2net_kind="u2netp", device="cpu")
    u, y = _inputs(cgn)
    with torch.no_grad():
        assert torch.equal(official(u, y).image, cgn(u, y).image)
    extra = {**state, "f_shape.generator.extra": torch.zeros(1)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(WeightsMismatchError, match="f_shape.generator.extra"):
        load_official_cgn_imagenet(tmp_path / "extra.pth", biggan_config=tiny_config(),
                                   u2net_kind="u2netp", device="cpu")
    with pytest.raises(WeightsMismatchError):  # the default is BigGAN-deep-256's layout
        load_official_cgn_imagenet(tmp_path / "cgn.pth", u2net_kind="u2netp", device="cpu")


def test_u2net_input_modes(cgn):
    u, y = _inputs(cgn)
    with torch.no_grad():
        pre = cgn.premask(u, y)
        official = cgn.mask(pre)
        assert torch.equal(official, cgn.u2net.forward_raw(pre).clamp(MASK_EPS, 1 - MASK_EPS))
        cgn.u2net_input = "normalised"
        normalised = cgn.mask(pre)
        assert torch.equal(normalised, cgn.u2net(to_unit(pre)).clamp(MASK_EPS, 1 - MASK_EPS))
    assert not torch.equal(official, normalised)
    with pytest.raises(CausalKitError, match="u2net_input"):
        build_cgn_imagenet(tiny_config(), u2net=cgn.u2net, device="cpu", u2net_input="raw")
