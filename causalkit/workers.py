"""This process's share of a sharded job: which of ``workers`` it is.

A job cut into shards (pre-generating GenInt's interventions, transferring styles,
writing counterfactual ImageNet) runs as several processes that each take the shards
``worker, worker + workers, ...``. Every shard's bytes depend on the job's seed and the
shard's index alone, so the split changes who writes a shard, never what it holds.
:func:`worker_share` finds a process's place the way the two common launchers say it:

1. given values win (``--shard-worker`` / ``--shard-workers``);
2. ``torchrun`` sets ``RANK`` and ``WORLD_SIZE``;
3. a Slurm array sets ``SLURM_ARRAY_TASK_ID`` (counted from ``SLURM_ARRAY_TASK_MIN``)
   and ``SLURM_ARRAY_TASK_COUNT``;
4. otherwise the process is alone: ``(0, 1)``.

>>> worker_share(1, 4)
(1, 4)
"""

from __future__ import annotations

import os

from causalkit.errors import CausalKitError

__all__ = ["worker_share"]


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise CausalKitError(f"environment variable {name}={value!r} is not an integer; "
                             "unset it or pass the worker and worker count explicitly") from None


def worker_share(worker: int | None = None, workers: int | None = None) -> tuple[int, int]:
    """``(worker, workers)``: given, else from torchrun or a Slurm array, else ``(0, 1)``.

    Raises :class:`CausalKitError` for a non-integer or an impossible pair.
    """
    if worker is None or workers is None:
        if _env_int("WORLD_SIZE") is not None:
            env_w, env_n = _env_int("RANK") or 0, _env_int("WORLD_SIZE")
        elif _env_int("SLURM_ARRAY_TASK_COUNT") is not None:
            first = _env_int("SLURM_ARRAY_TASK_MIN") or 0
            env_w = (_env_int("SLURM_ARRAY_TASK_ID") or first) - first
            env_n = _env_int("SLURM_ARRAY_TASK_COUNT")
        else:
            env_w, env_n = 0, 1
        worker = env_w if worker is None else worker
        workers = env_n if workers is None else workers
    for name, value in (("worker", worker), ("workers", workers)):
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise CausalKitError(f"{name} must be an integer, got {value!r}")
    worker, workers = int(worker), int(workers)
    if workers < 1 or not 0 <= worker < workers:
        raise CausalKitError(f"worker {worker} of {workers} is impossible; pass 0 <= worker "
                             "< workers (or set RANK / WORLD_SIZE, or run as a Slurm array)")
    return worker, workers
