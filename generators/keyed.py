"""Random numbers keyed per sample: a sample's draws depend on its own key, nothing else.

A stream made on several processes at once -- the interventional images of a
data-parallel training step, the shards of a pre-generation -- must give every sample
the same randomness whichever process makes it and whichever other samples share its
batch. Sequential generators (one ``torch.Generator`` per batch) cannot do that; keyed
ones can: sample ``j`` of step ``t`` of a run seeded ``s`` draws from the key
``(s, t, j)`` alone.

Two kinds of keys live here:

* :func:`keyed_seed` -- a 63-bit seed from any tuple of integers, through numpy's
  :class:`~numpy.random.SeedSequence` (for a ``torch.Generator`` per seed; tens of µs
  a key, fine per shard or per noise seed);
* :func:`row_keys` and :func:`uniforms` -- a vectorised counter-based generator for a
  whole batch of rows at once (thousands of rows in well under a millisecond): the
  SplitMix64 sequence (Steele, Lea & Flood, "Fast splittable pseudorandom number
  generators", OOPSLA 2014). Row ``j``'s key is its key tuple folded through the
  SplitMix64 finaliser; its ``i``-th uniform is the finaliser of ``key + (i + 1) *
  0x9E3779B97F4A7C15``, the ``i``-th output of a SplitMix64 generator seeded with the
  key. The uniforms are the top 53 bits, centred in their interval, so they lie in
  ``(0, 1)`` and never hit 0 or 1.

>>> import numpy as np
>>> keys = row_keys(0, 5, np.arange(4))
>>> bool((uniforms(keys, 3)[1:3] == uniforms(row_keys(0, 5, np.arange(1, 3)), 3)).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["keyed_seed", "row_keys", "uniforms", "mix64"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def keyed_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every one of ``parts`` (``SeedSequence``)."""
    words = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)
    return int(words[0] >> np.uint64(1))


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on ``uint64`` (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _as_u64(value: int) -> np.uint64:
    return np.uint64(int(value) & 0xFFFFFFFFFFFFFFFF)


def row_keys(*prefix_and_rows: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """``uint64`` keys of rows: ``row_keys(seed, step, rows)`` folds ``seed``, ``step``
    and each row index (the last argument, an array) into one key per row."""
    *prefix, rows = prefix_and_rows
    rows = np.asarray(rows, dtype=np.int64).astype(np.uint64)
    key = np.uint64(0)
    with np.errstate(over="ignore"):
        for part in prefix:
            key = mix64(np.array([(key + _GOLDEN) ^ _as_u64(part)], dtype=np.uint64))[0]
        return mix64((key + _GOLDEN) ^ rows)


def uniforms(keys: np.ndarray, count: int, *, offset: int = 0) -> np.ndarray:
    """``(len(keys), count)`` float64 uniforms in ``(0, 1)``: draws ``offset ..
    offset + count - 1`` of each key's SplitMix64 sequence."""
    keys = np.asarray(keys, dtype=np.uint64)
    counters = (np.arange(offset, offset + count, dtype=np.uint64) + np.uint64(1))
    with np.errstate(over="ignore"):
        bits = mix64(keys[:, None] + counters[None, :] * _GOLDEN) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) / float(1 << 53)
