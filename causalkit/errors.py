"""The one exception family of causalkit.

Every error a user can cause by bad input (a cyclic graph file, an unknown node, a
probability outside [0, 1], a corrupted download) is a :class:`CausalKitError`. It
subclasses :class:`ValueError` so that generic callers keep working, and the CLI maps it
to exit code 2 with a one-line message and no traceback. Messages name the problem *and*
the fix.
"""

from __future__ import annotations


class CausalKitError(ValueError):
    """Bad input to causalkit; the message says what is wrong and how to fix it."""


class GraphError(CausalKitError):
    """A causal graph is malformed: a cycle, an unknown node, a duplicate, a self-loop."""


class DataError(CausalKitError):
    """Input data is missing, corrupt or inconsistent (files, columns, probabilities)."""


class WeightsMismatchError(DataError):
    """A weights file does not fit its model: missing, unexpected or mis-shaped tensors
    (raised by :func:`causalkit.weights.check_state_dict`)."""
