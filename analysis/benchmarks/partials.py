"""Partial results of an evaluation, one file per unit, so a killed run resumes.

An ImageNet-C run scores 75 (corruption, severity) folders of 50,000 images each; killed
after hours, it should not start again from the first folder. An evaluation is therefore
cut into *units* (:mod:`analysis.benchmarks.units`: a shard of one corruption at one
severity, the clean images, or a whole small benchmark), and each unit's numbers are
written, atomically, to a small JSON file under ``OUT/.partial/`` as soon as they are
known. The report is assembled from those files only, whether they were computed by this
run or an earlier, killed one, so a resumed run writes the bytes an uninterrupted one
writes.

A partial is reused only for exactly the question it answered. Its **key** holds:

* the model's digest (:func:`model_digest`): its classes, structure, simple attributes,
  every tensor of its state dict, and the bytes of the file it was loaded from;
* the listing digest of every folder the unit reads (:func:`listing_digest`: relative
  path and size of every file), so added, removed or replaced images make it stale;
* the unit's settings (benchmark, unit name, head, batch size, precision, device type,
  corrupt-file rule, corruption seed ...).

The file name ends in the first hex digits of the key's SHA-256, so a partial of another
key is never opened. A file under the right name whose recorded key differs (a hash
prefix collision, a hand-copied file) or that cannot be read is ignored: the unit is
computed again and the file replaced. Partials are derived data, so recomputing is
always safe.

>>> import tempfile, pathlib
>>> store = PartialStore(pathlib.Path(tempfile.mkdtemp()), model="m1", settings={"amp": False})
>>> unit = dict(benchmark="demo", name="a", settings={"n": 1}, reads=())
>>> store.fetch(**unit, run=lambda: ({"value": 0.5}, 1.0))
({'value': 0.5}, False)
>>> store.fetch(**unit, run=lambda: ({"value": 9.9}, 1.0))   # reused, not rerun
({'value': 0.5}, True)
>>> other = PartialStore(store.folder, model="m2", settings={"amp": False})
>>> other.fetch(**unit, run=lambda: ({"value": 0.7}, 1.0))  # another model: computed
({'value': 0.7}, False)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from causalkit.errors import DataError
from causalkit.io import atomic_write_text, read_json

FOLDER = ".partial"
"""The folder under ``--out`` that holds the partials."""

FORMAT = 1
"""The layout of a partial file; part of every key."""

HASH_DIGITS = 16
"""How many hex digits of the key's SHA-256 a partial's file name carries."""

_SIMPLE = (bool, int, float, str, type(None))


def _simple(value: Any) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    return isinstance(value, (tuple, list)) and all(isinstance(v, _SIMPLE) for v in value)


def model_digest(model: nn.Module, *, files: Iterable[str | os.PathLike] = ()) -> str:
    """SHA-256 of what decides a classifier's outputs.

    It covers every submodule's class (and TorchScript code), its simple attributes
    (numbers, strings, flags such as a selected head), every tensor of the state dict
    (names, dtypes, shapes, bytes), and the bytes of ``files`` (the file the model was
    loaded from, which holds what a TorchScript module keeps outside its state dict).
    """
    h = hashlib.sha256()
    for name, module in model.named_modules():
        kind = type(module)
        h.update(f"module {name} {kind.__module__}.{kind.__qualname__}\n".encode())
        if isinstance(module, torch.jit.ScriptModule):
            h.update(f"original {getattr(module, 'original_name', '')}\n".encode())
            try:
                h.update(str(module.code).encode())
            except (RuntimeError, AttributeError):  # a module without forward
                pass
        else:
            attrs = {k: v for k, v in vars(module).items()
                     if not k.startswith("_") and k != "training" and _simple(v)}
            h.update(json.dumps(attrs, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"tensor {name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    for path in files:
        file_hash = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                file_hash.update(block)
        h.update(f"file {file_hash.hexdigest()}\n".encode())
    return h.hexdigest()


def listing_digest(folder: str | os.PathLike) -> str:
    """SHA-256 of a folder's listing: the relative path and size of every file below it
    (names starting with ``.`` are skipped, as the image-folder reader skips them)."""
    root = Path(folder)
    h = hashlib.sha256()
    stack = [root]
    entries: list[tuple[str, int]] = []
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                else:
                    rel = Path(entry.path).relative_to(root).as_posix()
                    entries.append((rel, entry.stat(follow_symlinks=True).st_size))
    for rel, size in sorted(entries):
        h.update(f"{rel}\t{size}\n".encode())
    return h.hexdigest()


def _round_trip(obj: Any) -> Any:
    def plain(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError(f"{type(value).__name__} is not JSON")

    return json.loads(json.dumps(obj, default=plain))


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "unit"


class PartialStore:
    """The partials of one evaluation in ``folder`` (usually ``OUT/.partial``).

    ``model`` is the model's digest and ``settings`` the options every unit shares;
    :meth:`fetch` adds a unit's own settings and the listing digests of what it reads.
    With ``folder=None`` nothing is read or written and every unit is computed.
    """

    def __init__(self, folder: str | os.PathLike | None, *, model: str,
                 settings: Mapping[str, Any]) -> None:
        self.folder = None if folder is None else Path(folder)
        self.model = model
        self.settings = _round_trip(dict(settings))
        self.reused = 0
        self.computed = 0
        self.computed_seconds = 0.0
        self._listings: dict[str, str] = {}

    def _listing(self, folder: Path) -> str:
        key = os.fspath(folder)
        if key not in self._listings:
            self._listings[key] = listing_digest(folder)
        return self._listings[key]

    def key(self, *, benchmark: str, name: str, settings: Mapping[str, Any],
            reads: Iterable[tuple[str, str | os.PathLike]]) -> dict[str, Any]:
        """The key of a unit: format, benchmark, unit, model, data listings, settings.

        ``reads`` pairs a label (a folder's path relative to the benchmark's root, so the
        data may move) with the folder itself.
        """
        return {"format": FORMAT, "benchmark": benchmark, "unit": name, "model": self.model,
                "data": {label: self._listing(Path(folder)) for label, folder in reads},
                "settings": _round_trip({**self.settings, **dict(settings)})}

    def path(self, key: Mapping[str, Any]) -> Path | None:
        """Where the partial of ``key`` lives (``None`` without a folder)."""
        if self.folder is None:
            return None
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return (self.folder / _file_name(key["benchmark"])
                / f"{_file_name(key['unit'])}.{digest[:HASH_DIGITS]}.json")

    def load(self, key: Mapping[str, Any]) -> Any | None:
        """The saved result of ``key``, or ``None`` (no file, another key, unreadable)."""
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            saved = read_json(path, what="partial result", keys=("key", "result"))
        except DataError:
            return None
        if saved["key"] != _round_trip(dict(key)):
            return None
        return saved["result"]

    def fetch(self, *, benchmark: str, name: str, settings: Mapping[str, Any],
              reads: Iterable[tuple[str, str | os.PathLike]],
              run: Callable[[], tuple[Any, float]]) -> tuple[Any, bool]:
        """The unit's result and whether it was reused; ``run()`` (returning the result
        and its seconds) is called only when no partial of this key exists, and its
        result is saved before it is returned. Results come back as JSON gives them, so a
        computed and a reused result are equal values."""
        key = None
        if self.folder is not None:
            key = self.key(benchmark=benchmark, name=name, settings=settings, reads=reads)
        saved = None if key is None else self.load(key)
        if saved is not None:
            self.reused += 1
            return saved, True
        result, seconds = run()
        result = _round_trip(result)
        self.computed += 1
        self.computed_seconds += float(seconds)
        path = None if key is None else self.path(key)
        if path is not None:
            record = {"key": key, "result": result, "seconds": round(float(seconds), 3)}
            atomic_write_text(path, json.dumps(record, indent=1) + "\n")  # keeps key order
        return result, False


__all__ = ["FOLDER", "FORMAT", "PartialStore", "listing_digest", "model_digest"]
