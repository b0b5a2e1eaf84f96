"""On-disk cache of built splits: deterministic ``.npz`` files under a content key.

A split is stored as a plain ``.npz`` (no pickle: load with ``allow_pickle=False``)
written through :func:`causalkit.io.atomic_write`. The zip entries carry a fixed
timestamp, so identical arrays give identical file bytes -- a built dataset can be
compared by its checksum.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.errors import DataError
from causalkit.io import atomic_write

__all__ = ["cache_key", "cache_file", "save_arrays", "load_arrays"]

FORMAT_VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)


def cache_key(fields: Mapping[str, Any]) -> str:
    """A stable 16-hex key of the fields that determine a split's bytes."""
    text = json.dumps({"format": FORMAT_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_file(folder: str | os.PathLike, fields: Mapping[str, Any]) -> Path:
    """``folder/<variant>-<split>-<key>.npz`` for the given key fields."""
    return Path(folder) / f"{fields['variant']}-{fields['split']}-{cache_key(fields)}.npz"


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                meta: Mapping[str, Any]) -> Path:
    """Atomically write ``arrays`` plus ``meta`` (JSON) as a byte-deterministic ``.npz``."""

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
            entries = dict(arrays)
            entries["__meta__"] = np.array(json.dumps(dict(meta), sort_keys=True, default=str))
            for name in sorted(entries):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(entries[name]),
                                          allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())

    return atomic_write(path, write)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_arrays`: ``(arrays, meta)``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read cached split {path} ({exc}); delete it to rebuild") \
            from None
    meta = json.loads(str(arrays.pop("__meta__").reshape(-1)[0])) if "__meta__" in arrays \
        else {}
    return arrays, meta
