"""The small class-conditional GAN: protocol, seeded sampling, strict save/load, training."""

from __future__ import annotations

import json

import pytest
import torch

from causalkit.errors import CausalKitError, DataError
from generators.small_gan import (
    SmallGANConfig,
    build_small_gan,
    calibrate_batchnorm,
    chunk_sensitivity,
    load_small_gan,
    register,
    save_small_gan,
)
from generators.small_gan_train import TrainConfig, train_small_gan

CFG = SmallGANConfig(z_dim=8, emb_dim=4, ngf=4)


def test_protocol_and_seeded_sampling():
    g = build_small_gan(CFG, seed=0, device="cpu")
    assert (g.z_dim, g.num_classes, g.image_size) == (8, 10, 32)
    z1, z2 = g.sample_noise(5, 0.5, seed=3), g.sample_noise(5, 0.5, seed=3)
    assert torch.equal(z1, z2) and z1.abs().max() <= 1.0  # truncation 0.5 of [-2, 2]
    assert not torch.equal(z1, g.sample_noise(5, 0.5, seed=4))
    x = g.generate(z1, [0, 1, 2, 3, 4])
    assert x.shape == (5, 3, 32, 32) and x.abs().max() <= 1.0
    assert torch.equal(x, g.generate(z1, [0, 1, 2, 3, 4]))
    # Eval mode: an image does not depend on the rest of its batch.
    torch.testing.assert_close(g.generate(z1[:1], [0]), x[:1])
    # Classes matter, and the same weights for the same seed.
    assert not torch.allclose(g.generate(z1, [5] * 5), x)
    assert torch.equal(build_small_gan(CFG, seed=0).z_weight(), g.z_weight())
    with pytest.raises(CausalKitError):
        g.sample_noise(2, 1.5, seed=0)


def test_affine_first_layer_is_hookable_and_affine_in_z():
    g = build_small_gan(CFG, seed=0, device="cpu")
    assert g.affine_layer == "gen_z" and g.z_weight().shape == (4 * 4 * 4 * 4, 8)
    z = g.sample_noise(3, 1.0, seed=0)
    with g.capture("gen_z") as acts:
        g(z, [1, 1, 1])
    with g.capture("gen_z") as acts0:
        g(torch.zeros(1, 8), [1])
    # gen_z(z, y) = W_z z + c(y): the shortcut of generators.directions applies.
    torch.testing.assert_close(acts[0], z @ g.z_weight().T + acts0[0], atol=1e-5, rtol=1e-5)


def test_block_latent_feeds_one_chunk_of_z_to_each_layer():
    cfg = SmallGANConfig(z_dim=8, emb_dim=4, ngf=4, block_latent=True)
    g = build_small_gan(cfg, seed=0, device="cpu")
    net = g.module
    assert net.gen_z.in_features == 2 + 4 and net.blocks[2].affine.in_features == 4 + 2
    with torch.no_grad():
        for b in net.blocks:  # the zero-initialised conditional affines, made live
            b.affine.weight.normal_(0.0, 0.5)
    z = g.sample_noise(1, 1.0, seed=0)
    x = g.generate(z, [3])
    for chunk in range(4):  # every chunk changes the image
        z2 = z.clone()
        z2[:, 2 * chunk:2 * chunk + 2] += 1.0
        assert not torch.allclose(g.generate(z2, [3]), x)
    # The first-layer shortcut sees only the first chunk; the last chunk reaches only
    # the last block: gen_z's output does not move when it changes.
    w = g.z_weight()
    assert w.shape == (4 * 4 * 4 * 4, 8) and w[:, 2:].abs().max() == 0
    z3 = z.clone()
    z3[:, 6:] += 1.0
    with g.capture("gen_z") as a0:
        g(z, [3])
    with g.capture("gen_z") as a1:
        g(z3, [3])
    torch.testing.assert_close(a0[0], a1[0])
    with pytest.raises(CausalKitError, match="block_latent"):
        SmallGANConfig(block_latent=1)
    with pytest.raises(CausalKitError, match="divisible"):
        SmallGANConfig(z_dim=10, block_latent=True)
    with pytest.raises(CausalKitError, match="32x32"):
        SmallGANConfig(image_size=64)


def test_save_load_roundtrip_and_strict_keys(tmp_path):
    g = build_small_gan(CFG, seed=1, device="cpu")
    calibrate_batchnorm(g.module, batches=2, batch_size=16)
    save_small_gan(g, tmp_path / "g", extra={"note": "test"})
    h = load_small_gan(tmp_path / "g", device="cpu")
    z = g.sample_noise(4, 1.0, seed=0)
    torch.testing.assert_close(h.generate(z, [0, 1, 2, 3]), g.generate(z, [0, 1, 2, 3]))
    state = torch.load(tmp_path / "g" / "generator.pt", weights_only=True)
    # Missing key.
    bad = dict(state)
    del bad["to_rgb.weight"]
    torch.save(bad, tmp_path / "g" / "generator.pt")
    with pytest.raises(DataError, match="1 missing keys: to_rgb.weight"):
        load_small_gan(tmp_path / "g")
    # Unexpected key and wrong shape.
    bad = dict(state, extra=torch.zeros(1))
    bad["gen_z.bias"] = torch.zeros(3)
    torch.save(bad, tmp_path / "g" / "generator.pt")
    with pytest.raises(DataError, match="1 unexpected keys: extra.*gen_z.bias"):
        load_small_gan(tmp_path / "g")
    # A config that does not belong to the weights.
    torch.save(state, tmp_path / "g" / "generator.pt")
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    (tmp_path / "g" / "config.json").write_text(json.dumps({**cfg, "ngf": 8}))
    with pytest.raises(DataError, match="wrong shapes"):
        load_small_gan(tmp_path / "g")
    (tmp_path / "g" / "config.json").write_text(json.dumps({**cfg, "depth": 3}))
    with pytest.raises(DataError, match="unknown small-GAN config keys"):
        load_small_gan(tmp_path / "g")
    with pytest.raises(DataError, match="not found"):
        load_small_gan(tmp_path / "nowhere")


def test_registry_scheme(tmp_path):
    from generators.registry import load_generator

    save_small_gan(build_small_gan(CFG, seed=2, device="cpu"), tmp_path / "g")
    register()
    g = load_generator(f"small:{tmp_path / 'g'}", device="cpu")
    assert g.z_dim == 8 and g.name == f"small:{tmp_path / 'g'}"


def _toy_data(n=64):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.randint(0, 255, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return x, y


def test_training_resume_equals_uninterrupted(tmp_path):
    x, y = _toy_data()
    cfg = TrainConfig(model={"z_dim": 8, "emb_dim": 4, "ngf": 4}, ndf=4, iters=6,
                      batch_size=8, log_every=2, checkpoint_every=3, sample_every=3,
                      calib_batches=2)
    full = train_small_gan(x, y, cfg, tmp_path / "a", progress=False)
    assert full["iterations"] == 6
    part = train_small_gan(x, y, cfg, tmp_path / "b", progress=False, stop_after=4)
    assert part["iterations"] == 4 and not (tmp_path / "b" / "generator").exists()
    train_small_gan(x, y, cfg, tmp_path / "b", progress=False)
    a = torch.load(tmp_path / "a" / "state.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "state.pt", weights_only=True)
    assert a["iteration"] == b["iteration"] == 6
    for part_name in ("g", "d", "ema"):
        for k, v in a[part_name].items():
            torch.testing.assert_close(v, b[part_name][k], msg=f"{part_name}.{k}")
    lines = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [2, 4, 6]
    assert (tmp_path / "a" / "samples" / "final.png").is_file()
    ga, gb = load_small_gan(tmp_path / "a" / "generator"), load_small_gan(tmp_path / "b" /
                                                                          "generator")
    z = ga.sample_noise(3, 1.0, seed=0)
    torch.testing.assert_close(ga.generate(z, [0, 1, 2]), gb.generate(z, [0, 1, 2]))
    # Resuming needs the same settings, except the length of the run.
    other = TrainConfig(**{**cfg.__dict__, "lr_g": 1e-3})
    with pytest.raises(CausalKitError, match="different TrainConfig"):
        train_small_gan(x, y, other, tmp_path / "b", progress=False)
    longer = TrainConfig(**{**cfg.__dict__, "iters": 7})
    assert train_small_gan(x, y, longer, tmp_path / "b", progress=False)["iterations"] == 7
    with pytest.raises(DataError, match="uint8"):
        train_small_gan(x.float(), y, cfg, tmp_path / "c", progress=False)


def test_chunk_sensitivity_sees_unused_chunks():
    cfg = SmallGANConfig(z_dim=8, emb_dim=4, ngf=4, block_latent=True)
    g = build_small_gan(cfg, seed=0)
    calibrate_batchnorm(g.module, batches=2, batch_size=16)
    moves = chunk_sensitivity(g, n=20, batch_size=7)
    # Zero-initialised block affines: only the first chunk moves a fresh network.
    assert moves[0] > 0.01 and moves[1:] == [0.0, 0.0, 0.0]
    with torch.no_grad():
        g.module.blocks[2].affine.weight[:, 4:].normal_()
    moved = chunk_sensitivity(g, n=20, batch_size=7)
    assert moved[3] > 0.01 and moved[1:3] == [0.0, 0.0]
    assert moved == pytest.approx(chunk_sensitivity(g, n=20, batch_size=20))  # any batching
    with pytest.raises(CausalKitError, match="no block_latent"):
        chunk_sensitivity(build_small_gan(CFG, seed=0))


def test_chunk_mode_seeking_makes_block_chunks_move_the_image(tmp_path):
    x, y = _toy_data()
    model = {"z_dim": 8, "emb_dim": 4, "ngf": 4, "block_latent": True}
    with pytest.raises(CausalKitError, match="needs a block_latent model"):
        TrainConfig(model={"z_dim": 8}, chunk_mode_seeking=0.1)
    moves = {}
    for w in (0.0, 1.0):
        # A fast, EMA-free generator: 30 steps must be enough to move the block affines.
        cfg = TrainConfig(model=model, ndf=4, iters=30, batch_size=8, lr_g=1e-2, ema=0.0,
                          sample_every=100, calib_batches=2, chunk_mode_seeking=w)
        train_small_gan(x, y, cfg, tmp_path / str(w), progress=False)
        moves[w] = chunk_sensitivity(load_small_gan(tmp_path / str(w) / "generator"), n=40)
    # Seeds 0 / 1 / 2 give 4.6x / 4.4x / 3.0x.
    assert sum(moves[1.0][1:]) > 2 * sum(moves[0.0][1:])


def test_states_from_before_a_new_option_still_resume(tmp_path):
    x, y = _toy_data()
    cfg = TrainConfig(model={"z_dim": 8, "emb_dim": 4, "ngf": 4}, ndf=4, iters=4,
                      batch_size=8, sample_every=100, calib_batches=2)
    train_small_gan(x, y, cfg, tmp_path, progress=False, stop_after=2)
    st = torch.load(tmp_path / "state.pt", weights_only=True)
    old = json.loads(st["config"])
    del old["chunk_mode_seeking"]  # as written before the option existed
    st["config"] = json.dumps(old)
    torch.save(st, tmp_path / "state.pt")
    assert train_small_gan(x, y, cfg, tmp_path, progress=False)["iterations"] == 4
