"""Shared plumbing of the CLI: error mapping, JSON output, tables, output folders."""

from __future__ import annotations

import errno
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_text

F = TypeVar("F", bound=Callable[..., Any])

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """``causalkit --quiet``: :func:`status` prints nothing."""
    global _QUIET
    _QUIET = quiet


def status(message: str) -> None:
    """A status line on stderr (what is happening, which source was chosen), unless
    ``--quiet``."""
    if not _QUIET:
        typer.echo(message, err=True)


JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
OUT_OPTION = typer.Option(None, "--out", help="Folder for the report (JSON, PNG).")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def user_errors(func: F) -> F:
    """Turn bad input into one line on stderr (``error: ...``) and exit code 2.

    :class:`CausalKitError` is the project's own report of bad input; the file-system
    errors a user's paths cause (missing, a folder where a file belongs, no permission,
    a full disk) are reported by the path they name. Every message is squeezed onto one
    line. Anything else is a bug and keeps its traceback (exit 1).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CausalKitError as exc:
            message = one_line(str(exc))
        except FileNotFoundError as exc:
            message = f"no such file: {exc.filename}; check the path"
        except IsADirectoryError as exc:
            message = f"{exc.filename} is a folder, not a file; pass the file's path"
        except NotADirectoryError as exc:
            message = (f"{exc.filename}: a part of this path is a file, not a folder; "
                       "check the path")
        except PermissionError as exc:
            message = f"permission denied: {exc.filename}; fix its permissions or pick " \
                      "another path"
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
                raise
            message = f"cannot write {exc.filename or 'the output'}: {exc.strerror}; " \
                      "free some space or pick another --out"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def check_out(out: Path | None, *, option: str = "--out") -> Path | None:
    """Refuse an ``--out`` that is an existing file or lies in an unwritable folder.

    Every command that writes calls this before doing any work (nothing is created).
    """
    if out is None:
        return None
    from causalkit.io import check_out_dir

    return check_out_dir(out, option=option)


def check_device(device: str | None, *, option: str = "--device") -> str | None:
    """Refuse a ``--device`` this machine does not have (e.g. cuda without CUDA), in one
    line, before any work; returns ``device`` unchanged."""
    if device is not None:
        from causalkit.devices import resolve_device

        resolve_device(device, option=option)
    return device


def to_jsonable(obj: Any) -> Any:
    """Recursively convert numpy / torch scalars and arrays, tuples and paths to JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    return obj


def emit_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2) + "\n")


def write_report(out: Path | None, name: str, payload: Any) -> Path | None:
    """Atomically write ``payload`` as JSON to ``out/name`` when ``out`` is given."""
    if out is None:
        return None
    path = Path(out) / name
    atomic_write_text(path, json.dumps(to_jsonable(payload), indent=2) + "\n")
    return path


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain, aligned text table (no colour codes, so it pipes cleanly)."""

    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    body = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    out = [line, sep] + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                         for r in body]
    return "\n".join(out)
