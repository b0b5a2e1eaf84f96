"""Resumable training loops: one checkpoint writer, one reader that checks the settings.

Every training loop of the project (the classifier's :func:`robust_training.engine.fit`,
the small GAN's :func:`generators.small_gan_train.train_small_gan`, the CGN's
``train_cgn``) keeps its whole state in one torch file in its run folder and resumes
from it when called again on that folder. Each state is a dict whose ``"config"`` entry
holds the run's settings (a dict, or a JSON string); a resume with other settings would
silently continue a different run, so :func:`load_checkpoint` refuses it with a
:class:`~causalkit.errors.CausalKitError` that names the differing fields.

Equal states give equal bytes: a run resumed after ``kill -9`` writes the checkpoint,
byte for byte, that the uninterrupted run writes (strings are interned before pickling,
so that the pickle's back-references do not depend on where a string came from).

Comparison rules (:func:`config_diff`): fields missing from the saved config (added to
the loop after the checkpoint was written) count as their ``defaults``; ``free`` fields
(e.g. the run length, logging intervals) may change; both sides are compared after a
JSON round trip, so a tuple equals the list it was saved as. The image-set writer
(:func:`generators.writer.write_generated`) checks its ``generation.json`` with
:func:`config_diff` too.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.pt"
>>> _ = save_checkpoint(path, {"config": {"lr": 0.1, "steps": 5}, "step": 3})
>>> load_checkpoint(path, config={"lr": 0.1, "steps": 9}, what="other settings",
...                 free=("steps",))["step"]
3
>>> config_diff({"lr": 0.1}, {"lr": 0.2, "seed": 0}, defaults={"seed": 0})
{'lr': (0.1, 0.2)}
"""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_text, load_torch, save_torch

__all__ = ["save_checkpoint", "load_checkpoint", "config_diff", "check_run_folder",
           "ABSENT"]

#: Stands for a field one side of :func:`config_diff` does not have.
ABSENT = "<absent>"


def _as_dict(config: Mapping[str, Any] | str) -> dict[str, Any]:
    return json.loads(config) if isinstance(config, str) else dict(config)


def config_diff(saved: Mapping[str, Any] | str, current: Mapping[str, Any] | str, *,
                defaults: Mapping[str, Any] | None = None,
                free: Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """The fields whose saved value differs from the current one: ``{name: (saved, now)}``.

    ``saved`` and ``current`` are dicts or JSON strings. Fields missing from ``saved``
    take their value in ``defaults``; fields in ``free`` are ignored; values compare after
    a JSON round trip. A field only one side has shows as :data:`ABSENT` on the other.
    """
    free = set(free)

    def norm(d: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps({k: v for k, v in d.items() if k not in free}))

    old = norm({**dict(defaults or {}), **_as_dict(saved)})
    new = norm(_as_dict(current))
    return {k: (old.get(k, ABSENT), new.get(k, ABSENT)) for k in sorted(set(old) | set(new))
            if k not in old or k not in new or old[k] != new[k]}


def check_run_folder(out: str | os.PathLike, settings: Mapping[str, Any], *, file: str,
                     what: str, free: Iterable[str] = (), shards: str | None = ".shards",
                     write: bool = False, sort_keys: bool = False) -> dict[str, Any] | None:
    """The one rule for a folder that a resumable run fills: its settings ``file`` says
    what made it, and a rerun continues only the run it names.

    A ``file`` of other ``settings`` (compared by :func:`config_diff`, ``free`` fields
    ignored), a damaged one, or finished ``shards`` without a ``file`` are refused with
    a :class:`CausalKitError` naming the fix; ``what`` names the run in the message ("a
    generation run"). Returns the saved settings, or ``None`` for a new folder, where
    ``write=True`` records ``settings`` atomically.
    """
    out = Path(out)
    path = out / file
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CausalKitError(f"{path} is damaged (not JSON); use a new --out folder or "
                                 "delete it") from None
        diff = (sorted(config_diff(saved, dict(settings), free=free))
                if isinstance(saved, dict) else ["all"])
        if diff:
            raise CausalKitError(f"{out} holds {what} with other settings (differs in "
                                 f"{diff}); use a new --out folder or delete it")
        return saved
    if shards is not None and (out / shards).exists():
        raise CausalKitError(f"{out} holds finished shards but no {file}; use a new --out "
                             "folder or delete it")
    if write:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(dict(settings), indent=2, sort_keys=sort_keys,
                                           default=str) + "\n")
    return None


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write a loop's ``state`` atomically (:func:`causalkit.io.save_torch`).

    ``state`` must hold the run's settings under ``"config"`` (see
    :func:`load_checkpoint`); the other keys are the loop's own.
    """
    if "config" not in state:
        raise CausalKitError("a checkpoint state needs its run's settings under 'config'; "
                             "add config=asdict(...) to the state")
    return save_torch(path, _canonical(dict(state)))


def _canonical(obj: Any) -> Any:
    # Pickle writes a string once and refers back to it when the *same object* recurs.
    # A resumed loop holds strings read from its checkpoint (other objects than the
    # literals of a fresh run), so equal states would pickle to different bytes; with
    # every string interned, equal states give equal bytes.
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        copy = type(obj)() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            copy[_canonical(k)] = _canonical(v)
        if hasattr(obj, "_metadata"):  # a module's state dict: keep its version records
            copy._metadata = _canonical(obj._metadata)  # type: ignore[attr-defined]
        return copy
    if isinstance(obj, list):
        return [_canonical(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_canonical(v) for v in obj)
    return obj


def load_checkpoint(path: str | os.PathLike, *, config: Mapping[str, Any] | str, what: str,
                    defaults: Mapping[str, Any] | None = None, free: Iterable[str] = (),
                    hint: str = "", keys: Iterable[str] = ()) -> dict[str, Any] | None:
    """The state saved at ``path`` (``None`` when there is no file), if its settings match.

    Parameters
    ----------
    path
        The checkpoint file of a run folder.
    config
        This run's settings (a dict or a JSON string).
    what
        How the refusal names a differing config, e.g. ``"other settings"``.
    defaults, free
        See :func:`config_diff`.
    hint
        Appended to the refusal in parentheses, e.g. which fields may change.
    keys
        Entries the loop needs in the state (e.g. ``("model", "step")``).

    Raises
    ------
    CausalKitError
        The saved settings differ from ``config`` (the message lists the fields); the
        file is no checkpoint (not torch, truncated by a kill outside an atomic write,
        a pickled object, no ``"config"`` or one of ``keys`` missing).
    """
    path = Path(path)
    if not path.exists():
        return None
    fix = "delete it to start the run over, or use a new --out folder"
    state = load_torch(path, what="checkpoint", fix=fix)
    if not isinstance(state, dict) or "config" not in state:
        raise CausalKitError(f"{path} is not a training checkpoint (no saved config); use a "
                             "new --out folder or delete the file")
    lacking = [k for k in keys if k not in state]
    if lacking:
        raise CausalKitError(f"checkpoint {path} lacks {', '.join(lacking)}; it was not "
                             f"written by this loop: {fix}")
    diff = config_diff(state["config"], config, defaults=defaults, free=free)
    if diff:
        fields = ", ".join(f"{k} saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise CausalKitError(f"{path} was written with {what} ({fields}); use a new --out "
                             "folder or the same settings to resume"
                             + (f" ({hint})" if hint else ""))
    return state
