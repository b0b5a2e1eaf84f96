"""The experiments layer: presets as data, one precedence rule, round trips through files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from causalkit.cli import app
from causalkit.errors import CausalKitError
from robust_training.experiments.cgn_mnist import CGNMnistConfig, cgn_train_config, config_of_record
from robust_training.experiments.config import preset_names
from robust_training.experiments.genint_mnist import GenIntMnistConfig


@pytest.mark.parametrize("cls", [CGNMnistConfig, GenIntMnistConfig])
def test_every_preset_prints_saves_and_runs_back_from_a_file(tmp_path, cls):
    names = preset_names(cls.EXPERIMENT)
    assert names, cls.EXPERIMENT
    flags = {"generator": str(tmp_path)} if cls is GenIntMnistConfig else {}
    (tmp_path / "generator.pt").write_bytes(b"")  # the GenInt check only needs the file
    for name in names:
        cfg = cls.resolve(name, flags=flags)
        path = tmp_path / f"{name}.yaml"
        path.write_text(cfg.to_yaml())
        again = cls.resolve(file=path)
        assert again == cfg, name
        assert again.to_yaml() == path.read_text()


def test_precedence_is_preset_then_file_then_flags(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: colored-quick\nclassifier:\n  lr: 0.01\n  steps: 50\n")
    base = CGNMnistConfig.resolve("colored-quick")
    mine = CGNMnistConfig.resolve(file=path)
    assert (mine.classifier.lr, mine.classifier.steps) == (0.01, 50)
    assert mine.generator == base.generator  # the rest is the preset's
    flagged = CGNMnistConfig.resolve(file=path, flags={"steps": 7, "seed": 2})
    assert (flagged.classifier.lr, flagged.classifier.steps, flagged.seed) == (0.01, 7, 2)
    # a file on top of a named preset; null unsets an optional setting
    path.write_text("classifier:\n  steps: null\n")
    assert CGNMnistConfig.resolve("colored-full", file=path).classifier.steps is None


def test_a_protocol_fills_in_beneath_the_layer_that_names_it(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("classifier:\n  protocol: paper\n  lr: 0.5\n")
    cfg = CGNMnistConfig.resolve("colored-full", file=path)
    assert (cfg.classifier.optimizer, cfg.classifier.lr) == ("adadelta", 0.5)
    assert cfg.counterfactuals.n_generated == 100_000  # the protocol's, over the preset's
    ours = CGNMnistConfig.resolve("wildlife-full", flags={"classifier_protocol": "ours"})
    assert ours.classifier.optimizer == "adam" and ours.classifier.steps == 6000


@pytest.mark.parametrize("text, match", [
    ("classifier:\n  lrr: 1\n", r"unknown setting\(s\) \['classifier.lrr'\]"),
    ("classifier: [1, 2\n", "not valid YAML at line"),
    ("- 1\n", "must hold a mapping"),
    ("classifier:\n  steps: many\n", "classifier.steps must be int"),
    ("extends: nowhere\n", "unknown preset 'nowhere'"),
    ("data:\n  variant: fashion\n", "unknown variant 'fashion'"),
])
def test_a_bad_config_file_is_one_clear_error(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CausalKitError, match=match):
        CGNMnistConfig.resolve("colored-quick", file=path)


def test_unknown_flags_and_presets_are_refused():
    with pytest.raises(CausalKitError, match="unknown option 'lrate'"):
        CGNMnistConfig.resolve("colored-quick", flags={"lrate": 1})
    with pytest.raises(CausalKitError, match="choose one of"):
        CGNMnistConfig.resolve("colored-tiny")


def test_records_before_and_after_the_nested_config_read_alike():
    cfg = CGNMnistConfig.resolve("wildlife-full", flags={"seed": 4, "source": "s"})
    nested = config_of_record({"config": cfg.to_dict()})
    assert config_of_record({"config": json.loads(json.dumps(nested))}) == nested
    assert nested["seed"] == 4 and nested["cgn_iterations"] == 3000
    assert nested["cgn_overrides"] == {"recon_pool": 2, "lambda_tv": 1.0,
                                       "recon_features": 10.0, "recon_match": 8}
    back = CGNMnistConfig.resolve(flags=nested)  # the flat names resolve back
    assert back.flat() == nested and cgn_train_config(back) == cgn_train_config(cfg)


def test_cli_print_config_then_config_file(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--variant", "wildlife", "--quick",
                              "--seed", "3", "--print-config"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "wildlife.yaml"
    path.write_text(res.output.replace("steps: 300", "steps: 12"))
    again = runner.invoke(app, ["reproduce", "cgn-mnist", "--variant", "wildlife", "--quick",
                                "--config", str(path), "--print-config"])
    assert again.exit_code == 0 and "steps: 12" in again.output and "seed: 3" in again.output
    bad = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--config",
                              str(tmp_path / "none.yaml"), "--out", str(tmp_path / "run")])
    assert bad.exit_code == 2 and "no config file" in bad.output
    assert not (tmp_path / "run").exists()  # nothing written before the input is valid


def test_the_docs_table_of_methods_is_the_registry():
    from pathlib import Path

    from robust_training.methods import METHODS

    text = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| genint |") or line.startswith("| cgn |")]
    listed = {(pipe, name.strip("` ")) for pipe, names, *_ in rows
              for name in names.split(",")}
    assert listed == {(pipe, name) for pipe, table in METHODS.items() for name in table}
    for pipe, names, objectives, _ in rows:
        names = [n.strip("` ") for n in names.split(",")]
        objs = [o.strip("` ") for o in objectives.split(",")]
        for name, obj in zip(names, objs * len(names) if len(objs) == 1 else objs,
                             strict=True):
            assert METHODS[pipe][name].objective == obj, (pipe, name)


def test_causalkit_train_help_names_every_method_it_takes():
    from causalkit.cli.train import METHODS_HELP
    from robust_training.methods import METHODS

    assert set(METHODS_HELP.split(" (")[0].split(" | ")) == set(METHODS["genint"])
