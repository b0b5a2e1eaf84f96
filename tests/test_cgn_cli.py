"""``causalkit reproduce cgn-mnist``: input errors are one line and exit code 2."""

from __future__ import annotations

from typer.testing import CliRunner

from causalkit.cli import app

runner = CliRunner()


def test_unknown_variant_is_a_user_error(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--variant", "fashion", "--quick",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "unknown variant 'fashion'" in res.output
    assert "Traceback" not in res.output


def test_missing_generator_file_is_a_user_error(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--cgn",
                              str(tmp_path / "nope.pt"), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "neither 'train', 'official' nor an existing" in res.output


def test_missing_official_root_is_a_user_error(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--cgn", "official",
                              "--official-root", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "official CGN checkpoints were not found" in res.output


def test_unknown_recipe_is_a_user_error(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--recipe", "turbo",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--recipe" in res.output


def test_masks_option_reaches_the_pipeline_checks(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--masks", "u2net",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown masks 'u2net' (--masks)" in res.output
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--masks", "colour",
                              "--counterfactuals", "prior", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--masks colour: these work from" in res.output


def test_palette_target_is_checked_before_any_work(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--palette", "hue",
                              "--palette-target", "pixels", "--out", str(out)])
    assert res.exit_code == 2 and "unknown palette target 'pixels'" in res.output
    assert "--palette-target" in res.output and not out.exists()


def test_random_texture_fractions_reach_the_config_and_are_checked(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--random-background",
                              "0.5", "--random-texture", "0.25", "--random-family",
                              "dead-leaves", "--print-config"])
    assert res.exit_code == 0, res.output
    assert "random_background: 0.5" in res.output and "random_texture: 0.25" in res.output
    assert "random_family: dead-leaves" in res.output
    out = tmp_path / "run"
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--random-background",
                              "2", "--out", str(out)])
    assert res.exit_code == 2 and "must lie in [0, 1]" in res.output
    assert "--random-background" in res.output and not out.exists()
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--quick", "--random-background",
                              "0.5", "--random-family", "clouds", "--out", str(out)])
    assert res.exit_code == 2 and "unknown random-texture family 'clouds'" in res.output
    assert "--random-family" in res.output and not out.exists()


def test_config_names_a_preset_with_its_own_variant(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-mnist", "--config", "wildlife-texture-ood",
                              "--print-config"])
    assert res.exit_code == 0, res.output
    assert "variant: wildlife" in res.output and "palette: hue+invert" in res.output
    for extra, match in ((["--variant", "colored"], "is for wildlife MNIST"),
                         (["--quick"], "does not combine")):
        out = tmp_path / "run"
        res = runner.invoke(app, ["reproduce", "cgn-mnist", "--config", "wildlife-texture-ood",
                                  *extra, "--out", str(out)])
        assert res.exit_code == 2 and match in res.output and not out.exists()
