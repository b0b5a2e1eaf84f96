"""A process's share of a sharded job (causalkit.workers), as torchrun and Slurm say it."""

import pytest

from causalkit.errors import CausalKitError
from causalkit.workers import worker_share

ENV = ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
       "SLURM_ARRAY_TASK_MIN")


def test_given_then_torchrun_then_slurm_then_alone(monkeypatch):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    assert worker_share() == (0, 1)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    assert worker_share() == (2, 4)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert worker_share() == (3, 8) and worker_share(1, 2) == (1, 2)


@pytest.mark.parametrize("env, given, message", [
    ({"RANK": "8", "WORLD_SIZE": "8"}, (None, None), "worker 8 of 8 is impossible"),
    ({"RANK": "x", "WORLD_SIZE": "2"}, (None, None), "RANK='x' is not an integer"),
    ({}, (2, 2), "worker 2 of 2 is impossible"),
    ({}, (0, 0), "worker 0 of 0 is impossible"),
    ({}, ("1", 2), "worker must be an integer"),
])
def test_impossible_shares_are_one_line(monkeypatch, env, given, message):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(CausalKitError, match=message):
        worker_share(*given)
