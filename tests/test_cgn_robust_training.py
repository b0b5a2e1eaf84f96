"""Objectives registry, the multi-head model, IRM and the CGN heads, and a tiny pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from robust_training.engine import accuracy, train_classifier
from robust_training.models import MultiHeadCNN
from robust_training.objectives import OBJECTIVES, Objective, get_objective, register_objective
from robust_training.streams import TrainData


def _batch(n=32, seed=0, envs=2):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n, 3), generator=g)
    return {"x": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, "y": y,
            "real": torch.arange(n) % 2 == 0, "env": torch.arange(n) % envs}


def test_registry_has_the_objectives_and_rejects_unknown():
    assert {"erm", "irm", "cgn-heads"} <= set(OBJECTIVES)
    with pytest.raises(CausalKitError, match="unknown objective"):
        get_objective("nope")
    with pytest.raises(CausalKitError, match="no hyper-parameter"):
        get_objective("irm", lamda=1)
    with pytest.raises(ValueError, match="already registered"):
        register_objective("erm")(Objective)


def test_heads_and_mean_logits():
    model = MultiHeadCNN(("shape", "texture", "background"))
    x = torch.rand(4, 3, 32, 32)
    out = model(x)
    assert set(out) == {"shape", "texture", "background"}
    assert torch.allclose(model.logits(x), (out["shape"] + out["texture"]
                                            + out["background"]) / 3, atol=1e-6)


def test_irm_penalty_is_weighted_after_annealing():
    obj = get_objective("irm", penalty_weight=1000.0, anneal_steps=5)
    model = obj.make_model()
    batch = _batch()
    early, logs = obj.loss(model, batch, step=0)
    late, _ = obj.loss(model, batch, step=5)
    assert logs["penalty"] > 0
    expected = (logs["risk"] + 1000.0 * logs["penalty"]) / 1000.0
    assert late.item() == pytest.approx(expected, rel=1e-4)
    assert early.item() == pytest.approx(logs["risk"] + logs["penalty"], rel=1e-4)
    # a fresh optimiser exactly when the penalty switches on, never otherwise
    assert [s for s in range(20) if obj.resets_optimizer(s)] == [5]
    assert not any(get_objective("erm").resets_optimizer(s) for s in range(20))


def test_cgn_heads_uses_each_mechanism_label():
    obj = get_objective("cgn-heads")
    model = obj.make_model()
    batch = _batch()
    batch["real"][:] = False
    loss, logs = obj.loss(model, batch, 0)
    with torch.no_grad():
        out = model(batch["x"])
    ce = [torch.nn.functional.cross_entropy(out[h], batch["y"][:, i]).item()
          for i, h in enumerate(("shape", "texture", "background"))]
    assert loss.item() == pytest.approx(sum(ce), rel=1e-5)
    # aux_weight scales the two colour heads only
    weighted, _ = get_objective("cgn-heads", aux_weight=0.25).loss(model, batch, 0)
    assert weighted.item() == pytest.approx(ce[0] + 0.25 * (ce[1] + ce[2]), rel=1e-5)


def test_training_learns_a_colour_rule_and_is_seeded():
    # class = colour: a CNN must learn it in one short run
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (200,), generator=g)
    palette = torch.randint(0, 256, (10, 3), generator=g).to(torch.uint8)
    x = palette[y][:, :, None, None].expand(-1, -1, 32, 32).contiguous()
    data = TrainData.real_images(x.numpy(), y.numpy())
    m1, _ = train_classifier("erm", data, epochs=10, batch_size=32, lr=1e-3,
                                 progress=False)
    m2, _ = train_classifier("erm", data, epochs=10, batch_size=32, lr=1e-3,
                                 progress=False)
    assert accuracy(m1, x, y) > 0.9
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(),
                                                 m2.state_dict().values(), strict=True))


def test_pipeline_rejects_a_negative_irm_penalty(tmp_path):
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    with pytest.raises(CausalKitError, match="irm_penalty"):
        run_cgn_mnist(preset_config("colored", quick=True, irm_penalty=-1.0), tmp_path,
                      progress=False)
    assert not any(tmp_path.iterdir())  # refused before any work


@pytest.mark.parametrize("bad, match", [
    ({"cgn_overrides": {"recon_pol": 2}}, "recon_pol"),
    ({"cgn_overrides": {"recon_pool": 0}}, "recon_pool"),
    ({"model": "vgg"}, "unknown model"),
    ({"cgn_aux_weight": -0.1}, "cgn_aux_weight"),
    ({"schedule": "linear"}, "schedule"),
    ({"optimizer": "lamb"}, "optimizer"),
    ({"rendering": "soft"}, "rendering"),
    ({"shift": -2}, "shift"),
    ({"palette": "rainbow"}, "palette"),
    ({"palette": "hue", "palette_target": "pixels"}, "palette target"),
    ({"contrast": 1.5}, "--contrast"),
    ({"random_background": 1.5}, "--random-background"),
    ({"random_texture": -0.1}, "--random-texture"),
    ({"random_texture": 0.5, "random_family": "clouds"}, "--random-family"),
])
def test_pipeline_checks_its_settings_before_any_work(tmp_path, bad, match):
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    with pytest.raises(CausalKitError, match=match):
        run_cgn_mnist(preset_config("colored", quick=True, **bad), tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_traindata_validates():
    with pytest.raises(CausalKitError, match="uint8"):
        TrainData.real_images(np.zeros((2, 3, 32, 32), np.float32), [0, 1])


def test_tiny_pipeline_end_to_end(tmp_path):
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    cfg = preset_config("double-colored", quick=True, n_train=200, n_ood=100, cgn_iterations=3,
                               cgn_batch=16, cgn_ngf=8, n_generated=60, per_noise=3,
                               steps=4, batch_size=32,
                               cgn_overrides={"recon_pool": 2, "lambda_tv": 0.5})
    rec = run_cgn_mnist(cfg, tmp_path, progress=False)
    # the overrides reach the CGN's training config
    assert rec["cgn_train_config"]["recon_pool"] == 2
    assert rec["cgn_train_config"]["lambda_tv"] == 0.5
    assert set(rec["results"]) == {"original", "irm-2", "irm-5", "original+gan",
                                   "original+cgn", "cgn"}
    for row in rec["results"].values():
        assert 0.0 <= row["ood"] <= 1.0 and 0.0 <= row["train"] <= 1.0
    assert "ood_mean_heads" in rec["results"]["cgn"]
    assert rec["results"]["irm-2"]["hparams"] == {"penalty_weight": cfg.classifier.irm_penalty}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == rec["results"]
    for name in ("table.txt", "counterfactuals.png", "cgn_samples.png", "train_samples.png",
                 "counterfactuals.npz", "cgn/log.jsonl", "cgn/encoder.pt"):
        assert (tmp_path / name).exists(), name
    # the fast recipe's encoder makes the counterfactuals from the real training images
    assert rec["counterfactual_noise"] == "abducted"
    assert rec["cgn_train_config"]["lambda_recon"] > 0
    cf = np.load(tmp_path / "counterfactuals.npz")
    assert len(cf["images"]) >= 60 and "abducted" in (tmp_path / "table.txt").read_text()


def test_pipeline_refuses_abduction_without_an_encoder(tmp_path):
    from robust_training.experiments.cgn_mnist import preset_config

    with pytest.raises(CausalKitError, match="encoder"):
        preset_config("colored", quick=True, n_train=100, n_ood=50, cgn_iterations=2,
                      cgn_batch=16, cgn_ngf=8, n_generated=20, steps=2, cgn_recipe="paper",
                      counterfactuals="abducted", methods=("cgn",))
    # the fast recipe without its reconstruction term trains no encoder either
    with pytest.raises(CausalKitError, match="encoder"):
        preset_config("colored", quick=True, counterfactuals="abducted",
                      cgn_overrides={"lambda_recon": 0.0})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option, value, bad", [("backgrounds", "real", "photo"),
                                                 ("masks", "colour", "u2net")])
def test_pipeline_options_that_need_abducted_masks(tmp_path, option, value, bad):
    from generators.cgn.counterfactuals import CounterfactualSet
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    kw = dict(n_train=200, n_ood=50, cgn_iterations=2, cgn_batch=16, cgn_ngf=8,
              n_generated=40, steps=2, methods=("cgn",), **{option: value})
    rec = run_cgn_mnist(preset_config("colored", quick=True, **kw), tmp_path, progress=False)
    assert rec["config"]["counterfactuals"][option] == value
    assert 0.0 <= rec["results"]["cgn"]["ood"] <= 1
    assert CounterfactualSet.load(tmp_path / "counterfactuals.npz").meta[option] == value
    # a rerun on the same folder finds the CGN trained, and its record says so
    assert rec["cgn_resumed_at"] == 0
    again = run_cgn_mnist(preset_config("colored", quick=True, **kw), tmp_path, progress=False)
    assert again["cgn_resumed_at"] == 2
    assert again["results"]["cgn"]["ood"] == rec["results"]["cgn"]["ood"]
    # both work from the training images' abducted masks: prior noise has none
    with pytest.raises(CausalKitError, match=f"--{option} {value}: these work from"):
        run_cgn_mnist(preset_config("colored", quick=True, counterfactuals="prior", **kw),
                      tmp_path / "prior", progress=False)
    with pytest.raises(CausalKitError, match=f"unknown {option}"):
        run_cgn_mnist(preset_config("colored", quick=True, **{**kw, option: bad}),
                      tmp_path / "bad", progress=False)


def test_palette_shifts_what_the_classifier_sees_not_the_counterfactuals(tmp_path):
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    kw = dict(n_train=120, n_ood=40, cgn_iterations=2, cgn_batch=16, cgn_ngf=8,
              n_generated=40, steps=3, methods=("cgn",))
    runs = {}
    for palette in ("none", "hue+invert"):
        rec = run_cgn_mnist(preset_config("colored", quick=True, palette=palette, **kw),
                            tmp_path / palette, progress=False)
        assert rec["config"]["counterfactuals"]["palette"] == palette
        runs[palette] = tmp_path / palette
    same = ("counterfactuals.npz",)
    for name in same:  # the CGN and its counterfactuals do not depend on the palette
        assert (runs["none"] / name).read_bytes() == (runs["hue+invert"] / name).read_bytes()
    model = "classifiers/cgn/model.pt"
    assert (runs["none"] / model).read_bytes() != (runs["hue+invert"] / model).read_bytes()
    # on the mechanisms, the shift is part of generation: the saved set changes, its
    # labels do not, and the classifier trains on the set as saved
    rec = run_cgn_mnist(preset_config("colored", quick=True, palette="hue+invert",
                                      palette_target="mechanisms", **kw),
                        tmp_path / "mech", progress=False)
    assert rec["config"]["counterfactuals"]["palette_target"] == "mechanisms"
    from generators.cgn.counterfactuals import CounterfactualSet

    plain, mech = (CounterfactualSet.load(d / "counterfactuals.npz")
                   for d in (runs["none"], tmp_path / "mech"))
    for name in ("shape", "texture", "background", "group"):
        assert np.array_equal(getattr(plain, name), getattr(mech, name))
    assert not np.array_equal(plain.images, mech.images)


def test_random_translate_moves_whole_images_by_at_most_the_shift():
    from robust_training.streams import random_translate

    x = torch.zeros(8, 3, 32, 32)
    x[:, :, 15, 15] = 1.0  # one bright pixel per image, far from the border
    g = torch.Generator().manual_seed(0)
    out = random_translate(x, 2, g)
    assert out.shape == x.shape
    pos = [divmod(int(i), 32) for i in out[:, 0].flatten(1).argmax(1)]
    assert all(13 <= r <= 17 and 13 <= c <= 17 for r, c in pos)
    assert len(set(pos)) > 1  # the images moved independently
    assert torch.equal(out, random_translate(x, 2, torch.Generator().manual_seed(0)))
    assert random_translate(x, 0, g) is x
    # replicate padding: a constant image stays constant (no new edge at the border)
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert torch.equal(random_translate(flat, 3, g), flat)


def test_training_options_are_checked():
    data = TrainData.real_images(np.zeros((4, 3, 32, 32), np.uint8), [0, 1, 2, 3])
    with pytest.raises(CausalKitError, match="schedule"):
        train_classifier("erm", data, steps=1, schedule="linear", progress=False)
    with pytest.raises(CausalKitError, match="optimizer"):
        train_classifier("erm", data, steps=1, optimizer="lamb", progress=False)
    with pytest.raises(CausalKitError, match="shift"):
        train_classifier("erm", data, steps=1, shift=-1, progress=False)


def test_cosine_schedule_ends_near_zero_and_changes_training():
    from robust_training.engine import scheduled_lr

    assert scheduled_lr(0.1, 0, 100, "cosine") == pytest.approx(0.1)
    assert scheduled_lr(0.1, 50, 100, "cosine") == pytest.approx(0.05)
    assert scheduled_lr(0.1, 99, 100, "cosine") < 1e-4
    assert scheduled_lr(0.1, 99, 100) == 0.1
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 10, (64,), generator=g)
    x = torch.randint(0, 256, (64, 3, 32, 32), generator=g).to(torch.uint8)
    data = TrainData.real_images(x.numpy(), y.numpy())
    kw = dict(steps=6, batch_size=16, lr=1e-2, progress=False)
    const, _ = train_classifier("erm", data, **kw)
    cos, _ = train_classifier("erm", data, schedule="cosine", **kw)
    assert not all(torch.equal(a, b) for a, b in zip(const.state_dict().values(),
                                                     cos.state_dict().values(), strict=True))


def test_step_schedule_and_adadelta_follow_the_official_classifier():
    from robust_training.engine import scheduled_lr

    # StepLR(gamma=0.7) once per epoch over 10 epochs of 50 steps each
    assert [scheduled_lr(1.0, s, 500, "step") for s in (0, 49, 50, 499)] == \
        pytest.approx([1.0, 1.0, 0.7, 0.7 ** 9])
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 10, (64,), generator=g)
    x = torch.randint(0, 256, (64, 3, 32, 32), generator=g).to(torch.uint8)
    data = TrainData.real_images(x.numpy(), y.numpy())
    kw = dict(steps=6, batch_size=16, lr=1.0, schedule="step", progress=False)
    a, _ = train_classifier("erm", data, optimizer="adadelta", **kw)
    b, _ = train_classifier("erm", data, optimizer="adadelta", **kw)
    c, _ = train_classifier("erm", data, **{**kw, "lr": 1e-3})
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # same seed, same model
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_paper_classifier_protocol_sets_the_official_settings_under_given_ones():
    from robust_training.experiments.cgn_mnist import preset_config
    from robust_training.experiments.config import PRESETS, load_layer

    paper = load_layer(PRESETS / "cgn-mnist" / "protocols" / "paper.yaml")
    cfg = preset_config("wildlife", classifier_protocol="paper")
    for section, settings in paper.items():
        for k, v in settings.items():
            assert getattr(getattr(cfg, section), k) == v, (section, k)
    assert cfg.classifier.protocol == "paper" and cfg.generator.train["recon_match"] == 8
    two = preset_config("colored", classifier_protocol="paper", epochs=2.0)
    assert two.classifier.epochs == 2.0 and two.classifier.optimizer == "adadelta"
    assert preset_config("colored").classifier.optimizer == "adam"
    with pytest.raises(CausalKitError, match="classifier protocol"):
        preset_config("colored", classifier_protocol="official")


def test_cgn_heads_refuses_a_negative_aux_weight():
    with pytest.raises(CausalKitError, match="aux_weight must be >= 0"):
        get_objective("cgn-heads", aux_weight=-0.5)


def test_variant_settings_reach_the_presets_and_yield_to_given_ones():
    from robust_training.experiments.cgn_mnist import preset_config

    wild = {"recon_pool": 2, "lambda_tv": 1.0, "recon_features": 10.0, "recon_match": 8}
    assert preset_config("wildlife").flat()["cgn_overrides"] == wild
    mine = preset_config("wildlife", quick=True, cgn_overrides={"recon_features": 0.0})
    assert mine.generator.train["recon_features"] == 0.0
    assert mine.generator.train["recon_pool"] == 2
    assert preset_config("double-colored").flat()["cgn_overrides"] == {}
    # budget-specific settings: the full preset's only, and still below given ones
    assert preset_config("colored", quick=True).flat()["cgn_overrides"] == {}
    assert preset_config("colored").flat()["cgn_overrides"] == {"recon_features": 10.0}
    assert preset_config("colored", cgn_overrides={"recon_features": 1.0}
                         ).flat()["cgn_overrides"] == {"recon_features": 1.0}


def test_full_variant_settings_reach_the_full_preset_only_and_yield_to_given_ones():
    from robust_training.experiments.cgn_mnist import cgn_train_config, preset_config

    def flat(variant, quick=False, **kw):
        return preset_config(variant, quick=quick, **kw).flat()

    assert flat("double-colored")["cgn_iterations"] == 3000
    assert flat("double-colored", cgn_iterations=500)["cgn_iterations"] == 500
    assert flat("colored")["cgn_iterations"] == 1000
    assert flat("double-colored")["model"] == "cnn-cn"
    assert flat("wildlife")["precision"] == flat("wildlife", True)["precision"] == "fp32"
    bf16 = preset_config("wildlife", precision="bf16")
    assert (bf16.precision, cgn_train_config(bf16).precision) == ("bf16", "bf16")
    assert flat("colored")["model"] == flat("double-colored", True)["model"] == "cnn"
    wildlife = flat("wildlife")
    assert (wildlife["rendering"], wildlife["classifier_protocol"]) == ("paper", "paper")
    assert wildlife["cgn_iterations"] == 3000
    assert wildlife["backgrounds"] == "real" and flat("wildlife", True)["backgrounds"] \
        == flat("colored")["backgrounds"] == "generated"
    # without abduction (the official weights, prior noise) the preset keeps the CGN's
    assert wildlife["masks"] == "colour" and flat("wildlife", True)["masks"] \
        == flat("colored")["masks"] == "cgn"
    official = {"cgn": "official", "official_root": str(_OFFICIAL)}
    for kw in ({"counterfactuals": "prior"}, {"cgn_recipe": "paper"},
               *([official] if _OFFICIAL.is_dir() else [])):
        cfg = flat("wildlife", **kw)
        assert (cfg["backgrounds"], cfg["masks"]) == ("generated", "cgn"), kw
    # ... but a user's own choice of them is checked, not dropped
    with pytest.raises(CausalKitError, match="--backgrounds real: these work from"):
        preset_config("wildlife", counterfactuals="prior", backgrounds="real")
    assert wildlife["optimizer"] == "adadelta"  # the protocol's settings come with its name
    assert flat("wildlife", classifier_protocol="ours")["optimizer"] == "adam"
    assert flat("wildlife", classifier_protocol="ours")["n_generated"] == 20000
    assert flat("double-colored", True)["cgn_iterations"] == 400


_OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cgn_official"


def _pooled(n: int = 90) -> TrainData:
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g).to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    half = n // 2
    return TrainData.concat(TrainData.real_images(x[:half].numpy(), y[:half].numpy()),
                            TrainData.generated(x[half:].numpy(), y[half:].numpy(),
                                                ((y[half:] + 1) % 10).numpy(),
                                                ((y[half:] + 2) % 10).numpy(), env=1))


def test_shuffled_batches_are_a_pure_function_of_the_step_and_split_over_ranks():
    from robust_training.streams import PooledStream

    data = _pooled()
    order = PooledStream(data, 16, seed=2, shift=2)
    seen = [order.batch(s) for s in range(12)]  # 5 steps per epoch: crosses two epochs
    fresh = PooledStream(data, 16, seed=2, shift=2)
    for s in (11, 3, 7, 0):  # out of order, as after a resume
        b = fresh.batch(s)
        assert all(torch.equal(b[k], seen[s][k]) for k in b)
    # an epoch visits 5 x 16 distinct rows (the last partial batch is dropped)
    plain = PooledStream(data, 16, seed=2)
    epoch = torch.cat([plain.batch(s)["x"].flatten(1) for s in range(5)])
    assert len(torch.unique(epoch, dim=0)) == 80
    # the real rows are stream 0, the rest stream 3
    assert set(seen[0]["stream"].tolist()) <= {0, 3}
    assert torch.equal(seen[0]["stream"] == 0, seen[0]["real"])
    parts = [PooledStream(data, 16, seed=2, shift=2).batch(4, rank=r, world=2) for r in (0, 1)]
    assert sorted(torch.cat([p["x"] for p in parts]).flatten().tolist()) == \
        sorted(seen[4]["x"].flatten().tolist())


def test_a_killed_classifier_run_resumes_to_the_same_model(tmp_path):
    from robust_training.engine import FitConfig, fit
    from robust_training.streams import PooledStream

    data = _pooled()
    kw = dict(steps=8, batch_size=16, lr=2e-3, schedule="cosine", shift=1, seed=5,
              hparams={"aux_weight": 0.5}, progress=False)
    whole, _ = train_classifier("cgn-heads", data, **kw)
    config = FitConfig(objective="cgn-heads", steps=8, lr=2e-3, schedule="cosine", seed=5,
                       hparams={"aux_weight": 0.5}, checkpoint_every=1)
    fit(PooledStream(data, 16, seed=5, shift=1), config, tmp_path, progress=False,
        stop_after=3)  # "killed" after step 3
    resumed, info = fit(PooledStream(data, 16, seed=5, shift=1), config, tmp_path,
                        progress=False)
    assert info["steps"] == 8
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(),
                                                 resumed.state_dict().values(), strict=True))
    with pytest.raises(CausalKitError, match="registered name"):
        train_classifier(object(), data, steps=1, progress=False)


def test_contrast_norm_ignores_brightness_offset_and_contrast():
    from robust_training.models import ContrastNorm, build_model

    g = torch.Generator().manual_seed(0)
    digit = (torch.rand(2, 1, 32, 32, generator=g) > 0.8).float()
    colour = torch.tensor([0.3, -0.2, 0.5]).view(1, 3, 1, 1)
    strong = digit * colour - 0.4  # a coloured digit on a grey background
    faint = 0.05 * digit * colour + 0.6  # the same digit 2-6 grey levels from its background
    norm = ContrastNorm()
    torch.testing.assert_close(norm(faint), norm(strong), atol=1e-3, rtol=0.02)  # eps
    out = norm(strong)
    assert out.mean(dim=(2, 3)).abs().max() < 1e-5
    torch.testing.assert_close(out.flatten(1).std(dim=1), torch.ones(2), atol=1e-3, rtol=0)
    flat = norm(torch.full((1, 3, 8, 8), 0.7))  # a uniform image: float rounding, no blow-up
    assert flat.abs().max() < 1e-3
    model = build_model("cnn-cn", ("shape",))
    assert isinstance(model.backbone[0], ContrastNorm)
    assert model(faint)["shape"].shape == (2, 10)
    with pytest.raises(CausalKitError, match="cnn-cn"):
        build_model("cnn-xx", ("shape",))


def test_random_backgrounds_replace_a_fraction_of_a_runs_grounds(tmp_path):
    from generators.cgn.counterfactuals import CounterfactualSet
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    kw = dict(n_train=120, n_ood=40, cgn_iterations=2, cgn_batch=16, cgn_ngf=8,
              n_generated=80, steps=3, methods=("cgn",), backgrounds="real", masks="colour")
    sets = {}
    for p, family in ((0.0, "features"), (0.5, "features"), (0.5, "dead-leaves")):
        run_cgn_mnist(preset_config("colored", quick=True, random_background=p,
                                    random_family=family, **kw),
                      tmp_path / f"{p}{family}", progress=False)
        sets[p, family] = CounterfactualSet.load(tmp_path / f"{p}{family}" / "counterfactuals.npz")
    none, features, leaves = sets.values()
    assert features.meta.get("random_textures") == {"background": 0.5}
    assert "random_family" not in features.meta
    assert leaves.meta.get("random_family") == "dead-leaves"
    assert "random_textures" not in none.meta
    for s in (features, leaves):
        for name in ("shape", "texture", "background", "group"):
            assert np.array_equal(getattr(none, name), getattr(s, name))
        changed = (none.images != s.images).reshape(80, -1).any(1)
        assert 0.25 < changed.mean() < 0.75  # about half the grounds, the rest as they were
    assert not np.array_equal(features.images, leaves.images)


def test_contrast_scales_the_abducted_masks_of_a_run(tmp_path):
    from generators.cgn.counterfactuals import CounterfactualSet
    from robust_training.experiments.cgn_mnist import preset_config, run_cgn_mnist

    kw = dict(n_train=120, n_ood=40, cgn_iterations=2, cgn_batch=16, cgn_ngf=8,
              n_generated=40, steps=3, methods=("cgn",), backgrounds="real", masks="colour")
    sets = {}
    for c in (1.0, 0.25):
        rec = run_cgn_mnist(preset_config("colored", quick=True, contrast=c, **kw),
                            tmp_path / str(c), progress=False)
        assert rec["counterfactual_noise"] == "abducted"
        sets[c] = CounterfactualSet.load(tmp_path / str(c) / "counterfactuals.npz")
    assert sets[0.25].meta.get("contrast") == 0.25 and "contrast" not in sets[1.0].meta
    for name in ("shape", "texture", "background", "group"):
        assert np.array_equal(getattr(sets[1.0], name), getattr(sets[0.25], name))
    assert not np.array_equal(sets[1.0].images, sets[0.25].images)
