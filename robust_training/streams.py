"""Data streams that one optimiser step sees together.

GenInt trains on several sources at once -- real images, interventional samples from a
generator, style-transferred images, CGN counterfactuals -- each with its own batch
size. A :class:`Stream` is one source (uint8 images and labels); :class:`MultiStream`
draws, for every optimisation step, one batch from each stream and concatenates them
into the flat batch format of :mod:`robust_training.objectives` with one more key:

``stream``  int (N,): which stream each row came from (see :data:`STREAM_IDS`),

so an objective can take a mean over each stream's own rows.

Batches are a pure function of ``(seed, step)``: every stream walks its own seeded
epoch permutations, so a resumed run sees exactly the batches it would have seen, and
DDP ranks can take disjoint slices of the same global batch (:meth:`MultiStream.batch`
with ``rank`` / ``world``).

The CGN pipeline instead pools all its sources into one set: a :class:`TrainData`
(uint8 images with three labels each, a real/generated flag and an environment index)
served by a :class:`PooledStream`, one seeded permutation per epoch, optionally with
:func:`random_translate` augmentation. Both :class:`MultiStream` and
:class:`PooledStream` are batch sources of :func:`robust_training.engine.fit`.

A *batch source* is anything with ``batch(step, *, rank, world, device)`` returning that
flat batch as a pure function of ``step``. :class:`Concat` joins several of them into
one -- at ImageNet scale, real images decoded from disk
(:class:`~robust_training.imagenet_data.EvenBatches`), interventions generated on the
training device (:class:`~robust_training.generated_source.OnTheFlySource`) and
transferred images from disk -- so that one step sees every source's batch, each source
keeping its own seeds and per-stream batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError
from generators.images import to_float

__all__ = ["STREAM_IDS", "Stream", "MultiStream", "TrainData", "PooledStream", "Concat",
           "random_translate", "check_shift"]

#: The keys of a batch, in the order :class:`Concat` checks them.
BATCH_KEYS = ("x", "y", "stream", "real", "env")

#: Stream kinds and their ids in a batch's ``stream`` column.
STREAM_IDS = {"real": 0, "int": 1, "transfer": 2, "cf": 3, "obs": 4}


@dataclass
class Stream:
    """One data source.

    Attributes
    ----------
    kind
        A key of :data:`STREAM_IDS` (``real``, ``int``, ``transfer``, ``cf``, ``obs``).
    images
        uint8 ``(N, 3, H, W)``.
    labels
        int ``(N,)`` (one label) or ``(N, 3)`` (shape, texture, background: CGN
        counterfactuals); one label is repeated three times.
    batch_size
        Rows this stream contributes to every step (the global batch, before DDP).
    env
        Environment index for IRM (default: the stream id).
    """

    kind: str
    images: torch.Tensor
    labels: torch.Tensor
    batch_size: int
    env: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in STREAM_IDS:
            raise CausalKitError(f"unknown stream kind {self.kind!r}; use one of "
                                 f"{sorted(STREAM_IDS)}")
        self.images = torch.as_tensor(np.asarray(self.images))
        labels = torch.as_tensor(np.asarray(self.labels)).long()
        if labels.dim() == 1:
            labels = labels[:, None].repeat(1, 3)
        self.labels = labels
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise CausalKitError(f"stream {self.kind!r}: images must be uint8 (N, C, H, W), "
                                 f"got {self.images.dtype} {tuple(self.images.shape)}")
        if n == 0 or labels.shape != (n, 3):
            raise CausalKitError(f"stream {self.kind!r}: {n} images need {n} labels (N,) or "
                                 f"(N, 3), got {tuple(labels.shape)}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise CausalKitError(f"stream {self.kind!r}: batch_size must be a positive int, "
                                 f"got {self.batch_size!r}")
        if self.env is None:
            self.env = STREAM_IDS[self.kind]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _perm(n: int, seed: int, stream: int, epoch: int) -> torch.Tensor:
    ss = np.random.SeedSequence([int(seed), int(stream), int(epoch)])
    g = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
    return torch.randperm(n, generator=g)


class MultiStream:
    """Several :class:`Stream` s, one batch of each per optimisation step.

    Parameters
    ----------
    streams
        The sources; kinds must be distinct.
    seed
        Seeds every stream's order.
    """

    def __init__(self, streams: list[Stream], seed: int = 0) -> None:
        if not streams:
            raise CausalKitError("a MultiStream needs at least one stream")
        kinds = [s.kind for s in streams]
        if len(set(kinds)) != len(kinds):
            raise CausalKitError(f"stream kinds must be distinct, got {kinds}")
        self.streams = list(streams)
        self.seed = int(seed)
        # the last epoch's order per stream: redrawing a 100k-image pool's permutation
        # at every step was more than half of batch()'s time (0.89 -> 0.40 ms, CPU)
        self._orders: dict[int, tuple[int, torch.Tensor]] = {}

    @property
    def batch_size(self) -> int:
        """Rows per step, all streams together."""
        return sum(s.batch_size for s in self.streams)

    def steps_per_epoch(self) -> int:
        """Steps for the *first* stream (the real data, by convention) to be seen once."""
        s = self.streams[0]
        return max(1, len(s) // s.batch_size)

    def _order(self, i: int, n: int, epoch: int) -> torch.Tensor:
        cached = self._orders.get(i)
        if cached is None or cached[0] != epoch:
            cached = self._orders[i] = (epoch, _perm(n, self.seed, i, epoch))
        return cached[1]

    def _indices(self, i: int, s: Stream, step: int) -> torch.Tensor:
        n, bs = len(s), s.batch_size
        start = step * bs
        out, pos = [], start
        while pos < start + bs:  # may span an epoch boundary (or several for tiny pools)
            epoch, off = divmod(pos, n)
            take = min(n - off, start + bs - pos)
            out.append(self._order(i, n, epoch)[off:off + take])
            pos += take
        return torch.cat(out)

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The (rank's slice of the) batch of ``step``: keys x, y, real, env, stream."""
        xs, ys, streams, envs = [], [], [], []
        for i, s in enumerate(self.streams):
            idx = self._indices(i, s, step)[rank::world]
            xs.append(s.images[idx])
            ys.append(s.labels[idx])
            streams.append(torch.full((len(idx),), STREAM_IDS[s.kind], dtype=torch.long))
            envs.append(torch.full((len(idx),), int(s.env), dtype=torch.long))
        stream = torch.cat(streams)
        batch = {"x": to_float(torch.cat(xs)), "y": torch.cat(ys), "stream": stream,
                 "real": stream == STREAM_IDS["real"], "env": torch.cat(envs)}
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# -- one pooled set (the CGN pipeline) ---------------------------------------------------
@dataclass
class TrainData:
    """Training images (uint8 N x 3 x H x W) with labels (N, 3), ``real`` and ``env``."""

    images: torch.Tensor
    labels: torch.Tensor
    real: torch.Tensor
    env: torch.Tensor

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise CausalKitError(f"images must be uint8 (N, C, H, W), got "
                                 f"{self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (n, 3) or len(self.real) != n or len(self.env) != n:
            raise CausalKitError(f"{n} images need labels (N, 3), real (N,) and env (N,); got "
                                 f"{tuple(self.labels.shape)}, {len(self.real)}, {len(self.env)}")

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def real_images(cls, images, labels, env: int = 0) -> TrainData:
        """Real images: all three labels are the digit label."""
        x = torch.as_tensor(np.asarray(images))
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        return cls(x, y[:, None].repeat(1, 3), torch.ones(len(y), dtype=torch.bool),
                   torch.full((len(y),), env, dtype=torch.long))

    @classmethod
    def generated(cls, images, shape, texture, background, env: int = 0) -> TrainData:
        """Generated images with their three mechanism labels."""
        y = torch.as_tensor(np.stack([shape, texture, background], 1), dtype=torch.long)
        return cls(torch.as_tensor(np.asarray(images)), y,
                   torch.zeros(len(y), dtype=torch.bool),
                   torch.full((len(y),), env, dtype=torch.long))

    @staticmethod
    def concat(*parts: TrainData) -> TrainData:
        """All parts in one set."""
        return TrainData(*(torch.cat([getattr(p, f) for p in parts])
                           for f in ("images", "labels", "real", "env")))


def check_shift(shift: int) -> None:
    """Raise :class:`CausalKitError` for a negative translation ``shift``."""
    if shift < 0:
        raise CausalKitError(f"shift must be >= 0 pixels, got {shift}")


def _translation_offsets(n: int, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    # the one draw of random_translate; PooledStream replays it to skip steps
    return torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)


def random_translate(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x`` by up to ``max_shift`` pixels in each direction, filling
    with the image's own border (replicate padding), so no new edge appears."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = torch.nn.functional.pad(x, [max_shift] * 4, mode="replicate")
    dy, dx = _translation_offsets(n, max_shift, gen).tolist()
    return torch.stack([pad[i, :, a:a + h, b:b + w]
                        for i, (a, b) in enumerate(zip(dy, dx, strict=True))])


class PooledStream:
    """A :class:`TrainData` as one stream of batches for :func:`robust_training.engine.fit`.

    Each epoch is a fresh permutation (the last partial batch is dropped), drawn from one
    generator seeded with ``seed``; the random translations come from a second one
    (``seed + 1``), so the batch order does not depend on ``shift``. Both streams are
    replayed on demand, which makes :meth:`batch` a pure function of ``step``: a resumed
    run sees the batches of an uninterrupted one, and DDP ranks slice the same global
    batch. Each row keeps its own ``real`` flag and ``env``; its ``stream`` id is
    ``real`` for real images and ``cf`` for generated ones.
    """

    def __init__(self, data: TrainData, batch_size: int, seed: int = 0, shift: int = 0) -> None:
        check_shift(shift)
        self.data, self.batch_size, self.seed, self.shift = data, batch_size, seed, shift
        self.per_epoch = max(1, len(data) // batch_size)
        self._perm_gen, self._epoch, self._perm = None, -1, None
        self._aug_gen, self._aug_step = None, 0

    def steps_per_epoch(self) -> int:
        """Steps per pass over the data."""
        return self.per_epoch

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm_gen is None or epoch < self._epoch:
            self._perm_gen = torch.Generator().manual_seed(self.seed)
            self._epoch = -1
        while self._epoch < epoch:
            self._perm = torch.randperm(len(self.data), generator=self._perm_gen)
            self._epoch += 1
        return self._perm

    def _translate(self, x: torch.Tensor, step: int) -> torch.Tensor:
        if self.shift <= 0:
            return x
        if self._aug_gen is None or step < self._aug_step:
            self._aug_gen, self._aug_step = torch.Generator().manual_seed(self.seed + 1), 0
        while self._aug_step < step:  # the draws of the steps skipped (a resume)
            _translation_offsets(len(x), self.shift, self._aug_gen)
            self._aug_step += 1
        self._aug_step += 1
        return random_translate(x, self.shift, self._aug_gen)

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The (rank's slice of the) batch of ``step``: keys x, y, real, env, stream."""
        epoch, pos = divmod(step, self.per_epoch)
        idx = self._permutation(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]
        d = self.data
        x = self._translate(to_float(d.images[idx]), step)
        real = d.real[idx]
        batch = {"x": x, "y": d.labels[idx], "real": real, "env": d.env[idx],
                 "stream": torch.where(real, STREAM_IDS["real"], STREAM_IDS["cf"]).long()}
        return {k: v[rank::world].to(device) for k, v in batch.items()}


# -- several batch sources in one step ---------------------------------------------------
class Concat:
    """Several batch sources as one: every step's batch is theirs, concatenated.

    Each source serves its own rows of the step (for DDP rank ``r`` of ``w``: its rows
    ``r::w``), so the concatenation is, per rank, that rank's slice of every source's
    global batch, and the global batch does not depend on ``w``. The sources' images
    must have one size; the objectives tell the rows apart by their ``stream`` ids.

    Parameters
    ----------
    sources
        Batch sources (``batch(step, *, rank, world, device)``), e.g. a real
        ``EvenBatches``, an ``OnTheFlySource`` and a transfer ``EvenBatches``.

    Examples
    --------
    >>> import torch
    >>> a = MultiStream([Stream("real", torch.zeros(8, 3, 4, 4, dtype=torch.uint8),
    ...                         torch.arange(8) % 2, 4)])
    >>> b = MultiStream([Stream("int", torch.zeros(6, 3, 4, 4, dtype=torch.uint8),
    ...                         torch.arange(6) % 2, 2)])
    >>> both = Concat([a, b])
    >>> both.batch(0)["stream"].tolist(), both.batch_size, both.steps_per_epoch()
    ([0, 0, 0, 0, 1, 1], 6, 2)
    """

    def __init__(self, sources: list[Any]) -> None:
        sources = list(sources)
        if not sources:
            raise CausalKitError("Concat needs at least one batch source")
        for s in sources:
            if not callable(getattr(s, "batch", None)):
                raise CausalKitError(f"{type(s).__name__} is not a batch source (it has no "
                                     "batch(step, *, rank, world, device) method)")
        self.sources = sources

    @property
    def batch_size(self) -> int | None:
        """Rows per step, all sources together (None when a source does not say)."""
        sizes = [getattr(s, "batch_size", None) for s in self.sources]
        return sum(sizes) if all(isinstance(b, int) for b in sizes) else None

    def steps_per_epoch(self) -> int | None:
        """The first source's steps per epoch that has one (the real data, by
        convention first), else None."""
        for s in self.sources:
            if callable(getattr(s, "steps_per_epoch", None)):
                return s.steps_per_epoch()
        return None

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The rank's rows of every source's batch of ``step``, concatenated (keys x, y,
        stream, real, env), on ``device``."""
        parts = [s.batch(step, rank=rank, world=world, device=device) for s in self.sources]
        for p, s in zip(parts, self.sources, strict=True):
            missing = [k for k in BATCH_KEYS if k not in p]
            if missing:
                raise CausalKitError(f"{type(s).__name__}'s batch lacks {missing}; a batch "
                                     f"source returns the keys {list(BATCH_KEYS)}")
        sizes = {tuple(p["x"].shape[1:]) for p in parts}
        if len(sizes) > 1:
            raise CausalKitError(f"the batch sources of a Concat give images of different "
                                 f"sizes {sorted(sizes)}; give every source the same size")
        return {k: torch.cat([p[k].to(device) for p in parts]) for k in BATCH_KEYS}
