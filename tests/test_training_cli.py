"""``causalkit train`` / ``evaluate`` end to end on tiny settings (embedded MNIST subset)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from typer.testing import CliRunner

from causalkit.cli import app
from generators.small_gan import SmallGANConfig, build_small_gan, save_small_gan

runner = CliRunner()


@pytest.fixture(scope="module")
def small_gan(tmp_path_factory):
    d = tmp_path_factory.mktemp("gan") / "g"
    save_small_gan(build_small_gan(SmallGANConfig(z_dim=8, emb_dim=4, ngf=4), seed=0), d)
    return d


def _run(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return runner.invoke(app, args)


def test_train_genint_transfer_and_evaluate(tmp_path, small_gan):
    out = tmp_path / "run"
    res = _run(["train", "--method", "genint-transfer", "--out", str(out), "--source",
                "embedded", "--n-train", "200", "--generator", f"small:{small_gan}",
                "--gen-per-class", "3", "--transfer-n", "8", "--transfer-steps", "2",
                "--steps", "3", "--batch-size", "8", "--gen-batch-size", "4",
                "--transfer-batch-size", "4", "--lambda2", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["streams"] == {"real": {"n": 200, "batch_size": 8},
                                 "int": {"n": 30, "batch_size": 4},
                                 "transfer": {"n": 8, "batch_size": 4}}
    assert 0.0 <= report["ood_accuracy"] <= 1.0
    cfg = json.loads((out / "model.json").read_text())["fit_config"]
    assert cfg["hparams"] == {"lambda1": 1.0, "lambda2": 0.5}
    res = _run(["evaluate", "--model", str(out), "--data", "double-colored-mnist:ood",
                "--source", "embedded", "--json"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.output[res.output.index("{"):])
    assert ev["n"] == 1000 and ev["accuracy"] == pytest.approx(report["ood_accuracy"])
    res = _run(["evaluate", "--model", str(out), "--data", "double-colored-mnist:ood",
                "--source", "embedded", "--by-nuisance", "--n", "300"])
    assert res.exit_code == 0, res.output
    assert "do(fg_class)" in res.output and "do(bg_class)" in res.output
    res = _run(["evaluate", "--model", str(out), "--data", str(tmp_path), "--by-nuisance"])
    assert res.exit_code == 2 and "needs a dataset variant" in res.output


def test_user_errors_exit_2(tmp_path):
    res = _run(["train", "--method", "genint", "--out", str(tmp_path / "x"), "--source",
                "embedded", "--n-train", "50", "--steps", "1"])
    assert res.exit_code == 2 and "needs --generator" in res.output
    res = _run(["train", "--method", "sgd", "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "unknown method 'sgd'" in res.output
    res = _run(["evaluate", "--model", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not a trained-model folder" in res.output


@pytest.fixture(scope="module")
def block_gan(tmp_path_factory):
    g = build_small_gan(SmallGANConfig(z_dim=8, emb_dim=4, ngf=4, block_latent=True), seed=0)
    for block in g.module.blocks:  # fresh block affines are zero: give the chunks a use
        block.affine.weight.data.normal_(generator=torch.Generator().manual_seed(0))
    d = tmp_path_factory.mktemp("gan") / "block"
    save_small_gan(g, d)
    return d


def test_layer_directions_in_pools_train_and_generate(tmp_path, block_gan):
    from generators.directions import fit_layerwise_directions
    from generators.small_gan import load_small_gan
    from robust_training.sources import generated_pool

    gen, layer = load_small_gan(block_gan, device="cpu"), "blocks.0.affine+blocks.2.affine"
    via_layer = generated_pool(gen, "t=1,k=4,s=2", 3, layer=layer)
    dirs = fit_layerwise_directions(gen, layer, k=4)
    assert dirs.layer == layer and dirs.k == 8  # 4 per layer: blocks.2.affine has only 4
    assert (via_layer[0] == generated_pool(gen, "t=1,k=4,s=2", 3, directions=dirs)[0]).all()
    assert not (via_layer[0] == generated_pool(gen, "t=1,k=4,s=2", 3)[0]).all()

    res = _run(["train", "--method", "genint", "--out", str(tmp_path / "run"), "--source",
                "embedded", "--n-train", "50", "--generator", f"small:{block_gan}",
                "--layer", layer, "--strategy", "t=1,k=4,s=2", "--gen-per-class", "2",
                "--steps", "2", "--batch-size", "8", "--gen-batch-size", "4", "--json"])
    assert res.exit_code == 0, res.output

    out = tmp_path / "gen"
    args = ["generate", "-g", f"small:{block_gan}", "-s", "t=1,k=4,s=2", "-n", "1",
            "--out", str(out), "--json"]
    res = _run(args + ["--layer", layer])
    assert res.exit_code == 0, res.output
    from generators.directions import Directions

    assert Directions.load(out / "directions.npz").layer == layer
    res = _run(args + ["--layer", "blocks.1.affine"])
    assert res.exit_code == 2 and "use a new --out" in res.output
    res = _run(args + ["--layer", layer, "--directions", str(out / "directions.npz")])
    assert res.exit_code == 2 and "not both" in res.output
