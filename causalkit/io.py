"""Safe file input and output.

* Atomic writes (:func:`atomic_write` and friends), so an interrupted run never leaves a
  torn file.
* The one torch file reader and writer of the project: :func:`load_torch` reads with
  ``weights_only=True`` onto the CPU (tensors, dicts, lists and numbers only: never
  arbitrary pickled code); :func:`save_torch` writes atomically.
* The one reader of small JSON files a user may hand over (``model.json``,
  ``config.json``): :func:`read_json`.
* The one output-folder check of every command that writes: :func:`check_out_dir`.

Every reader here turns what can go wrong with a user's file into one
:class:`~causalkit.errors.DataError` whose one-line message names the file, the problem
and the fix, and raises it *before* anything is written:

====================================  ===================================================
the file                              the message says
====================================  ===================================================
is missing / is a folder              ``no such file`` / ``is a folder, not a file``
holds no torch data (text, garbage)   ``is not a torch file``
is cut short (an interrupted copy)    ``is truncated or corrupt``
holds a pickled object (a module)     ``is not a plain state dict; causalkit refuses to
                                      unpickle it``
is not UTF-8 JSON / not an object     ``is not valid JSON`` / ``holds a list, not ...``
====================================  ===================================================

>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "model.pt"
>>> _ = bad.write_bytes(b"not a checkpoint")
>>> try:
...     load_torch(bad)
... except DataError as exc:
...     print(str(exc).split(str(bad))[1])
 is not a torch file (not written by torch.save); pass the right file
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from causalkit.errors import DataError

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "load_torch",
           "save_torch", "read_json", "read_text", "check_out_dir"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it into place.

    The rename is atomic on POSIX and Windows, so readers see the old file or the new
    one, never half of one. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically ``torch.save`` ``obj`` (a state dict, a checkpoint) to ``path``."""
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


def _check_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder, not a file; pass the path of the file "
                        "inside it")
    if not path.is_file():
        raise DataError(f"no such file: {path} ({what}); check the path")


_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_torch(path: str | os.PathLike, *, what: str = "torch file", fix: str = ""
               ) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with one-line errors.

    ``what`` names the file in messages (``"checkpoint"``, ``"weights file"``); ``fix``
    replaces the fix the messages end with (e.g. "delete it to start the run over").

    Raises
    ------
    DataError
        The file is missing or a folder, holds no torch data, is truncated, or holds a
        pickled object (a saved module, a numpy array ...) that ``weights_only`` refuses.
    """
    import pickle

    import torch

    path = Path(path)
    _check_file(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if found or _starts_with_pickle(path):
            held = f" (it holds a {found.group(1)})" if found else ""
            raise DataError(f"{what} {path} is not a plain state dict{held}; causalkit "
                            "refuses to unpickle it. Save tensors only, e.g. "
                            "torch.save(model.state_dict(), path)") from None
        raise DataError(f"{what} {path} is not a torch file (not written by torch.save); "
                        f"{fix or 'pass the right file'}") from None
    except PermissionError:
        raise DataError(f"{what} {path} cannot be read (permission denied); fix its "
                        "permissions") from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, IndexError,
            AttributeError, TypeError):
        # torch.save writes a zip archive; one cut short keeps the zip's first bytes
        if path.stat().st_size == 0:
            raise DataError(f"{what} {path} is empty; "
                            f"{fix or 'copy or download it again'}") from None
        if zipfile.is_zipfile(path) or _head(path) == b"PK\x03\x04":
            raise DataError(f"{what} {path} is truncated or corrupt (an interrupted copy or "
                            f"download?); {fix or 'copy or download it again'}") from None
        raise DataError(f"{what} {path} is not a torch file (not written by torch.save); "
                        f"{fix or 'pass the right file'}") from None


def _head(path: Path, n: int = 4) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _starts_with_pickle(path: Path) -> bool:
    # protocol 2+ pickles start with PROTO (0x80) and a protocol number 2..5
    head = _head(path, 2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_text(path: str | os.PathLike, *, what: str = "text file",
              fix: str = "pass the right file") -> str:
    """The UTF-8 text of ``path``; one-line :class:`DataError` when it is missing, a
    folder or binary (an image, an archive, a checkpoint passed by mistake)."""
    path = Path(path)
    _check_file(path, what)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise DataError(f"{what} {path} is not text (binary data); {fix}")
    return text


def read_json(path: str | os.PathLike, *, what: str = "JSON file",
              keys: tuple[str, ...] = (), fix: str = "") -> dict[str, Any]:
    """Read a JSON object from ``path``; one-line :class:`DataError` for every bad file.

    ``keys`` are required top-level keys; ``fix`` is the sentence that ends a message
    (default: how to recreate the file is not known here, so "pass the right file").
    """
    fix = fix or "pass the right file"
    text = read_text(path, what=what, fix=fix)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} {path} is not valid JSON (line {exc.lineno}, column "
                        f"{exc.colno}: {exc.msg}); {fix}") from None
    if not isinstance(data, dict):
        raise DataError(f"{what} {path} holds a {type(data).__name__}, not a JSON object; "
                        f"{fix}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise DataError(f"{what} {path} lacks {', '.join(map(repr, missing))}; {fix}")
    return data


def read_labels_csv(path: str | os.PathLike) -> list[tuple[str, int]]:
    """``(file, label)`` rows of an image folder's ``labels.csv`` (columns ``file`` and
    ``label``, others ignored). A missing column, a non-integer label or a file that is
    not text raises :class:`DataError` naming the line."""
    import csv
    import io

    path = Path(path)
    reader = csv.DictReader(io.StringIO(read_text(path, what="labels file")))
    if not reader.fieldnames or not {"file", "label"} <= set(reader.fieldnames):
        raise DataError(f"{path} needs the columns 'file' and 'label', found "
                        f"{reader.fieldnames}; write it as file,label")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            rows.append((row["file"], int(row["label"])))
        except (TypeError, ValueError):
            raise DataError(f"{path} line {line}: label {row['label']!r} is not an integer "
                            "class id; fix or remove that line") from None
    return rows


def check_out_dir(path: str | os.PathLike, *, option: str = "--out") -> Path:
    """Check that ``path`` can be an output folder, leaving nothing behind.

    It may exist as a folder or not exist yet; its nearest existing parent must be a
    writable folder (tried with a probe file that is removed at once: permissions alone
    do not tell, e.g. for root or on a read-only mount). Call it before any work, so
    that a run that cannot write its results fails in a second, not an hour in.

    Raises
    ------
    DataError
        ``path`` (or a parent) is an existing file, or the folder is not writable.
    """
    path = Path(path).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is" if probe == path else f"lies under {probe}, which is"
        raise DataError(f"{option} {path} {where} an existing file, not a folder; pass a "
                        "folder path")
    if probe.exists() and not _writable(probe):
        raise DataError(f"{option} {path}: folder {probe} is not writable; pass a folder "
                        "you can write to")
    return path


def _writable(folder: Path) -> bool:
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    # os.access says yes to root on a read-only file system; a probe file does not lie
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".causalkit-write-test-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True
