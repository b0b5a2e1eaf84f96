"""Machine information recorded with every benchmark result, and a JSON appender."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from causalkit.io import atomic_write_text


def machine_info() -> dict[str, Any]:
    """CPU, OS, Python, torch and GPU facts for a benchmark record."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # the kernels torch picked: results of the same seed differ between capabilities
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    model = _cpuinfo("model name")
    if model:
        info["cpu_model"] = model
    bf16 = set((_cpuinfo("flags") or "").split()) & {"avx512_bf16", "amx_bf16"}
    if bf16:  # bfloat16 autocast (precision="bf16") is fast only with these
        info["cpu_bf16"] = sorted(bf16)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpuinfo(key: str) -> str | None:
    """The first ``key : value`` of /proc/cpuinfo; None off Linux or when absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return None


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` to the JSON list in ``path`` (atomically; creates the file).

    An exclusive lock on ``path.lock`` serialises the read-modify-write, so benchmark
    jobs running side by side cannot drop each other's records.
    """
    import fcntl

    path = Path(path)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = json.loads(path.read_text()) if path.exists() else []
        records.append(record)
        atomic_write_text(path, json.dumps(records, indent=2) + "\n")
