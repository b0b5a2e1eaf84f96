"""Strict weight loading: compare a state dict with a model, key by key and shape by shape.

``torch.nn.Module.load_state_dict(strict=True)`` stops at the first kind of problem and
says nothing about shapes until it copies; loaders across the project instead list
every missing, unexpected and mis-shaped tensor, so the user sees the whole mismatch at
once. Each loader words its own error (and hints); this module only finds the problems.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StateDictMismatch", "compare_state_dict"]


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


def compare_state_dict(model: Any, state: Mapping[str, Any]) -> StateDictMismatch:
    """Compare ``state`` with ``model.state_dict()`` (``model`` may be the dict itself)."""
    own = model if isinstance(model, Mapping) else model.state_dict()
    common = sorted(set(own) & set(state))
    return StateDictMismatch(
        missing=sorted(set(own) - set(state)),
        unexpected=sorted(set(state) - set(own)),
        shapes=[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in common
                if tuple(state[k].shape) != tuple(own[k].shape)])
