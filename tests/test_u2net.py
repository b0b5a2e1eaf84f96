"""U^2-Net in torch: the authors' layout, shapes, gradients, and both weight loaders.

The ``.pth`` tests use stand-in state dicts built by saving this package's own
random-initialised models: same key layout as the authors' files (the module names
follow xuebinqin/U-2-Net ``model/u2net.py``), not their weights. The ONNX tests use the
real ``u2netp.onnx`` of the shared data folder and skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError, DataError, WeightsMismatchError
from generators.u2net import INPUT_SIZE, build_u2net, load_u2net, preprocess, saliency
from generators.u2net.model import U2Net

ONNX = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "u2netp" / "u2netp.onnx"
needs_onnx = pytest.mark.skipif(not ONNX.is_file(), reason=f"{ONNX} is absent (shared data)")


@pytest.fixture(scope="module")
def small():
    return build_u2net("u2netp", seed=0)


def test_layout_matches_the_authors_keys_and_sizes():
    p, full = build_u2net("u2netp"), build_u2net("u2net")
    assert sum(t.numel() for t in p.parameters()) == 1_131_181
    assert sum(t.numel() for t in full.parameters()) == 44_009_869
    keys = set(full.state_dict())
    for key in ("stage1.rebnconvin.conv_s1.weight", "stage1.rebnconv7.bn_s1.running_var",
                "stage1.rebnconv6d.conv_s1.bias", "stage5.rebnconv4.bn_s1.num_batches_tracked",
                "stage5d.rebnconv3d.conv_s1.weight", "side6.weight", "outconv.bias"):
        assert key in keys
    assert "stage4.rebnconv5.conv_s1.weight" not in keys  # RSU-4 stops at rebnconv4
    assert full.stage4d.rebnconvin.conv_s1.in_channels == 1024
    assert full.side3.in_channels == 128 and p.side3.in_channels == 64
    assert full.stage5.rebnconv4.conv_s1.dilation == (8, 8)
    assert full.stage1.rebnconv7.conv_s1.dilation == (2, 2)
    assert set(U2Net("u2netp", batch_norm=False).state_dict()) == {
        k for k in p.state_dict() if ".bn_s1." not in k}


def test_forward_any_size_in_unit_range_and_seeded(small):
    x = torch.rand(2, 3, 45, 71, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = small(x)
    assert y.shape == (2, 1, 45, 71)
    assert 0 <= float(y.min()) and float(y.max()) <= 1
    again = build_u2net("u2netp", seed=0)
    other = build_u2net("u2netp", seed=1)
    assert torch.equal(again.side1.weight, small.side1.weight)
    assert not torch.equal(other.side1.weight, small.side1.weight)
    # forward = forward_raw of the authors' preprocessing (x / max, ImageNet mean/std)
    with torch.no_grad():
        manual = (x / x.amax(dim=(1, 2, 3), keepdim=True)
                  - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        assert torch.allclose(preprocess(x), manual)
        assert torch.allclose(small.forward_raw(manual), y, atol=1e-6)
        assert len(small.side_logits(manual)) == 7


def test_gradients_reach_the_input(small):
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1),
                   requires_grad=True)
    saliency(small, x, size=64).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert float(x.grad.abs().sum()) > 0
    x.grad = None
    small(x).sum().backward()
    assert float(x.grad.abs().sum()) > 0


def test_saliency_resizes_and_rescales(small):
    x = torch.rand(1, 3, 50, 30, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        s = saliency(small, x, size=32)
        m = saliency(small, x, size=32, minmax=True)
        assert torch.allclose(saliency(small, x, size=None), small(x))
    assert s.shape == (1, 1, 50, 30)
    assert float(m.min()) == pytest.approx(0, abs=1e-6)
    assert float(m.max()) == pytest.approx(1, abs=1e-6)
    with pytest.raises(CausalKitError, match="size"):
        saliency(small, x, size=3)


def test_bad_inputs_raise(small):
    with pytest.raises(CausalKitError, match="3, H, W"):
        small(torch.rand(1, 1, 8, 8))
    with pytest.raises(CausalKitError, match="float"):
        small(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(CausalKitError, match="kind"):
        build_u2net("u3net")


def test_fold_batch_norm_keeps_the_function():
    torch.manual_seed(0)
    net = build_u2net("u2netp", seed=3)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    folded = net.fold_batch_norm().eval()
    assert not folded.batch_norm
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-5)


def test_pth_round_trip_full_u2net_stand_in(tmp_path):
    # a stand-in for the authors' u2net.pth: our own random-init full U^2-Net, saved
    net = build_u2net("u2net", seed=5)
    path = tmp_path / "u2net.pth"
    torch.save(net.state_dict(), path)
    loaded = load_u2net(path)
    assert loaded.kind == "u2net" and loaded.batch_norm and not loaded.training
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(DataError, match="u2net"):
        load_u2net(path, kind="u2netp")


def test_pth_loader_is_strict(tmp_path, small):
    state = small.state_dict()
    ok = tmp_path / "u2netp.pth"
    torch.save(state, ok)
    assert load_u2net(ok, kind="u2netp").kind == "u2netp"
    # the torch of 2020 wrote no num_batches_tracked: accepted, set to zero
    old = tmp_path / "old.pth"
    torch.save({k: v for k, v in state.items() if "num_batches" not in k}, old)
    assert load_u2net(old).kind == "u2netp"
    # DataParallel's prefix is removed
    wrapped = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, wrapped)
    assert load_u2net(wrapped).kind == "u2netp"
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "side3.bias"}, missing)
    with pytest.raises(WeightsMismatchError, match="side3.bias"):
        load_u2net(missing)
    wrong = tmp_path / "wrong.pth"
    torch.save({**state, "outconv.weight": torch.zeros(1, 7, 1, 1)}, wrong)
    with pytest.raises(WeightsMismatchError, match="outconv.weight"):
        load_u2net(wrong)
    extra = tmp_path / "extra.pth"
    torch.save({**state, "refconv.weight": torch.zeros(1)}, extra)
    with pytest.raises(WeightsMismatchError, match="refconv"):
        load_u2net(extra)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(DataError, match="no U\\^2-Net"):
        load_u2net(other)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a torch file"):
        load_u2net(junk)
    with pytest.raises(CausalKitError, match=".onnx"):
        load_u2net(tmp_path / "u2net.bin")


def test_folded_pth_loads_as_folded(tmp_path, small):
    path = tmp_path / "folded.pth"
    torch.save(small.fold_batch_norm().state_dict(), path)
    loaded = load_u2net(path)
    assert not loaded.batch_norm


def test_onnx_loader_rejects_other_files(tmp_path):
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(DataError, match="ONNX"):
        load_u2net(junk)
    with pytest.raises(DataError, match="does not exist"):
        load_u2net(tmp_path / "absent.onnx")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4, 8, 8])], [w, b])
    tiny = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph), str(tiny))
    with pytest.raises(DataError, match="holds no U\\^2-Net"):
        load_u2net(tiny)


def _photo(name: str) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def real():
    return load_u2net(ONNX)


@needs_onnx
def test_onnx_parity_with_onnxruntime_on_photos(real):
    ort = pytest.importorskip("onnxruntime")
    assert real.kind == "u2netp" and not real.batch_norm
    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    photos = torch.cat([torch.nn.functional.interpolate(
        _photo(name), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
        for name in ("chelsea", "coffee", "astronaut")])
    x = preprocess(photos)
    for i in range(len(x)):
        ref = session.run(None, {session.get_inputs()[0].name: x[i:i + 1].numpy()})[0]
        with torch.no_grad():
            ours = real.forward_raw(x[i:i + 1]).numpy()
        assert np.abs(ref - ours).max() <= 1e-4


@needs_onnx
def test_onnx_kind_is_checked():
    with pytest.raises(DataError, match="u2net's stage"):
        load_u2net(ONNX, kind="u2net")


@needs_onnx
@pytest.mark.parametrize("name, inside, background", [
    # hand-given boxes (rows, cols): the cat's face / the pink wall right of it
    ("chelsea", (slice(40, 280), slice(80, 330)), (slice(60, 300), slice(410, 451))),
    # the cup / the table's left and right edges
    ("coffee", (slice(40, 220), slice(200, 420)), (slice(0, 400), slice(0, 60))),
    ("coffee", (slice(40, 220), slice(200, 420)), (slice(0, 400), slice(540, 600))),
])
def test_real_masks_cover_the_object(real, name, inside, background):
    with torch.no_grad():
        s = saliency(real, _photo(name))[0, 0]
    assert float(s[inside].mean()) > 0.8
    assert float(s[background].mean()) < 0.05
