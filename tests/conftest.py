"""Shared test helpers: the location of ../shared/data, skipping cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CAUSALKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_data(relpath: str) -> Path:
    """Path of ``../shared/data/relpath``; skips the test with a reason when it is absent."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"shared data {relpath!r} not found under {SHARED_DATA} "
                    "(set CAUSALKIT_SHARED_DATA to the folder that holds it)")
    return path
