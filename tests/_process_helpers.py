"""Kill a CLI run in the middle: the helper behind the kill -9 resume tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence


def kill_when(argv: Sequence[str], reached: Callable[[], bool], *, env: Mapping[str, str],
              timeout: float = 120.0, poll: float = 0.005) -> None:
    """Run ``python -m causalkit *argv`` and SIGKILL it as soon as ``reached()`` is true
    (or after ``timeout`` seconds); fail if it finished before it could be killed."""
    proc = subprocess.Popen([sys.executable, "-m", "causalkit", *argv], env=dict(env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if reached():
                break
            time.sleep(poll)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"


def last_logged_step(out) -> int:
    """The last step a training run in ``out`` has logged (``-1`` before any)."""
    from causalkit.logs import read_log

    steps = [r["step"] for r in read_log(out / "log.jsonl")]
    return steps[-1] if steps else -1
