"""Records of measured runs: the machine they ran on, what they read, and a shared log.

A benchmark number means little without the machine that produced it, and a result
file that several jobs append to must not lose records when they finish together. This
module holds the three pieces every benchmark record needs:

* :func:`machine_info` -- CPU, OS, Python, torch and GPU facts, including the CPU
  kernels torch picked (the same seed gives other numbers on other kernels);
* :func:`file_digest` -- a short SHA-256 of an input file, so that a record names a
  generator by its weights as well as by its folder (a generator retrained into the same
  folder then matches none of the old records);
* :func:`append_record` -- append one record to a JSON list, under an exclusive file
  lock and with an atomic write, so that jobs running side by side keep every record.

Examples
--------
>>> import json, tempfile, pathlib
>>> from causalkit.records import append_record
>>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
>>> append_record(path, {"run": 0}); append_record(path, {"run": 1})
>>> [r["run"] for r in json.loads(path.read_text())]
[0, 1]
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from causalkit.errors import DataError
from causalkit.io import atomic_write_text

__all__ = ["machine_info", "file_digest", "append_record"]


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


def file_digest(path: str | os.PathLike, n: int = 12) -> str:
    """The first ``n`` hex digits of a file's SHA-256 (e.g. to identify a generator's
    weights in a record).

    Raises :class:`~causalkit.errors.DataError` when ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not found"
        raise DataError(f"no such file: {path} ({what}); pass the path of an existing file "
                        "(e.g. a small-GAN folder's generator.pt)")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:n]


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
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
