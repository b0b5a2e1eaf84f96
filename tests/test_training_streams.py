"""Batch order of robust_training.streams: a pure function of (seed, stream, step)."""

import torch

from robust_training.streams import MultiStream, Stream


def _streams() -> MultiStream:
    g = torch.Generator().manual_seed(0)
    # 10 and 7 images at batch 4 and 3: batches span epoch boundaries
    return MultiStream([
        Stream("real", torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=g),
               torch.arange(10), 4),
        Stream("cf", torch.randint(0, 256, (7, 3, 4, 4), dtype=torch.uint8, generator=g),
               torch.arange(7) % 3, 3),
    ], seed=5)


def test_any_step_order_gives_the_same_batches():
    # the cached epoch order must never leak into another epoch or another stream
    forward, jumping = _streams(), _streams()
    steps = list(range(12))
    want = {s: forward.batch(s) for s in steps}
    for s in [11, 0, 7, 3, 3, 10, 1, 6, 2, 9, 4, 8, 5]:
        got = jumping.batch(s)
        for key in want[s]:
            assert torch.equal(got[key], want[s][key]), (s, key)


def test_each_epoch_sees_every_image_once():
    streams = _streams()
    real = streams.streams[0]
    seen = torch.cat([streams._indices(0, real, step) for step in range(5)])  # 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    assert seen[:10].tolist() != seen[10:].tolist()  # a new order per epoch
