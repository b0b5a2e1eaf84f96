"""causalkit.weights: one strict state-dict check, one error type and message."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from causalkit.errors import DataError, WeightsMismatchError
from causalkit.weights import (
    LIST_LIMIT,
    as_state_dict,
    check_state_dict,
    compare_state_dict,
    load_weights,
)


def test_check_state_dict_lists_every_problem():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    state = dict(model.state_dict())
    check_state_dict(model, state, source="w.pt")  # a match passes
    del state["1.bias"]
    state["extra"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(4, 2)
    with pytest.raises(WeightsMismatchError) as info:
        check_state_dict(model, state, source="w.pt", what="its config.json",
                         hint="Use the matching config.")
    assert isinstance(info.value, DataError)
    assert str(info.value) == (
        "weights in w.pt do not match its config.json: 1 missing keys: 1.bias; "
        "1 unexpected keys: extra; 1 wrong shapes: 0.weight (4, 2) (model wants (3, 2)). "
        "Use the matching config.")


def test_long_lists_are_cut_and_hints_may_depend_on_the_report():
    own = {f"k{i:02d}": torch.zeros(1) for i in range(LIST_LIMIT + 3)}
    report = compare_state_dict(own, {})
    assert len(report.missing) == LIST_LIMIT + 3
    with pytest.raises(WeightsMismatchError, match=r"15 missing keys: k00, .*k11 \.\.\. and "
                                                   r"3 more\. fix 15$"):
        check_state_dict(own, {}, source="f", hint=lambda r: f"fix {len(r.missing)}")


def test_load_weights_is_the_whole_path_from_a_file_to_a_model(tmp_path):
    from causalkit.io import save_torch

    torch.manual_seed(0)
    net, other = nn.Linear(3, 2), nn.Linear(3, 2)
    save_torch(tmp_path / "w.pt", net.state_dict())
    load_weights(other, tmp_path / "w.pt")
    assert torch.equal(other.weight, net.weight)
    save_torch(tmp_path / "ckpt.pt", {"model": net.state_dict(), "step": 3})
    assert set(load_weights(other, tmp_path / "ckpt.pt", key="model")) == {"weight", "bias"}
    with pytest.raises(DataError, match="holds no 'generator' entry"):
        load_weights(other, tmp_path / "ckpt.pt", key="generator")
    with pytest.raises(DataError, match="holds a dict, not|entries are not tensors"):
        load_weights(other, tmp_path / "ckpt.pt")
    save_torch(tmp_path / "list.pt", [torch.zeros(1)])
    with pytest.raises(DataError, match="holds a list, not a state dict"):
        load_weights(other, tmp_path / "list.pt")
    with pytest.raises(WeightsMismatchError, match="wrong shapes: weight"):
        load_weights(nn.Linear(4, 2), tmp_path / "w.pt", what="the probe")
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(DataError, match="weights file .* is not a torch file"):
        load_weights(other, tmp_path / "bad.pt")
    assert as_state_dict({"a": torch.zeros(1)}, source="x") == {"a": torch.zeros(1)}
