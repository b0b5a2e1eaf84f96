"""ImageNet-sized streams for the training engine: images decoded from disk, batch by step.

The MNIST pipelines hold their images in memory (:mod:`robust_training.streams`); ImageNet
does not fit. A :class:`FolderStream` is one source on disk -- a real ImageNet
ImageFolder (:func:`causalkit.datasets.image_folder.list_image_folder`) or a
counterfactual ImageNet set (the ``labels.csv`` that
:mod:`generators.cgn.imagenet.generate` writes, read by exactly its ``file`` names) --
and :class:`EvenBatches` serves several of them to :func:`robust_training.engine.fit`
with the engine's ``batch(step, *, rank, world, device)`` protocol:

* **Even batches.** Every step takes ``batch_size`` rows of *each* source (the CGN
  paper's rule: as many counterfactual as real images per step); a batch carries the
  keys of :mod:`robust_training.objectives` (``x`` in ``[-1, 1]``, ``y`` with the shape,
  texture and background label, ``real``, ``stream``, ``env``). A real image's three
  labels are its class.
* **Pure function of the step.** Source ``i`` walks its own seeded epoch permutations
  (``SeedSequence([seed, i, epoch])``) and each row's augmentation (a random resized
  crop and flip, as torchvision's ImageNet training transform) is seeded by ``(seed, i,
  step, row)``. A resumed run therefore sees the batches the uninterrupted one would
  have seen, and DDP rank ``r`` of ``w`` takes the rows ``r::w`` of each source's
  global batch, so the global batch is the same for any number of processes.
* **Decoded in workers.** With ``num_workers > 0`` the batches of consecutive steps are
  decoded ahead in DataLoader worker processes; a request for another step than the
  next (a resume) restarts the workers at that step.

Evaluation streams (:meth:`FolderStream.eval_batches`) resize to 256 and centre-crop
224 (:func:`causalkit.datasets.image_folder.resize_center_crop`).
"""

from __future__ import annotations

import io
import math
import os
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from causalkit.errors import CausalKitError, DataError
from robust_training.streams import STREAM_IDS

__all__ = ["FolderStream", "EvenBatches", "random_resized_crop", "decode"]


def _tar_member(path: str) -> tuple[str, str] | None:
    head, sep, member = path.partition(".tar/")
    return (head + ".tar", member) if sep else None


_TARS: dict[str, tarfile.TarFile] = {}  # open archives of this process (worker)


def decode(path: str | os.PathLike) -> np.ndarray:
    """uint8 ``(H, W, 3)`` RGB of an image file, or of ``archive.tar/member``."""
    where = _tar_member(str(path))
    if where is None:
        from causalkit.datasets.image_folder import read_image

        return read_image(path)
    archive, member = where
    try:
        tar = _TARS.get(archive)
        if tar is None:
            tar = _TARS[archive] = tarfile.open(archive)
        fh = tar.extractfile(member)
        if fh is None:
            raise KeyError(member)
        with Image.open(io.BytesIO(fh.read())) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise DataError(f"cannot read {member} from {archive} ({exc}); regenerate that "
                        "shard (delete it and its .shards record, then rerun generate)"
                        ) from None


def random_resized_crop(image: np.ndarray, size: int, rng: np.random.Generator, *,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        flip: bool = True) -> np.ndarray:
    """torchvision's ``RandomResizedCrop(size)`` (+ horizontal flip), seeded by ``rng``.

    Ten tries at a crop of ``scale`` of the area and aspect ratio in ``ratio``
    (log-uniform), else the central crop of the clamped ratio; bilinear resize to
    ``size x size``.
    """
    h, w = image.shape[:2]
    area = h * w
    box = None
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            box = (left, top, left + cw, top + ch)
            break
    if box is None:
        r = w / h
        cw, ch = (w, h) if ratio[0] <= r <= ratio[1] else (
            (w, round(w / ratio[0])) if r < ratio[0] else (round(h * ratio[1]), h))
        top, left = (h - ch) // 2, (w - cw) // 2
        box = (left, top, left + cw, top + ch)
    out = Image.fromarray(image).resize((size, size), Image.BILINEAR, box=box)
    array = np.asarray(out)
    if flip and rng.random() < 0.5:
        array = array[:, ::-1]
    return np.ascontiguousarray(array)


@dataclass
class FolderStream:
    """One source of images on disk with three labels per image.

    Attributes
    ----------
    kind
        ``"real"`` or ``"cf"`` (a key of :data:`robust_training.streams.STREAM_IDS`).
    files
        Image paths (``archive.tar/member`` for tar shards).
    labels
        int ``(N, 3)``: shape, texture, background (a real image's class three times).
    batch_size
        Rows of this source in every step's global batch.
    """

    kind: str
    files: np.ndarray
    labels: np.ndarray
    batch_size: int

    def __post_init__(self) -> None:
        if self.kind not in STREAM_IDS:
            raise CausalKitError(f"unknown stream kind {self.kind!r}; use one of "
                                 f"{sorted(STREAM_IDS)}")
        self.files = np.asarray(self.files).astype(str)
        labels = np.asarray(self.labels, dtype=np.int64)
        if labels.ndim == 1:
            labels = np.repeat(labels[:, None], 3, axis=1)
        self.labels = labels
        if len(self.files) == 0 or labels.shape != (len(self.files), 3):
            raise CausalKitError(f"stream {self.kind!r}: {len(self.files)} files need as many "
                                 f"labels (N or N x 3), got {labels.shape}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise CausalKitError(f"stream {self.kind!r}: batch_size must be an integer >= 1,"
                                 f" got {self.batch_size!r}")

    def __len__(self) -> int:
        return len(self.files)

    @classmethod
    def real(cls, root: str | os.PathLike, batch_size: int, *,
             classes: Sequence[str] | None = None) -> FolderStream:
        """A real ImageFolder (``root/<class>/<image>``), labels by folder order."""
        from causalkit.datasets.image_folder import list_image_folder

        listing = list_image_folder(root, classes=classes)
        return cls("real", np.array([str(p) for p in listing.paths]),
                   np.asarray(listing.labels), batch_size)

    @classmethod
    def counterfactual(cls, root: str | os.PathLike, batch_size: int) -> FolderStream:
        """A counterfactual ImageNet set: the files and labels of its ``labels.csv``."""
        from generators.cgn.imagenet.generate import read_labels

        root = Path(root)
        table = read_labels(root)
        files = np.array([str(root / f) for f in table["file"]])
        missing = [f for f in files[:: max(1, len(files) // 64)] if not _exists(f)]
        if missing:
            raise DataError(f"{root}/labels.csv names {missing[0]}, which is missing; "
                            "rerun the generate stage on that folder to finish it")
        labels = np.stack([table["shape"], table["texture"], table["background"]], 1)
        return cls("cf", files, labels, batch_size)

    def eval_batches(self, batch_size: int, *, resize: int = 256, crop: int = 224
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x in [0, 1] (B, 3, crop, crop), labels (B, 3))`` over the whole source,
        in order, resized and centre-cropped."""
        from causalkit.datasets.image_folder import resize_center_crop

        for i in range(0, len(self), batch_size):
            arrays = [resize_center_crop(decode(f), resize=resize, crop=crop)
                      for f in self.files[i:i + batch_size]]
            x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)
            yield x, torch.from_numpy(self.labels[i:i + batch_size])


def _exists(path: str) -> bool:
    where = _tar_member(path)
    return Path(where[0] if where else path).is_file()


def _order(n: int, seed: int, stream: int, epoch: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream, epoch]))
    return rng.permutation(n)


class _StepBatches(torch.utils.data.Dataset):
    """Item ``j``: the decoded rank's batch of step ``start + j`` (for DataLoader workers)."""

    def __init__(self, owner: EvenBatches, start: int, rank: int, world: int) -> None:
        self.owner, self.start, self.rank, self.world = owner, start, rank, world

    def __len__(self) -> int:
        return max(0, self.owner.steps - self.start)

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        return self.owner.decoded(self.start + j, rank=self.rank, world=self.world)


class EvenBatches:
    """Several :class:`FolderStream` s, ``batch_size`` rows of each per step, for
    :func:`robust_training.engine.fit`.

    Parameters
    ----------
    streams
        The sources (kinds distinct), e.g. real ImageNet and a counterfactual set.
    steps
        Steps of the run (how far the workers decode ahead at most).
    size
        Side of the square training crops.
    seed
        Seeds every source's order and every row's augmentation.
    num_workers
        DataLoader worker processes decoding ahead (0: decode in the calling process).
    prefetch
        Batches each worker decodes ahead.
    """

    def __init__(self, streams: Sequence[FolderStream], *, steps: int, size: int = 224,
                 seed: int = 0, num_workers: int = 0, prefetch: int = 2) -> None:
        if not streams:
            raise CausalKitError("EvenBatches needs at least one stream")
        kinds = [s.kind for s in streams]
        if len(set(kinds)) != len(kinds):
            raise CausalKitError(f"stream kinds must be distinct, got {kinds}")
        self.streams, self.steps, self.size, self.seed = list(streams), steps, size, seed
        self.num_workers, self.prefetch = num_workers, prefetch
        self._orders: dict[int, tuple[int, np.ndarray]] = {}
        self._it: Iterator[dict[str, torch.Tensor]] | None = None
        self._next: tuple[int, int, int] | None = None

    @property
    def batch_size(self) -> int:
        """Rows per step, all sources together (before DDP)."""
        return sum(s.batch_size for s in self.streams)

    def steps_per_epoch(self) -> int:
        """Steps for the first source (the real images, by convention) to be seen once."""
        s = self.streams[0]
        return max(1, len(s) // s.batch_size)

    def indices(self, i: int, step: int) -> np.ndarray:
        """Rows of source ``i`` in the global batch of ``step`` (epochs may be crossed)."""
        s = self.streams[i]
        n, bs = len(s), s.batch_size
        start, out, pos = step * bs, [], step * bs
        while pos < start + bs:
            epoch, off = divmod(pos, n)
            take = min(n - off, start + bs - pos)
            cached = self._orders.get(i)
            if cached is None or cached[0] != epoch:  # a 1.28M permutation costs ~20 ms
                cached = self._orders[i] = (epoch, _order(n, self.seed, i, epoch))
            out.append(cached[1][off:off + take])
            pos += take
        return np.concatenate(out)

    def decoded(self, step: int, *, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
        """The rank's batch of ``step`` on the CPU (what the workers compute)."""
        xs, ys, kinds = [], [], []
        for i, s in enumerate(self.streams):
            rows = np.arange(s.batch_size)[rank::world]
            idx = self.indices(i, step)[rows]
            for r, k in zip(rows, idx, strict=True):
                rng = np.random.default_rng(np.random.SeedSequence([self.seed, i, step, r]))
                xs.append(random_resized_crop(decode(s.files[k]), self.size, rng))
            ys.append(torch.from_numpy(s.labels[idx]))
            kinds.append(torch.full((len(idx),), STREAM_IDS[s.kind], dtype=torch.long))
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        stream = torch.cat(kinds)
        return {"x": x, "y": torch.cat(ys), "stream": stream,
                "real": stream == STREAM_IDS["real"], "env": stream.clone()}

    def _loader(self, step: int, rank: int, world: int) -> Iterator[dict[str, torch.Tensor]]:
        if self.num_workers == 0:
            return (self.decoded(s, rank=rank, world=world) for s in range(step, self.steps))
        loader = torch.utils.data.DataLoader(
            _StepBatches(self, step, rank, world), batch_size=None, shuffle=False,
            num_workers=self.num_workers, prefetch_factor=self.prefetch,
            persistent_workers=False)
        return iter(loader)

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The rank's batch of ``step`` on ``device`` (keys x, y, real, stream, env)."""
        if not 0 <= step < self.steps:
            raise CausalKitError(f"step {step} is outside the run's {self.steps} steps")
        if self._it is None or self._next != (step, rank, world):
            self._it = self._loader(step, rank, world)
        batch = next(self._it)
        self._next = (step + 1, rank, world)
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def __getstate__(self) -> dict[str, Any]:  # workers get the sources, not the iterator
        state = dict(self.__dict__)
        state["_it"], state["_next"] = None, None
        return state
