"""Importing the official MNIST CGN checkpoints: strict keys, and masks that are digits."""

from __future__ import annotations

import pytest
import torch
from _cgn_helpers import train_digit_classifier
from conftest import shared_data

from causalkit.errors import CausalKitError, WeightsMismatchError
from causalkit.weights import compare_state_dict
from generators.cgn.mnist.checkpoint import OFFICIAL_VARIANTS, load_official
from generators.cgn.mnist.model import MnistCGN


def test_a_mismatch_lists_missing_unexpected_and_mis_shaped_keys(tmp_path):
    model = MnistCGN()
    state = model.state_dict()
    state.pop("f_shape.0.bias")
    state["f_text1.99.weight"] = torch.zeros(1)
    state["label_emb.weight"] = torch.zeros(10, 11)
    torch.save(state, tmp_path / "ckp.pth")
    with pytest.raises(WeightsMismatchError) as err:
        load_official(tmp_path / "ckp.pth")
    text = str(err.value)
    assert "1 missing keys: f_shape.0.bias" in text and "f_text1.99.weight" in text
    assert "label_emb.weight (10, 11) (model wants (10, 10))" in text


def test_load_rejects_bad_checkpoint(tmp_path):
    state = MnistCGN().state_dict()
    state.pop("f_text2.11.running_var")
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "ckp.pth"
    torch.save(state, path)
    with pytest.raises(CausalKitError, match="missing.*f_text2.11.running_var"):
        load_official(path)
    with pytest.raises(CausalKitError, match="unexpected.*extra.weight"):
        load_official(path)
    with pytest.raises(CausalKitError, match="no CGN checkpoint"):
        load_official(tmp_path / "absent.pth")


def test_roundtrip_own_state_dict(tmp_path):
    model = MnistCGN(seed=3).eval()
    torch.save(model.state_dict(), tmp_path / "g.pth")
    loaded = load_official(tmp_path / "g.pth")
    y = torch.arange(10)
    a = model(y, generator=torch.Generator().manual_seed(1))
    b = loaded(y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.image, b.image)


@pytest.mark.parametrize("variant", sorted(OFFICIAL_VARIANTS))
def test_official_keys_are_exact(variant):
    path = shared_data(f"cgn_official/{OFFICIAL_VARIANTS[variant]}/ckp.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert compare_state_dict(MnistCGN(), state).ok
    load_official(path)  # strict=True inside


def test_official_masks_are_digits_of_the_requested_class():
    root = shared_data("cgn_official")
    clf, held_out = train_digit_classifier(epochs=2)
    assert held_out > 0.9, f"the reference classifier itself is weak ({held_out:.3f})"
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat_interleave(30)
    for variant in sorted(OFFICIAL_VARIANTS):
        cgn = load_official(variant, root=root)
        with torch.no_grad():
            mask = cgn(y, generator=g).mask
            pred = clf((mask > 0.5).float()).argmax(1)
        acc = (pred == y).float().mean().item()
        assert acc >= 0.70, f"{variant}: only {acc:.1%} of the masks read as their class"


def test_load_generator_reads_the_width_and_nested_checkpoints(tmp_path):
    from generators.cgn.mnist.checkpoint import load_generator

    model = MnistCGN(ngf=16, seed=2).eval()
    torch.save({"generator": model.state_dict(), "iteration": 3}, tmp_path / "ckpt.pt")
    loaded = load_generator(tmp_path / "ckpt.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values(), strict=True))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CausalKitError, match="no CGN state_dict"):
        load_generator(tmp_path / "bad.pt")
