"""CGN training: a tiny run logs and saves grids; a killed run resumes bit-identically."""

from __future__ import annotations

import json

import pytest
import torch

from causalkit.errors import CausalKitError
from generators.cgn.mnist.train import preset, train_cgn


def _toy_data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    x[:, :, 10:22, 12:20] = 255  # a bar "digit" on black
    x[:, 0] = (x[:, 0].float() * (y[:, None, None] / 9)).to(torch.uint8)
    return x, y[torch.randperm(n, generator=g)]


def _cfg(recipe: str = "paper", **kw):
    base = dict(iterations=6, batch_size=8, ngf=8, log_every=1, sample_every=3,
                checkpoint_every=2, seed=3)
    return preset("colored", recipe=recipe, **{**base, **kw})


class Killed(Exception):
    pass


def test_tiny_run_writes_log_grids_and_checkpoint(tmp_path):
    x, y = _toy_data()
    cgn, history = train_cgn(x, y, _cfg(), tmp_path, progress=False)
    assert [r["iteration"] for r in history] == list(range(1, 7))
    for key in ("d", "adv", "mask_entropy", "mask_size", "texture", "mask_mean"):
        assert key in history[0]
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(s)["iteration"] for s in lines] == list(range(1, 7))
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "iter_000003.png", "iter_000006.png"]
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "generator.pt").exists()
    assert not cgn.training


@pytest.mark.parametrize("variant", ["colored", "wildlife"])
def test_resume_after_kill_is_identical(tmp_path, variant):
    x, y = _toy_data()
    cfg = _cfg(disc="conv") if variant == "wildlife" else _cfg()
    ref, ref_hist = train_cgn(x, y, cfg, tmp_path / "ref", progress=False)

    def kill_at_5(it: int) -> None:
        if it == 5:  # after the checkpoint at 4: iteration 5 is lost and redone
            raise Killed

    with pytest.raises(Killed):
        train_cgn(x, y, cfg, tmp_path / "run", progress=False, callback=kill_at_5)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 4
    resumed, hist = train_cgn(x, y, cfg, tmp_path / "run", progress=False)
    a, b = ref.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ"
    assert [r["iteration"] for r in hist] == list(range(1, 7))  # no duplicated lines
    assert hist[-1]["adv"] == ref_hist[-1]["adv"]


def test_fast_recipe_trains_an_encoder_and_resumes_identically(tmp_path):
    from generators.cgn.mnist.encoder import load_encoder

    x, y = _toy_data()
    cfg = _cfg(recipe="fast", bg_warmup=2)
    assert cfg.lambda_recon > 0 and cfg.mask_max == 0.5
    ref, ref_hist = train_cgn(x, y, cfg, tmp_path / "ref", progress=False)
    # warm-up: the background alone rebuilds the image; then every term is on
    assert set(ref_hist[0]) >= {"recon"} and "adv" not in ref_hist[0]
    assert {"adv", "recon", "recon_mask_entropy", "recon_mask_size", "mask_border",
            "contrast"} <= set(ref_hist[2])

    def kill_at_5(it: int) -> None:
        if it == 5:
            raise Killed

    with pytest.raises(Killed):
        train_cgn(x, y, cfg, tmp_path / "run", progress=False, callback=kill_at_5)
    resumed, hist = train_cgn(x, y, cfg, tmp_path / "run", progress=False)
    assert hist[-1]["recon"] == ref_hist[-1]["recon"]
    a, b = load_encoder(tmp_path / "ref" / "encoder.pt"), load_encoder(
        tmp_path / "run" / "encoder.pt")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(),
                                                 strict=True))


def test_reconstruction_improves_on_its_batch(tmp_path):
    x, y = _toy_data()
    _, hist = train_cgn(x, y, _cfg(recipe="fast", iterations=40, log_every=10,
                                   bg_warmup=0), tmp_path, progress=False)
    assert hist[-1]["recon"] < 0.8 * hist[0]["recon"]


def test_unknown_recipe_is_refused():
    with pytest.raises(CausalKitError, match="unknown recipe"):
        preset("colored", recipe="turbo")


def test_resume_with_other_config_is_refused(tmp_path):
    x, y = _toy_data()
    train_cgn(x, y, _cfg(iterations=2), tmp_path, progress=False)
    with pytest.raises(CausalKitError, match="another config"):
        train_cgn(x, y, _cfg(iterations=2, lr=1e-3), tmp_path, progress=False)


def test_bad_images_are_refused(tmp_path):
    x, y = _toy_data()
    with pytest.raises(CausalKitError, match="uint8"):
        train_cgn(x.float(), y, _cfg(), tmp_path, progress=False)
    with pytest.raises(CausalKitError, match="labels"):
        train_cgn(x, y[:-1], _cfg(), tmp_path, progress=False)


def test_a_checkpoint_older_than_a_config_field_resumes(tmp_path):
    # A field added after a checkpoint was written counts as its default: the run
    # resumes (here: finishes at once) instead of refusing.
    x, y = _toy_data()
    cfg = _cfg(iterations=2)
    train_cgn(x, y, cfg, tmp_path, progress=False)
    ckpt = tmp_path / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    del state["config"]["recon_pool"]
    torch.save(state, ckpt)
    _, hist = train_cgn(x, y, cfg, tmp_path, progress=False)
    assert [r["iteration"] for r in hist] == [1, 2]
    with pytest.raises(CausalKitError, match="recon_pool"):  # a non-default value differs
        train_cgn(x, y, _cfg(iterations=2, recon_pool=2), tmp_path, progress=False)


def test_tv_prior_and_pooled_reconstruction_enter_the_losses(tmp_path):
    x, y = _toy_data()
    kw = dict(recipe="fast", bg_warmup=1, iterations=3, lambda_tv=0.5)
    _, plain = train_cgn(x, y, _cfg(**kw), tmp_path / "a", progress=False)
    _, pooled = train_cgn(x, y, _cfg(recon_pool=2, **kw), tmp_path / "b", progress=False)
    assert {"mask_tv", "recon_mask_tv"} <= set(plain[-1])
    # same seed and data: only the reconstruction's pooling differs, from the first step
    assert plain[0]["recon"] != pytest.approx(pooled[0]["recon"])
    with pytest.raises(CausalKitError, match="recon_pool"):
        _cfg(recon_pool=0)


def test_texture_energy_reconstruction_enters_the_losses(tmp_path):
    x, y = _toy_data()
    kw = dict(recipe="fast", bg_warmup=1, iterations=2)
    _, log = train_cgn(x, y, _cfg(recon_features=2.0, **kw), tmp_path, progress=False)
    assert "recon_features" not in log[0] and log[1]["recon_features"] > 0


def test_texture_matching_rebuilds_the_image_better_than_a_random_draw(tmp_path):
    # in the background warm-up the reconstruction is the background alone, and the
    # matched draw is the best of 4 x 1024 (draw, shift) pairs for that very error
    x, y = _toy_data()
    kw = dict(recipe="fast", bg_warmup=2, iterations=1)
    _, plain = train_cgn(x, y, _cfg(**kw), tmp_path / "a", progress=False)
    _, matched = train_cgn(x, y, _cfg(recon_match=4, **kw), tmp_path / "b", progress=False)
    assert matched[0]["recon"] < plain[0]["recon"]
    with pytest.raises(CausalKitError, match="recon_match"):
        _cfg(recon_match=-1)


def test_shape_init_starts_from_another_cgns_shape_mechanism(tmp_path):
    x, y = _toy_data()
    donor, _ = train_cgn(x, y, _cfg(iterations=2, seed=5), tmp_path / "donor", progress=False)
    path = str(tmp_path / "donor" / "generator.pt")
    # zero iterations would not run; one step at lr 0 keeps the initial weights
    cgn, _ = train_cgn(x, y, _cfg(iterations=1, lr=0.0, lr_d=0.0, shape_init=path),
                       tmp_path / "b", progress=False)
    fresh, _ = train_cgn(x, y, _cfg(iterations=1, lr=0.0, lr_d=0.0), tmp_path / "c",
                         progress=False)
    for name, p in cgn.named_parameters():  # not the BatchNorm statistics
        source = donor if name.split(".")[0] in ("f_shape", "label_emb") else fresh
        assert torch.equal(p, dict(source.named_parameters())[name]), name
    with pytest.raises(CausalKitError, match="ngf=16"):
        train_cgn(x, y, _cfg(iterations=1, ngf=16, shape_init=path), tmp_path / "d",
                  progress=False)
    with pytest.raises(CausalKitError, match="not a file"):
        train_cgn(x, y, _cfg(iterations=1, shape_init=str(tmp_path / "nope.pt")),
                  tmp_path / "e", progress=False)


def test_shape_lr_mult_zero_freezes_the_shape_mechanism(tmp_path):
    x, y = _toy_data()
    donor, _ = train_cgn(x, y, _cfg(iterations=2, seed=5), tmp_path / "donor", progress=False)
    path = str(tmp_path / "donor" / "generator.pt")
    cgn, _ = train_cgn(x, y, _cfg(iterations=3, shape_init=path, shape_lr_mult=0.0),
                       tmp_path / "b", progress=False)
    ours, theirs = dict(cgn.named_parameters()), dict(donor.named_parameters())
    assert all(torch.equal(p, theirs[n]) for n, p in ours.items() if n.startswith("f_shape"))
    assert not torch.equal(ours["label_emb.weight"], theirs["label_emb.weight"])  # trains
    with pytest.raises(CausalKitError, match="shape_lr_mult must be >= 0"):
        _cfg(shape_lr_mult=-1.0)


def test_colour_posterior_target_enters_the_losses_after_the_warmup(tmp_path):
    x, y = _toy_data()
    kw = dict(recipe="fast", bg_warmup=1, iterations=2)
    for extra in ({}, {"recon_match": 2}):  # own draws, or recon_match's
        _, log = train_cgn(x, y, _cfg(recon_colour=1.0, **extra, **kw), tmp_path / str(extra),
                           progress=False)
        assert "recon_colour" not in log[0] and log[1]["recon_colour"] > 0
    with pytest.raises(CausalKitError, match="recon_colour"):
        _cfg(recon_colour=-1.0)


def test_bfloat16_training_is_finite_reproducible_and_not_float32(tmp_path):
    # in bfloat16 1 - 1e-6 rounds to 1; the mask entropy must not take log2(0)
    x, y = _toy_data()
    cfg = _cfg("fast", disc="conv", bg_warmup=2, precision="bf16")
    _, history = train_cgn(x, y, cfg, tmp_path / "a", progress=False)
    last = history[-1]
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values())
    assert "mask_entropy" in last and "recon" in last
    _, again = train_cgn(x, y, cfg, tmp_path / "b", progress=False)
    assert [r["d"] for r in again] == [r["d"] for r in history]
    _, fp32 = train_cgn(x, y, _cfg("fast", disc="conv", bg_warmup=2), tmp_path / "c",
                        progress=False)
    assert [r["d"] for r in fp32] != [r["d"] for r in history]
    with pytest.raises(CausalKitError, match="unknown precision 'fp16'"):
        _cfg(precision="fp16")
