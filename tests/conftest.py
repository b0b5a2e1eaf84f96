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


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Run the suite on one torch and one BLAS thread.

    On a 2-core machine shared with other work, oversubscribed threads spin-wait and
    make runs several times slower; one thread also keeps results bit-reproducible.
    threadpoolctl only limits libraries already loaded, so load scipy/sklearn first.
    """
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
