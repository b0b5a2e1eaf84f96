"""BigGAN adapter: strict loading, truncation, stored BatchNorm statistics, the tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from causalkit.errors import CausalKitError, DataError
from generators.biggan import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    _stats_at,
    load_biggan_dir,
    save_tiny_biggan,
    tiny_biggan,
    tiny_config,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_biggan(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="module")
def gen(tiny_dir):
    return load_biggan_dir(tiny_dir, device="cpu")


def _state(tiny_dir):
    return torch.load(tiny_dir / WEIGHTS_NAME, weights_only=True)


def test_good_directory_loads_and_generates(gen):
    assert (gen.z_dim, gen.num_classes, gen.image_size) == (8, 10, 32)
    z = gen.sample_noise(5, truncation=0.5, seed=0)
    x = gen(z, [0, 1, 2, 3, 9], truncation=0.5)
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert x.std() > 0.1  # not a blank image: the calibrated statistics normalise it
    assert not gen.module.training


def test_tiny_factory_is_seeded(gen):
    same, other = tiny_biggan(0), tiny_biggan(1)
    for (k, a), b in zip(gen.module.state_dict().items(), same.module.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    assert not torch.equal(gen.module.generator.gen_z.weight_orig,
                           other.module.generator.gen_z.weight_orig)
    # The package leaves generator.bn's affine parameters uninitialised; ours are set.
    assert torch.equal(gen.module.generator.bn.weight, torch.ones(4))
    assert torch.equal(gen.module.generator.bn.bias, torch.zeros(4))


def test_missing_keys_are_listed(tiny_dir, tmp_path):
    state = _state(tiny_dir)
    del state["generator.gen_z.bias"], state["embeddings.weight"]
    torch.save(state, tmp_path / WEIGHTS_NAME)
    (tmp_path / CONFIG_NAME).write_text((tiny_dir / CONFIG_NAME).read_text())
    with pytest.raises(DataError, match="2 missing keys: embeddings.weight, "
                                        "generator.gen_z.bias"):
        load_biggan_dir(tmp_path)


def test_unexpected_keys_are_listed(tiny_dir, tmp_path):
    state = _state(tiny_dir)
    state["generator.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / WEIGHTS_NAME)
    (tmp_path / CONFIG_NAME).write_text((tiny_dir / CONFIG_NAME).read_text())
    with pytest.raises(DataError, match="1 unexpected keys: generator.extra.weight"):
        load_biggan_dir(tmp_path)


def test_wrong_shapes_are_listed(tiny_dir, tmp_path):
    # Weights of a 12-class model under a 10-class config.
    save_tiny_biggan(tmp_path / "other", seed=0, num_classes=12)
    (tmp_path / "other" / CONFIG_NAME).write_text((tiny_dir / CONFIG_NAME).read_text())
    with pytest.raises(DataError, match=r"1 wrong shapes: embeddings.weight \(8, 12\) "
                                        r"\(model wants \(8, 10\)\)"):
        load_biggan_dir(tmp_path / "other")


def test_missing_files_and_bad_configs(tiny_dir, tmp_path):
    with pytest.raises(DataError, match="config.json not found"):
        load_biggan_dir(tmp_path)
    torch.save(_state(tiny_dir), tmp_path / WEIGHTS_NAME)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_biggan_dir(tmp_path)
    cfg = json.loads((tiny_dir / CONFIG_NAME).read_text())
    del cfg["layers"]
    (tmp_path / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(DataError, match=r"lacks config keys \['layers'\]"):
        load_biggan_dir(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(tiny_config(output_dim=64)))
    with pytest.raises(DataError, match="output_dim 64 does not match"):
        load_biggan_dir(tmp_path)
    (tmp_path / WEIGHTS_NAME).write_bytes(b"garbage")
    (tmp_path / CONFIG_NAME).write_text(json.dumps(tiny_config()))
    with pytest.raises(DataError, match="not a torch file"):
        load_biggan_dir(tmp_path)


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.0001, 2, math.nan, math.inf, True, "0.5"])
def test_bad_truncation_is_rejected(gen, bad):
    z = torch.zeros(2, 8)
    with pytest.raises(CausalKitError, match="0 < t <= 1"):
        gen(z, [0, 1], truncation=bad)
    with pytest.raises(CausalKitError, match="0 < t <= 1"):
        gen.sample_noise(2, truncation=bad, seed=0)


def test_bad_inputs_are_rejected(gen):
    with pytest.raises(CausalKitError, match=r"labels must lie in \[0, 9\]"):
        gen(torch.zeros(2, 8), [0, 10])
    with pytest.raises(CausalKitError, match=r"z must have shape \(n, 8\)"):
        gen(torch.zeros(2, 7), [0, 1])
    with pytest.raises(CausalKitError, match="2 latents but 3 labels"):
        gen(torch.zeros(2, 8), [0, 1, 2])
    with pytest.raises(CausalKitError, match="seed must be"):
        gen.sample_noise(2)


def test_noise_is_seeded_and_truncated(gen):
    a = gen.sample_noise(1000, truncation=0.3, seed=5)
    assert torch.equal(a, gen.sample_noise(1000, truncation=0.3, seed=5))
    assert not torch.equal(a, gen.sample_noise(1000, truncation=0.3, seed=6))
    assert a.abs().max() <= 0.6 + 1e-6  # truncnorm(-2, 2) * t
    assert abs(a.std().item() - 0.3 * 0.8796) < 0.01


@pytest.mark.parametrize("t", [1.0, 0.4, 0.37])
def test_batchnorm_never_uses_batch_statistics(gen, t):
    z = gen.sample_noise(12, truncation=t, seed=3)
    y = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    with torch.no_grad():
        many = gen(z, y, truncation=t)
        one = torch.cat([gen(z[i:i + 1], [y[i]], truncation=t) for i in range(12)])
        # Same first image, different batch companions.
        other = gen(torch.cat([z[:1], -3 * z[1:]]), [y[0]] + [9] * 11, truncation=t)
    assert torch.allclose(many, one, atol=1e-4)
    assert torch.allclose(many[0], other[0], atol=1e-4)
    gen.module.train()  # train mode must not switch spectral norm / BN to batch behaviour
    with torch.no_grad():
        again = gen(z, y, truncation=t)
    assert torch.equal(again, many) and not gen.module.training


def test_truncation_selects_stored_statistics(gen):
    bn = gen.module.generator.layers[0].bn_0
    z = gen.sample_noise(4, truncation=0.5, seed=0)
    with torch.no_grad():
        at_half, at_one = gen(z, [1] * 4, 0.5), gen(z, [1] * 4, 1.0)
        saved = bn.running_means[25].clone()
        bn.running_means[25] += 1.0  # slot of t = 0.5 = 25 * 0.02
        try:
            assert not torch.allclose(gen(z, [1] * 4, 0.5), at_half, atol=1e-3)
            assert torch.equal(gen(z, [1] * 4, 1.0), at_one)
        finally:
            bn.running_means[25] = saved


def test_stats_interpolate_linearly_between_stored_truncations(gen):
    bn = gen.module.generator.layers[1].bn_2
    m, v = bn.running_means, bn.running_vars
    mean, var = _stats_at(bn, 0.505)  # a quarter of the way from slot 25 to 26
    assert torch.allclose(mean, 0.75 * m[25] + 0.25 * m[26], atol=1e-6)
    assert torch.allclose(var, 0.75 * v[25] + 0.25 * v[26], atol=1e-6)
    for t, slot in [(0.4, 20), (0.58, 29), (0.2, 10), (1.0, 50)]:  # float noise snaps
        assert torch.equal(_stats_at(bn, t)[0], m[slot])


def test_matches_the_package_forward_on_stored_truncations(tiny_dir, gen):
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    raw = json.loads((tiny_dir / CONFIG_NAME).read_text())
    ref = BigGAN(BigGANConfig.from_dict(raw)).eval()
    ref.load_state_dict(_state(tiny_dir), strict=True)
    z = gen.sample_noise(3, truncation=0.4, seed=1)
    onehot = torch.nn.functional.one_hot(torch.tensor([2, 5, 7]), 10).float()
    with torch.no_grad():
        for t in (0.4, 1.0):
            assert torch.allclose(ref(z, onehot, t), gen(z, [2, 5, 7], t), atol=1e-5)


def test_layers_can_be_hooked(gen):
    names = gen.layers()
    assert "generator.gen_z" in names and "generator.layers.0" in names
    with gen.capture("generator.gen_z") as acts:
        gen(gen.sample_noise(2, seed=0), [0, 1])
    assert acts[0].shape == (2, 4 * 4 * 16 * 4)
    assert not gen.layer("generator.gen_z")._forward_hooks
    with pytest.raises(CausalKitError, match="no layer named 'nope'"):
        gen.layer("nope")
