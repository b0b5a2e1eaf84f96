"""Strict weight loading: compare a state dict with a model, key by key and shape by shape.

``torch.nn.Module.load_state_dict(strict=True)`` stops at the first kind of problem and
says nothing about shapes until it copies; loaders across the project instead list
every missing, unexpected and mis-shaped tensor, so the user sees the whole mismatch at
once. :func:`compare_state_dict` finds the problems; :func:`check_state_dict` raises the
one error of every loader, :class:`~causalkit.errors.WeightsMismatchError`, with one
message format::

    weights in FILE do not match WHAT: 2 missing keys: a, b; 1 wrong shapes: c (8, 12)
    (model wants (8, 10)). HINT

Each list shows at most :data:`LIST_LIMIT` keys, then ``... and N more``.

:func:`as_state_dict` checks that what a file held is a state dict at all (a mapping of
names to tensors), and :func:`load_weights` is the whole path from a file to a model:
:func:`causalkit.io.load_torch` (one-line errors for missing, foreign, truncated and
pickled files), :func:`as_state_dict`, :func:`check_state_dict` and a strict
``load_state_dict``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from causalkit.errors import DataError, WeightsMismatchError

__all__ = ["StateDictMismatch", "compare_state_dict", "check_state_dict", "as_state_dict",
           "load_weights", "LIST_LIMIT"]

#: Keys shown per list in a :class:`~causalkit.errors.WeightsMismatchError` message.
LIST_LIMIT = 12


@dataclass
class StateDictMismatch:
    """What separates a state dict from a model's own, each list sorted by key."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    #: ``(key, shape in the file, shape the model wants)``
    shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every key is present, none is extra, and every shape matches."""
        return not (self.missing or self.unexpected or self.shapes)

    def __str__(self) -> str:
        problems = []
        if self.missing:
            problems.append(f"{len(self.missing)} missing keys: {_listing(self.missing)}")
        if self.unexpected:
            problems.append(f"{len(self.unexpected)} unexpected keys: "
                            f"{_listing(self.unexpected)}")
        if self.shapes:
            shapes = [f"{k} {file} (model wants {want})" for k, file, want in self.shapes]
            problems.append(f"{len(shapes)} wrong shapes: {_listing(shapes)}")
        return "; ".join(problems) or "all keys and shapes match"


def _listing(keys: Sequence[str], limit: int = LIST_LIMIT) -> str:
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def compare_state_dict(model: Any, state: Mapping[str, Any]) -> StateDictMismatch:
    """Compare ``state`` with ``model.state_dict()`` (``model`` may be the dict itself)."""
    own = model if isinstance(model, Mapping) else model.state_dict()
    common = sorted(set(own) & set(state))
    return StateDictMismatch(
        missing=sorted(set(own) - set(state)),
        unexpected=sorted(set(state) - set(own)),
        shapes=[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in common
                if tuple(state[k].shape) != tuple(own[k].shape)])


def check_state_dict(model: Any, state: Mapping[str, Any], *, source: str,
                     what: str = "the model",
                     hint: str | Callable[[StateDictMismatch], str] = "") -> None:
    """Raise :class:`~causalkit.errors.WeightsMismatchError` unless ``state`` fits ``model``.

    Parameters
    ----------
    model
        A module, or its state dict (e.g. a subset of keys).
    state
        The tensors read from ``source``.
    source
        Where ``state`` came from (a file path), named in the message.
    what
        What it should match, e.g. ``"its config.json"``; default ``"the model"``.
    hint
        The fix, one sentence appended to the message; or a function of the
        :class:`StateDictMismatch` returning it (a hint that depends on which keys differ).
    """
    report = compare_state_dict(model, state)
    if report.ok:
        return
    text = hint(report) if callable(hint) else hint
    raise WeightsMismatchError(f"weights in {source} do not match {what}: {report}."
                               + (f" {text}" if text else ""))


def as_state_dict(obj: Any, *, source: str, key: str | None = None) -> dict[str, Any]:
    """``obj`` (or ``obj[key]``) as a state dict: a mapping of string names to tensors.

    Raises :class:`~causalkit.errors.DataError` naming ``source`` when it is something
    else (a list, a number, a dict of dicts, a checkpoint without ``key``).
    """
    import torch

    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise DataError(f"{source} holds no {key!r} entry; pass a file written for this "
                            "model")
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise DataError(f"{source} holds a {type(obj).__name__}, not a state dict (names "
                        "to tensors); pass a file saved with torch.save(model.state_dict())")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str)
           or not isinstance(v, torch.Tensor)]
    if bad:
        raise DataError(f"{source} is not a state dict: {len(bad)} entries are not tensors "
                        f"({_listing(bad, 5)}); pass a file saved with "
                        "torch.save(model.state_dict())")
    return dict(obj)


def load_weights(model: Any, path: str | os.PathLike, *, what: str = "the model",
                 hint: str | Callable[[StateDictMismatch], str] = "",
                 key: str | None = None) -> dict[str, Any]:
    """Load the state dict in ``path`` (or under ``key`` in it) into ``model``, strictly.

    Every failure is one :class:`~causalkit.errors.DataError` line: the file's own
    problems from :func:`causalkit.io.load_torch`, a content that is no state dict
    (:func:`as_state_dict`), and mismatched keys or shapes
    (:class:`~causalkit.errors.WeightsMismatchError`, with ``what`` and ``hint`` as in
    :func:`check_state_dict`). Returns the state dict.
    """
    from causalkit.io import load_torch

    state = as_state_dict(load_torch(path, what="weights file"), source=str(path), key=key)
    check_state_dict(model, state, source=str(path), what=what, hint=hint)
    model.load_state_dict(state, strict=True)
    return state
