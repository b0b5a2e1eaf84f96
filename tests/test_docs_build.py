"""The docs are executed, and their measured numbers come from the records.

* A page whose code cell calls an API that does not exist fails the Sphinx build (the
  build uses the project's own ``docs/conf.py``), and the same page with a working cell
  builds: the failure is the cell's.
* The README's results table equals what :mod:`robust_training.experiments.reports`
  makes from ``bench/results/``.
* The selection rule of the reports: a record that predates a setting matches a preset
  only where the preset keeps that setting's default, and precisions stay apart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from robust_training.experiments import reports
from robust_training.experiments.cgn_mnist import CGNMnistConfig, preset_config

ROOT = Path(__file__).resolve().parents[1]

PAGE = """---
file_format: mystnb
kernelspec:
  name: python3
  display_name: Python 3
---

# Throwaway

```{{code-cell}} python
from causalkit.bounds import {name}
print({name}(0.2, 0.5))
```
"""


def _build(tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    src = tmp_path / name
    src.mkdir()
    shutil.copy(ROOT / "docs" / "conf.py", src / "conf.py")
    (src / "_static").mkdir()
    (src / "index.md").write_text(PAGE.format(name=name))
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html",
                           str(src), str(tmp_path / f"{name}_html")],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_cell_that_breaks_fails_the_build_and_a_working_one_passes(tmp_path):
    good = _build(tmp_path, "natural_bounds")
    assert good.returncode == 0, good.stderr[-2000:]
    html = (tmp_path / "natural_bounds_html" / "index.html").read_text()
    assert "[0.2000, 0.7000]" in html  # the cell's output, computed by the build
    bad = _build(tmp_path, "natural_bounds_renamed")
    assert bad.returncode != 0
    assert "natural_bounds_renamed" in bad.stderr + bad.stdout


def test_readme_results_table_matches_the_records():
    assert reports.update_readme(ROOT / "README.md", check=True), (
        "README.md's results table differs from bench/results/; run "
        "python -m robust_training.experiments.reports --write README.md")


def _record(seed: int, ood: float, **config) -> dict:
    flat = preset_config("colored").flat() | {"seed": seed} | config
    return {"variant": "colored", "source": "mnist:/data", "config": flat,
            "results": {"cgn": {"ood": ood, "train": 1.0}}}


def test_preset_runs_follow_the_selection_rule(tmp_path, monkeypatch):
    defaults = CGNMnistConfig().flat()
    want = preset_config("colored").flat()
    # a setting the preset keeps at its default: a record without it still counts
    kept = next(k for k, v in want.items() if v == defaults[k] and k not in ("seed",))
    old = _record(0, 0.90)
    del old["config"][kept]
    records = [old, _record(1, 0.80), _record(2, 0.70, precision="bf16"),
               _record(3, 0.10, steps=want["steps"] + 1),
               {**_record(4, 0.50), "source": "embedded"}]
    (tmp_path / "cgn_mnist.json").write_text(json.dumps(records))
    monkeypatch.setenv(reports.RECORDS_ENV, str(tmp_path))
    s = reports.cgn_preset_summary("colored", precision="fp32")
    assert s.seeds == (0, 1) and s.values == (90.0, 80.0)
    assert s.mean == pytest.approx(85.0) and s.std == pytest.approx(7.071068, abs=1e-6)
    assert reports.cgn_preset_summary("colored", precision="bf16").seeds == (2,)
    # a setting the preset sets away from its default: a record without it does not count
    changed = next((k for k, v in want.items() if v != defaults[k]
                    and k not in ("seed", "source", "methods")), None)
    if changed is not None:
        old2 = _record(5, 0.99)
        del old2["config"][changed]
        (tmp_path / "cgn_mnist.json").write_text(json.dumps(records + [old2]))
        assert 5 not in reports.cgn_preset_summary("colored", precision="fp32").seeds


def test_markdown_table_escapes_pipes():
    table = reports.markdown_table(["a", "b"], [["x|y", 1]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]
