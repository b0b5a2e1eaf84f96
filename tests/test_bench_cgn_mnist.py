"""bench/cgn_mnist.py's summary: which records it averages, and the machine facts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.cgn_mnist as bench  # noqa: E402
from causalkit.records import machine_info  # noqa: E402
from robust_training.experiments.cgn_mnist import cgn_train_config, preset_config  # noqa: E402


def _record(seed: int, ood: float, device: str | None) -> dict:
    config = preset_config("colored", source="mnist:/data", seed=seed)
    # records written before the nested config hold it flat: both must group together
    flat = {k: v for k, v in config.flat().items() if k != "n_ood"} if seed % 2 else None
    record = {"variant": "colored", "config": flat or config.to_dict(), "source": "mnist:/data",
              "cgn_train_config": asdict(cgn_train_config(config)),
              "results": {"cgn": {"train": 0.99, "ood": ood}},
              "seconds": {"cgn": 10.0}, "seconds_total": 10.0}
    if device is not None:  # records from before the field have none: CPU
        record["device"] = device
    return record


def test_summary_averages_seeds_but_never_gpu_with_cpu(tmp_path, monkeypatch, capsys):
    records = [_record(0, 0.90, None), _record(1, 0.94, "cpu"), _record(0, 0.50, "cuda")]
    results = tmp_path / "cgn_mnist.json"
    results.write_text(json.dumps(records))
    monkeypatch.setattr(bench, "RESULTS", results)
    bench.summary()
    out = capsys.readouterr().out
    groups = [line for line in out.splitlines() if line.startswith("colored [")]
    assert len(groups) == 2, out
    cpu, gpu = groups
    assert "device" not in cpu and cpu.endswith("seeds=[0, 1]")
    assert "device=cuda" in gpu and gpu.endswith("seeds=[0]")
    assert "1000 CGN iterations at ngf 16" in cpu
    # the CPU pair is averaged (92.0 +- 2.8), the GPU run stands alone
    assert "ood  92.0 +-  2.8" in out and "ood  50.0   (1 run)" in out


def test_machine_info_names_the_kernels():
    info = machine_info()
    assert info["cpu_capability"]  # e.g. "AVX512": same seed, other kernels, other numbers
    assert info["cuda"] in (True, False)


def test_python_m_causalkit_runs_the_cli():
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "causalkit", "graph", "list"], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "genint" in proc.stdout


def test_classifier_step_bench_times_each_model_and_precision(tmp_path):
    out = tmp_path / "steps.json"
    subprocess.run([sys.executable, "bench/classifier_step.py", "--models", "cnn-cn",
                    "--steps", "2", "--skip", "1", "--batch-size", "4", "--out", str(out)],
                   check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    records = json.loads(out.read_text())
    assert [(r["model"], r["precision"]) for r in records] == [("cnn-cn", "fp32"),
                                                               ("cnn-cn", "bf16")]
    assert all(r["median_ms_per_step"] > 0 and r["machine"]["cpu_count"] for r in records)
