"""Append-only JSON-lines logs that survive ``kill -9`` and match the checkpoint they resume.

A training loop appends one JSON object per line to its run folder's ``log.jsonl``
(``{"step": 200, "loss": 0.41, ...}``) and checkpoints every so often. Two things can then
go wrong, and this module handles both:

* **A torn tail.** A process killed while writing leaves the last line cut short
  (``{"step": 2``). :func:`read_log` drops a last line that does not parse; any *other*
  line that does not parse is real damage and a :class:`~causalkit.errors.DataError`.
* **Steps logged twice.** A run killed at step 530 with its last checkpoint at step 500
  has logged steps up to 530; resumed, it trains 501..530 again and would log them
  again. :func:`cut_log` rewrites the log (atomically) with only the records up to the
  checkpoint's step, so the resumed log reads as if the run had never stopped.

Every loop calls :func:`cut_log` with the step it starts from (0 for a fresh run, so a
log left by a run killed before its first checkpoint goes too), then appends with
:func:`append_record`.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
>>> _ = path.write_text('{"step": 1}\\n{"step": 2}\\n{"step": 3}\\n{"st')
>>> [r["step"] for r in read_log(path)]
[1, 2, 3]
>>> [r["step"] for r in cut_log(path, 2)]
[1, 2]
>>> path.read_text()
'{"step": 1}\\n{"step": 2}\\n'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from causalkit.errors import DataError
from causalkit.io import atomic_write_text

__all__ = ["read_log", "cut_log", "append_record"]


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines log (``[]`` when there is no file).

    A last line that does not parse (torn by a kill) is dropped; blank lines are skipped.

    Raises
    ------
    DataError
        A line other than the last is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        lines = path.read_bytes().decode("utf-8", errors="strict").split("\n")
    except UnicodeDecodeError:
        lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            if number == len(lines):
                break  # the torn tail of a killed run
            raise DataError(f"line {number} of {path} is not a JSON record; the log is "
                            "damaged: delete it (or the run folder) and rerun")
        records.append(record)
    return records


def cut_log(path: str | os.PathLike, upto: int, *, key: str = "step"
            ) -> list[dict[str, Any]]:
    """Keep only the records whose ``key`` is at most ``upto``; rewrite ``path`` atomically.

    ``upto`` is the step (or iteration) a resumed run starts from; records without
    ``key`` are kept. A torn tail goes too. Returns the kept records; without a file,
    nothing is written and ``[]`` returned.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = read_log(path)
    kept = [r for r in records if not isinstance(r.get(key), (int, float))
            or r[key] <= upto]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    if text.encode() != path.read_bytes():
        atomic_write_text(path, text)
    return kept


def append_record(fh: IO[str], record: dict[str, Any]) -> None:
    """Write ``record`` as one line to the open log ``fh`` and flush it."""
    fh.write(json.dumps(record) + "\n")
    fh.flush()
