"""causalkit.resume: the one checkpoint writer and settings-checking reader."""

from __future__ import annotations

import json

import pytest
import torch

from causalkit.errors import CausalKitError
from causalkit.resume import ABSENT, config_diff, load_checkpoint, save_checkpoint


def test_config_diff_defaults_free_fields_and_json_round_trip():
    assert config_diff({"a": 1}, {"a": 1, "b": 2}, defaults={"b": 2}) == {}
    assert config_diff({"a": 1}, {"a": 1, "b": 3}, defaults={"b": 2}) == {"b": (2, 3)}
    assert config_diff({"a": 1, "n": 5}, {"a": 1, "n": 9}, free=("n",)) == {}
    assert config_diff(json.dumps({"betas": [0.5, 0.9]}), {"betas": (0.5, 0.9)}) == {}
    assert config_diff({"a": 1, "gone": None}, {"a": 1}) == {"gone": (None, ABSENT)}
    assert config_diff({}, {"new": 1}) == {"new": (ABSENT, 1)}


def test_save_and_load_checkpoint(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    assert load_checkpoint(path, config={}, what="other settings") is None
    state = {"config": json.dumps({"lr": 0.1, "steps": 4}), "w": torch.arange(3), "step": 2}
    save_checkpoint(path, state)
    got = load_checkpoint(path, config={"lr": 0.1, "steps": 4}, what="other settings")
    assert torch.equal(got["w"], state["w"]) and got["step"] == 2
    with pytest.raises(CausalKitError, match=r"other settings \(lr saved 0.1, now 0.2\); use a "
                                             r"new --out folder .* \(only steps may change\)"):
        load_checkpoint(path, config={"lr": 0.2, "steps": 4}, what="other settings",
                        hint="only steps may change")
    with pytest.raises(CausalKitError, match="under 'config'"):
        save_checkpoint(path, {"w": torch.zeros(1)})
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(CausalKitError, match="not a training checkpoint"):
        load_checkpoint(path, config={}, what="other settings")
