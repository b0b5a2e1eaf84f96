"""Progress bars: few redraws in a log, a switch for the whole process, no ``nan``."""

from __future__ import annotations

import io
import math

import pytest
from typer.testing import CliRunner

from causalkit import progress as bars
from causalkit.cli import app


@pytest.fixture(autouse=True)
def _reset():
    yield
    bars.set_progress(None)


def test_a_bar_in_a_log_redraws_every_few_seconds(monkeypatch):
    monkeypatch.delenv("CAUSALKIT_PROGRESS_INTERVAL", raising=False)
    log = io.StringIO()  # not a TTY, like a log file or CI
    monkeypatch.setattr("sys.stderr", log)
    bar = bars.progress(range(10_000), desc="steps", file=log)
    assert bar.mininterval == bars.LOG_INTERVAL
    for _ in bar:
        pass
    # tqdm draws the start and the end; a 10 Hz bar would have drawn thousands of times
    # had the loop taken long; here: no more than a handful of lines
    assert log.getvalue().count("\r") <= 4
    assert "10000/10000" in log.getvalue()


def test_interval_can_be_set_and_bars_switched_off(monkeypatch):
    monkeypatch.setenv("CAUSALKIT_PROGRESS_INTERVAL", "0.5")
    assert bars.progress(range(3), file=io.StringIO()).mininterval == 0.5
    bars.set_progress(False)
    assert bars.progress(range(3), file=io.StringIO()).disable
    assert not bars.progress_enabled(True)
    bars.set_progress(None)
    assert bars.progress(range(3), enabled=False, file=io.StringIO()).disable
    assert not bars.progress(range(3), file=io.StringIO()).disable


def test_postfix_leaves_out_losses_not_computed_yet():
    assert bars.postfix(d=0.25, adv=math.nan, it=3, extra=None) == {"d": "0.250", "it": "3"}


def test_quiet_silences_status_lines_but_not_results(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path))
    runner = CliRunner()
    loud = runner.invoke(app, ["data", "build", "colored-mnist"])
    quiet = runner.invoke(app, ["--quiet", "data", "build", "colored-mnist"])
    assert loud.exit_code == 0 and quiet.exit_code == 0, loud.output + quiet.output
    assert any(line.startswith("source: embedded") for line in loud.stderr.splitlines())
    assert not any(line.startswith("source:") for line in quiet.stderr.splitlines())
    assert "train" in quiet.stdout and "ood" in quiet.stdout
