"""The record selectors and formatters of ``robust_training.experiments.reports`` that
the docs pages call, on a throwaway records folder."""

from __future__ import annotations

import json

import pytest

from causalkit.errors import DataError
from robust_training.experiments import reports


@pytest.fixture
def records(tmp_path, monkeypatch):
    monkeypatch.setenv(reports.RECORDS_ENV, str(tmp_path))
    rs = [
        {"method": "erm", "seed": 1, "ood_accuracy": 0.5, "test_accuracy": 0.9,
         "settings": {"steps": 100}, "machine": {"date": "2026-01-01T00:00:00Z"}},
        {"method": "erm", "seed": 0, "ood_accuracy": 0.4, "test_accuracy": 0.8,
         "settings": {"steps": 100}, "machine": {"date": "2026-01-02T00:00:00Z"}},
        {"method": "erm", "seed": 0, "ood_accuracy": 0.6, "test_accuracy": 0.8,
         "settings": {"steps": 100}, "machine": {"date": "2026-01-03T00:00:00Z"}},
        {"method": "erm", "seed": 0, "ood_accuracy": 0.1, "test_accuracy": 0.8,
         "settings": {"steps": 200, "lr": 0.1}, "machine": {"date": "2026-01-04T00:00:00Z"}},
    ]
    (tmp_path / "genint_mnist.json").write_text(json.dumps(rs))
    return rs


def test_select_matches_dotted_paths_and_defaults(records):
    assert len(reports.select("genint_mnist", settings__steps=100)) == 3
    # a record without ``lr`` matches only through the default it ran with
    assert len(reports.select("genint_mnist", settings__lr=0.1)) == 1
    assert len(reports.select("genint_mnist", settings__lr=0.1,
                              defaults={"settings.lr": 0.1})) == 4
    assert reports.select("genint_mnist", settings__lr=None, settings__steps=200) == []


def test_latest_takes_the_newest_and_names_a_missing_selection(records):
    assert reports.latest("genint_mnist", seed=0, settings__steps=100)["ood_accuracy"] == 0.6
    with pytest.raises(DataError, match="no benchmark record"):
        reports.latest("genint_mnist", method="irm")


def test_genint_runs_orders_by_seed_and_keeps_the_latest_of_a_seed(records):
    runs = reports.genint_runs(steps=100)
    assert [r["seed"] for r in runs["erm"]] == [0, 1]
    assert reports.per_seed(runs, "erm") == [60.0, 50.0]
    assert reports.per_seed(runs, "gan-aug") == []


def test_seed_cells_and_tables():
    assert reports.seed_cells([97.13, 97.39]) == ["97.1", "97.4", "97.3 +- 0.2"]
    assert reports.seed_cells([1.0, 3.0], bold=True)[-1] == "**2.0 +- 1.4**"
    table = reports.screen_table([("real", "-", {"aligned": 0.5, "mi_bits": 1.234,
                                                  "recognised": 0.9})])
    assert "| real | - | 0.500 | 1.23 | 0.900 |" in table
    run = reports.cgn_run_table({"results": {"cgn": {"train": 0.9, "ood": 0.8,
                                                     "ood_mean_heads": 0.3}},
                                 "seconds": {"cgn": 12.0}, "seconds_total": 20.0})
    assert "| cgn | 90.0 | 80.0 | 30.0 |" in run and "total 20 s" in run


def test_value_range_collapses_equal_ends_and_refuses_nothing():
    assert reports.value_range([0.701, 0.671, 0.692]) == "0.67-0.70"
    assert reports.value_range([0.1804, 0.1848, 0.1845]) == "0.18"
    assert reports.value_range([1123.4, 1126.0], digits=0, unit=" s") == "1123-1126 s"
    with pytest.raises(DataError, match="at least one value"):
        reports.value_range([])
