"""Progress bars that read well in a terminal and in a log file.

A tqdm bar redraws itself ten times a second. In a terminal that is what a person
wants; written to a log file or a CI console (stderr is not a TTY) every redraw becomes
a line, and a long run leaves hundreds of them. :func:`progress` makes every bar of
causalkit the same way:

* on a TTY it redraws at most every 0.1 s, as tqdm does;
* elsewhere at most every :data:`LOG_INTERVAL` seconds (``$CAUSALKIT_PROGRESS_INTERVAL``
  overrides it), so a log gets a line every few seconds and the last one;
* :func:`set_progress` switches every bar of the process off or on (the CLI's
  ``--quiet`` and ``--progress/--no-progress``), and a caller's own ``enabled=False``
  always wins.

:func:`postfix` formats the numbers a bar shows and leaves out those not computed yet
(``None`` or NaN), so a loss that starts later appears when it has a value instead of
showing ``nan``.

Examples
--------
>>> from causalkit.progress import postfix
>>> postfix(d=0.25, adv=float("nan"), step=None)
{'d': '0.250'}
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["progress", "set_progress", "progress_enabled", "postfix", "LOG_INTERVAL"]

#: Seconds between redraws when stderr is not a terminal.
LOG_INTERVAL = 5.0

_ENABLED: bool | None = None  # None: every bar decides for itself


def set_progress(enabled: bool | None) -> None:
    """Turn every progress bar of this process off (``False``), on (``True``), or back
    to each caller's choice (``None``)."""
    global _ENABLED
    _ENABLED = enabled


def progress_enabled(enabled: bool = True) -> bool:
    """Whether a bar that its caller wants ``enabled`` is shown."""
    return enabled and _ENABLED is not False


def _interval() -> float:
    if os.environ.get("CAUSALKIT_PROGRESS_INTERVAL"):
        return float(os.environ["CAUSALKIT_PROGRESS_INTERVAL"])
    return 0.1 if sys.stderr.isatty() else LOG_INTERVAL


def progress(iterable: Iterable[Any] | None = None, *, enabled: bool = True,
             **kwargs: Any) -> Any:
    """A tqdm bar on stderr (``kwargs`` go to tqdm), redrawn as this module describes."""
    from tqdm import tqdm

    kwargs.setdefault("mininterval", _interval())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not progress_enabled(enabled), **kwargs)


def postfix(**values: Any) -> dict[str, str]:
    """``values`` formatted for ``bar.set_postfix``: floats to three decimals, ``None``
    and NaN left out."""
    out = {}
    for name, value in values.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out[name] = f"{value:.3f}" if isinstance(value, float) else str(value)
    return out
