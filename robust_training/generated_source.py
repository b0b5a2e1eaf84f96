"""GenInt's interventional stream made on the fly, on the training device, batch by step.

Pre-generating GenInt's five million images (:mod:`generators.pregenerate`) costs disk
and days; a GPU can instead make each step's interventional images while the classifier
trains. :class:`OnTheFlySource` is that stream as a batch source of
:func:`robust_training.engine.fit`: ``batch(step, *, rank, world, device)`` returns the
flat batch of :mod:`robust_training.objectives` (``x`` in ``[-1, 1]``, ``y`` with the
label three times, ``stream``, ``real``, ``env``).

**Each row from its own key.** Row ``j`` of step ``t``'s global batch takes its label
(uniform over ``classes``) and its latent -- noise, components, offsets
(:func:`generators.strategies.sample_rows`) -- from the key ``row_keys(seed, t, j)``
alone (:mod:`generators.keyed`).
DDP rank ``r`` of ``w`` makes only the rows ``r::w``, so the global batch is the same for
any number of processes, and a resumed run sees the batches the uninterrupted one saw.
(A generator whose kernels give a row other bits in a batch of another size -- some GPU
convolution algorithms do -- can change the last bits of an image, never its seed.)

**bf16.** With ``precision="bf16"`` the generator runs under bfloat16 autocast
(:mod:`causalkit.precision`); images come back in float32, clamped to ``[-1, 1]`` and
resized (bilinear, antialiased) to ``size``.

**Overlap on CUDA.** After handing out step ``t``'s batch, the source launches step
``t + 1``'s generation on a side CUDA stream and records an event after it. The
classifier's step ``t`` runs on the default stream meanwhile; only when step ``t + 1``'s
batch is handed out does the default stream wait for that event (a wait on the GPU, not
on the CPU), and the tensors are marked as used by it so that the caching allocator
keeps them until it is done. A request for another step than the prefetched one (a
resume, other ranks) drops the prefetch and generates synchronously. On the CPU every
batch is generated synchronously when it is asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from causalkit.errors import CausalKitError
from causalkit.precision import autocast, check_precision
from generators.base import ConditionalGenerator, as_label_list
from generators.keyed import row_keys, uniforms
from generators.strategies import InterventionSampler, LatentBatch, sample_rows
from robust_training.streams import STREAM_IDS

__all__ = ["OnTheFlySource", "row_labels"]


#: Where in a row's key stream its class is drawn (far past the latent's draws).
_LABEL_DRAW = 1 << 32


def row_labels(keys: np.ndarray, num_classes: int) -> np.ndarray:
    """Each row's class index, uniform over ``num_classes``, from its own key."""
    u = uniforms(keys, 1, offset=_LABEL_DRAW)[:, 0]
    return np.minimum((u * num_classes).astype(np.int64), num_classes - 1)


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise CausalKitError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class OnTheFlySource:
    """A batch source generating ``batch_size`` interventional images per step.

    Parameters
    ----------
    generator
        The class-conditional generator; it is moved to the device ``batch`` is asked
        for.
    sampler
        Strategy and directions for ``generator``
        (:func:`generators.sampling.make_sampler`), e.g. ``"genint:t=1,k=60"``.
    kind
        The stream id the rows carry (:data:`robust_training.streams.STREAM_IDS`):
        ``"int"`` for interventions, ``"obs"`` for plain GAN samples.
    batch_size
        Rows per step of the global batch (all ranks together).
    seed
        Seeds every row (module docstring).
    size
        Side of the images handed out (default: the generator's).
    precision
        ``"bf16"`` (bfloat16 autocast of the generator) or ``"fp32"``.
    classes
        Class ids the labels are drawn from, uniformly (default: all).
    overlap
        On CUDA, generate the next step's batch on a side stream (module docstring).
    steps
        The run's number of steps, if known: no batch is prefetched past it.
    """

    def __init__(self, generator: ConditionalGenerator, sampler: InterventionSampler, *,
                 kind: str = "int", batch_size: int, seed: int = 0, size: int | None = None,
                 precision: str = "bf16", classes: Any = None, overlap: bool = True,
                 steps: int | None = None) -> None:
        if kind not in STREAM_IDS:
            raise CausalKitError(f"unknown stream kind {kind!r}; use one of "
                                 f"{sorted(STREAM_IDS)}")
        if sampler.generator is not generator:
            raise CausalKitError("the sampler was made for another generator; build it "
                                 "with make_sampler(generator, ...)")
        self.generator = generator
        self.sampler = sampler
        self.kind = kind
        self.batch_size = _int("batch_size", batch_size, 1)
        self.seed = _int("seed", seed, 0)
        self.size = generator.image_size if size is None else _int("size", size, 8)
        self.precision = check_precision(precision)
        self.classes = np.asarray(as_label_list(classes, generator.num_classes),
                                  dtype=np.int64)
        self.overlap = bool(overlap)
        self.steps = None if steps is None else _int("steps", steps, 1)
        self._pending: tuple[tuple[Any, ...], dict[str, torch.Tensor], Any] | None = None
        self._side: dict[torch.device, Any] = {}

    # -- what a step holds (pure functions of the step) ------------------------------------
    def rows(self, *, rank: int = 0, world: int = 1) -> np.ndarray:
        """Global row indices this rank makes: ``r::w`` of ``range(batch_size)``."""
        if world < 1 or not 0 <= rank < world:
            raise CausalKitError(f"rank {rank} of world {world} is impossible; pass 0 <= "
                                 "rank < world")
        return np.arange(self.batch_size)[rank::world]

    def latents(self, step: int, *, rank: int = 0, world: int = 1
                ) -> tuple[torch.Tensor, LatentBatch]:
        """Class ids ``(n,)`` and latents of this rank's rows of ``step`` (on the CPU)."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise CausalKitError(f"step must be a non-negative integer, got {step!r}")
        keys = row_keys(self.seed, int(step), self.rows(rank=rank, world=world))
        batch = sample_rows(self.sampler.strategy, keys, self.generator.z_dim,
                            directions=self.sampler.directions)
        picks = row_labels(keys, len(self.classes))
        return torch.from_numpy(self.classes[picks]), batch

    # -- making images -------------------------------------------------------------------
    def _make(self, step: int, rank: int, world: int, device: torch.device
              ) -> dict[str, torch.Tensor]:
        labels, lat = self.latents(step, rank=rank, world=world)
        n = int(labels.shape[0])
        if n == 0:
            x = torch.zeros(0, 3, self.size, self.size, device=device)
        else:
            z = lat.z_star
            if device.type == "cuda":
                z = z.pin_memory().to(device, non_blocking=True)
            with torch.no_grad(), autocast(device, self.precision):
                x = self.generator(z, labels, lat.truncation)
            x = x.float().clamp_(-1.0, 1.0)
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                  align_corners=False, antialias=True)
        stream = torch.full((n,), STREAM_IDS[self.kind], dtype=torch.long)
        batch = {"x": x, "y": labels[:, None].repeat(1, 3), "stream": stream,
                 "real": torch.zeros(n, dtype=torch.bool), "env": stream.clone()}
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def _side_stream(self, device: torch.device) -> Any:
        side = self._side.get(device)
        if side is None:
            side = self._side[device] = torch.cuda.Stream(device=device)
            # the generator's weights were moved on the default stream
            side.wait_stream(torch.cuda.current_stream(device))
        return side

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """This rank's rows of ``step`` on ``device`` (keys x, y, stream, real, env)."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if self.steps is not None and not 0 <= step < self.steps:
            raise CausalKitError(f"step {step} is outside the run's {self.steps} steps")
        if self.generator.device != device:
            self.generator.to(device)
            self._pending = None
            self._side.pop(device, None)  # a new side stream waits for the move
        key = (int(step), rank, world, device)
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == key:
            _, out, ready = pending
            current = torch.cuda.current_stream(device)
            current.wait_event(ready)
            for tensor in out.values():
                tensor.record_stream(current)
        else:
            out = self._make(int(step), rank, world, device)
        nxt = int(step) + 1
        if (self.overlap and device.type == "cuda"
                and (self.steps is None or nxt < self.steps)):
            side = self._side_stream(device)
            with torch.cuda.stream(side):
                ahead = self._make(nxt, rank, world, device)
                ready = torch.cuda.Event()
                ready.record(side)
            self._pending = ((nxt, rank, world, device), ahead, ready)
        return out

    def __repr__(self) -> str:
        return (f"OnTheFlySource({self.generator.name!r}, {self.sampler.strategy}, "
                f"kind={self.kind!r}, batch_size={self.batch_size}, size={self.size}, "
                f"precision={self.precision!r})")
