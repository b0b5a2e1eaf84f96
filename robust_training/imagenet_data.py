"""ImageNet-sized streams for the training engine: images decoded from disk, batch by step.

The MNIST pipelines hold their images in memory (:mod:`robust_training.streams`); ImageNet
does not fit. A :class:`FolderStream` is one source on disk, named by a *spec*
(:func:`real_source`, :meth:`FolderStream.from_spec`):

* ``imagefolder:DIR`` -- a class-per-folder tree (ImageNet's train and val layout,
  :func:`causalkit.datasets.image_folder.list_image_folder`), labels by sorted folder
  name, which for ImageNet's WordNet ids is the usual 0..999 class order;
* ``webdataset:PATTERN`` -- WebDataset tar shards (``key.jpg`` + ``key.cls``,
  :mod:`robust_training.tar_shards`; :func:`robust_training.tar_shards.write_shards`
  converts an ImageFolder), read by random access;
* ``generated:DIR`` -- a folder with a ``labels.csv`` (``file,label,...``), as
  :func:`generators.writer.write_generated` and the transfer stage write it
  (:meth:`FolderStream.generated`); a counterfactual ImageNet set has its own reader
  (:meth:`FolderStream.counterfactual`).

:class:`EvenBatches` serves several sources to :func:`robust_training.engine.fit` with
the engine's ``batch(step, *, rank, world, device)`` protocol:

* **Even batches.** Every step takes ``batch_size`` rows of *each* source (the CGN
  paper's rule: as many counterfactual as real images per step); a batch carries the
  keys of :mod:`robust_training.objectives` (``x`` in ``[-1, 1]``, ``y`` with the shape,
  texture and background label, ``real``, ``stream``, ``env``). A real image's three
  labels are its class.
* **Pure function of the step.** Source ``i`` walks its own seeded epoch permutations
  (``SeedSequence([seed, i, epoch])``), so epoch ``e`` of a run starts at step
  ``e * len(source) // batch_size`` and is the same after a resume. Each row's
  augmentation is seeded by ``(seed, i, step, row)``: torchvision's ImageNet training
  transform, a random resized crop (scale ``(0.08, 1)``, ratio ``(3/4, 4/3)``) and a
  horizontal flip, with an optional colour jitter (:mod:`robust_training.augment`). A
  resumed run therefore sees the batches the uninterrupted one would have seen, and DDP
  rank ``r`` of ``w`` takes the rows ``r::w`` of each source's global batch, so the global
  batch is the same for any number of processes.
* **Decoded in workers.** With ``num_workers > 0`` the batches of consecutive steps are
  decoded ahead in DataLoader worker processes; a request for another step than the
  next (a resume) restarts the workers at that step.
* **Augmented on the device.** With ``augment="gpu"`` the workers only decode and crop,
  and send uint8 crops with each row's drawn flip and jitter factors; the flip, the
  jitter and the conversion to ``[-1, 1]`` run batched on the training device
  (:func:`robust_training.augment.apply_batch`). The batches are those of
  ``augment="cpu"``: nothing random is drawn on the device.
* **Corrupt images.** An unreadable image raises :class:`~causalkit.errors.DataError`
  naming it (the reader of :mod:`causalkit.datasets.image_folder`). With
  ``on_corrupt="skip"`` (the CLI's ``--skip-corrupt``) the row takes the next readable
  image of the source's list instead, with a warning: still a pure function of the
  step, identical on every rank.

Evaluation (:func:`val_batches`, :meth:`FolderStream.eval_batches`) resizes to 256 and
centre-crops 224 (:func:`causalkit.datasets.image_folder.resize_center_crop`), in order.

Examples
--------
>>> source = real_source("imagefolder:imagenet/train", batch_size=256,  # doctest: +SKIP
...                      steps=450_000, num_workers=8, augment="gpu")
>>> batch = source.batch(0, rank=0, world=8, device="cuda")         # doctest: +SKIP
>>> for x, y in val_batches("imagefolder:imagenet/val", 250):        # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from causalkit.errors import CausalKitError, DataError
from robust_training.augment import JITTER_BACKENDS, apply_batch, check_jitter, draw_row_params
from robust_training.augment import jitter_backend as resolve_backend
from robust_training.streams import STREAM_IDS

__all__ = ["SPEC_FORMS", "FolderStream", "EvenBatches", "random_resized_crop", "decode",
           "parse_spec", "real_source", "val_batches"]

SPEC_FORMS = ("imagefolder:DIR", "webdataset:PATTERN", "generated:DIR")
"""The data specs :func:`real_source`, :func:`val_batches` and the CLI read."""

AUGMENTS = ("cpu", "gpu")


def parse_spec(spec: str) -> tuple[str, str]:
    """``(form, target)`` of a data spec such as ``imagefolder:/data/imagenet/train``."""
    form, sep, target = str(spec).partition(":")
    forms = [f.split(":")[0] for f in SPEC_FORMS]
    if not sep or form not in forms or not target:
        raise CausalKitError(f"cannot read the data spec {spec!r}; write it as one of "
                             f"{', '.join(SPEC_FORMS)}")
    return form, target


def _tar_member(path: str) -> tuple[str, str] | None:
    head, sep, member = path.partition(".tar/")
    return (head + ".tar", member) if sep else None


def decode(path: str | os.PathLike) -> np.ndarray:
    """uint8 ``(H, W, 3)`` RGB of an image file, or of ``archive.tar/member``."""
    where = _tar_member(str(path))
    if where is None:
        from causalkit.datasets.image_folder import read_image

        return read_image(path)
    from robust_training.tar_shards import read_member

    archive, member = where
    data = read_member(archive, member)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode {member} from {archive} ({exc}); recreate that "
                        "shard (of a generated set: delete it and its .shards record, then "
                        "rerun generate), or skip unreadable images: --skip-corrupt, "
                        "on_corrupt='skip'") from None


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


def _remap(labels: np.ndarray, classes: Sequence[int | str] | None, what: str
           ) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is in ``classes`` and their labels as positions in it."""
    if classes is None:
        return np.arange(len(labels)), labels
    try:
        wanted = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise CausalKitError(f"{what}: classes must be integer class ids, got "
                             f"{list(classes)[:5]}") from None
    if len(set(wanted)) != len(wanted):
        raise CausalKitError(f"{what}: the class list names a class twice; pass each once")
    position = {c: i for i, c in enumerate(wanted)}
    keep = np.array([i for i, y in enumerate(labels.tolist()) if y in position], np.int64)
    if len(keep) == 0:
        raise DataError(f"{what} holds no image of the classes {wanted[:5]}; check the "
                        "class ids")
    return keep, np.array([position[int(y)] for y in labels[keep]], np.int64)


@dataclass
class FolderStream:
    """One source of images on disk with three labels per image.

    Attributes
    ----------
    kind
        A key of :data:`robust_training.streams.STREAM_IDS` (``"real"``, ``"int"``,
        ``"transfer"``, ``"cf"`` ...).
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
    def from_spec(cls, spec: str, batch_size: int, *, kind: str = "real",
                  classes: Sequence[Any] | None = None) -> FolderStream:
        """The source a spec names (:data:`SPEC_FORMS`); ``classes`` are folder names for
        an ImageFolder, integer class ids otherwise (labels become positions in it)."""
        form, target = parse_spec(spec)
        target = os.path.expanduser(target)
        if form == "imagefolder":
            return cls.real(target, batch_size, classes=classes, kind=kind)
        if form == "webdataset":
            return cls.webdataset(target, batch_size, kind=kind, classes=classes)
        return cls.generated(target, batch_size, kind=kind, classes=classes)

    @classmethod
    def real(cls, root: str | os.PathLike, batch_size: int, *,
             classes: Sequence[str] | None = None, kind: str = "real") -> FolderStream:
        """A real ImageFolder (``root/<class>/<image>``), labels by folder order."""
        from causalkit.datasets.image_folder import list_image_folder

        listing = list_image_folder(root, classes=classes)
        return cls(kind, np.array([str(p) for p in listing.paths]),
                   np.asarray(listing.labels), batch_size)

    @classmethod
    def webdataset(cls, pattern: str | os.PathLike, batch_size: int, *, kind: str = "real",
                   classes: Sequence[int] | None = None) -> FolderStream:
        """WebDataset tar shards (``key.jpg|png|...`` + ``key.cls``), samples in shard and
        member order (:func:`robust_training.tar_shards.list_samples`)."""
        from robust_training.tar_shards import list_samples

        samples = list_samples(pattern)
        keep, labels = _remap(samples.labels, classes, f"the shards {pattern}")
        return cls(kind, samples.files[keep], labels, batch_size)

    @classmethod
    def generated(cls, root: str | os.PathLike, batch_size: int, *, kind: str = "int",
                  classes: Sequence[int] | None = None) -> FolderStream:
        """A folder with a ``labels.csv`` (columns ``file,label,...``: what
        :func:`generators.writer.write_generated` and the transfer stage write), read by
        exactly its ``file`` names, relative to ``root``."""
        from causalkit.io import read_labels_csv

        root = Path(root)
        table = root / "labels.csv"
        if not root.is_dir() or not table.is_file():
            raise DataError(f"{root} has no labels.csv; point to a folder that the generate "
                            "or transfer stage finished (rerun it to finish the set)")
        rows = read_labels_csv(table)
        if not rows:
            raise DataError(f"{table} lists no images; rerun the stage that wrote it")
        files = np.array([str(root / f) for f, _ in rows])
        missing = [f for f in files[:: max(1, len(files) // 64)] if not _exists(f)]
        if missing:
            raise DataError(f"{table} names {missing[0]}, which is missing; rerun the stage "
                            "that wrote the folder to finish it")
        keep, labels = _remap(np.array([y for _, y in rows], np.int64), classes, str(root))
        return cls(kind, files[keep], labels, batch_size)

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


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise CausalKitError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


_WARNED: set[str] = set()  # unreadable files this process has warned about


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
    augment
        ``"cpu"``: the workers return finished float batches; ``"gpu"``: they return uint8
        crops and the flip, jitter and normalisation run batched on the device of
        :meth:`batch` (the same batches, see :mod:`robust_training.augment`).
    jitter
        Colour-jitter strength (brightness, contrast, saturation; one number for all
        three), 0 for none (torchvision's reference ImageNet recipe).
    on_corrupt
        ``"raise"`` (an unreadable image stops the run, naming the file) or ``"skip"``
        (the row takes the next readable image of its source, with a warning).
    jitter_backend
        ``"auto"`` (kornia, else torchvision), ``"kornia"`` or ``"torchvision"``.
    """

    def __init__(self, streams: Sequence[FolderStream], *, steps: int, size: int = 224,
                 seed: int = 0, num_workers: int = 0, prefetch: int = 2,
                 augment: str = "cpu", jitter: float | Sequence[float] = 0.0,
                 on_corrupt: str = "raise", jitter_backend: str = "auto") -> None:
        if not streams:
            raise CausalKitError("EvenBatches needs at least one stream")
        kinds = [s.kind for s in streams]
        if len(set(kinds)) != len(kinds):
            raise CausalKitError(f"stream kinds must be distinct, got {kinds}")
        self.steps = _check_int(steps, "steps", 1)
        self.size = _check_int(size, "size", 1)
        self.seed = _check_int(seed, "seed", 0)
        self.num_workers = _check_int(num_workers, "num_workers", 0)
        self.prefetch = _check_int(prefetch, "prefetch", 1)
        if augment not in AUGMENTS:
            raise CausalKitError(f"unknown augment {augment!r}; use 'cpu' (in the loader "
                                 "workers) or 'gpu' (batched on the training device)")
        if on_corrupt not in ("raise", "skip"):
            raise CausalKitError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}")
        self.augment, self.on_corrupt = augment, on_corrupt
        self.jitter = check_jitter(jitter)
        if jitter_backend not in JITTER_BACKENDS:
            raise CausalKitError(f"unknown jitter backend {jitter_backend!r}; use one of "
                                 f"{JITTER_BACKENDS}")
        self.jitter_backend = resolve_backend(jitter_backend) if any(self.jitter) \
            else jitter_backend
        self.streams = list(streams)
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

    def _read(self, s: FolderStream, k: int) -> tuple[np.ndarray, int]:
        """Image ``k`` of ``s`` (or, skipping unreadable ones, the next readable one)."""
        tries = 1 if self.on_corrupt == "raise" else min(len(s), 16)
        for t in range(tries):
            j = (k + t) % len(s)
            try:
                return decode(s.files[j]), j
            except DataError as exc:
                if self.on_corrupt == "raise":
                    raise
                if s.files[j] not in _WARNED:
                    _WARNED.add(s.files[j])
                    warnings.warn(f"skipping an unreadable image: {exc}", stacklevel=2)
        raise DataError(f"{tries} images in a row from {s.files[k]} are unreadable; check "
                        "the dataset (a failed copy or an unmounted disk?)")

    def decoded(self, step: int, *, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
        """The rank's batch of ``step`` on the CPU (what the workers compute); with
        ``augment="gpu"``, uint8 crops and the rows' ``_flip`` and ``_jitter``."""
        crops, ys, kinds, flips, factors = [], [], [], [], []
        for i, s in enumerate(self.streams):
            rows = np.arange(s.batch_size)[rank::world]
            idx = self.indices(i, step)[rows]
            used = []
            for r, k in zip(rows, idx, strict=True):
                rng = np.random.default_rng(np.random.SeedSequence([self.seed, i, step, r]))
                image, k = self._read(s, int(k))
                crops.append(random_resized_crop(image, self.size, rng, flip=False))
                flipped, jit = draw_row_params(rng, self.jitter)
                flips.append(flipped)
                factors.append(jit)
                used.append(k)
            ys.append(torch.from_numpy(s.labels[np.asarray(used, np.int64)].reshape(-1, 3)))
            kinds.append(torch.full((len(used),), STREAM_IDS[s.kind], dtype=torch.long))
        if self.augment == "cpu":  # flipping while stacking costs nothing
            crops = [c[:, ::-1] if f else c for c, f in zip(crops, flips, strict=True)]
        x = (torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2) if crops
             else torch.zeros((0, 3, self.size, self.size), dtype=torch.uint8))
        flip = torch.tensor(flips, dtype=torch.bool)
        jit = torch.from_numpy(np.stack(factors)) if any(self.jitter) and crops else None
        stream = torch.cat(kinds)
        out = {"y": torch.cat(ys), "stream": stream, "real": stream == STREAM_IDS["real"],
               "env": stream.clone()}
        if self.augment == "cpu":
            out["x"] = apply_batch(x, None, jit, backend=self.jitter_backend)
        else:
            out.update(x=x, _flip=flip, **({"_jitter": jit} if jit is not None else {}))
        return out

    def _loader(self, step: int, rank: int, world: int, pin: bool
                ) -> Iterator[dict[str, torch.Tensor]]:
        if self.num_workers == 0:
            return (self.decoded(s, rank=rank, world=world) for s in range(step, self.steps))
        loader = torch.utils.data.DataLoader(
            _StepBatches(self, step, rank, world), batch_size=None, shuffle=False,
            num_workers=self.num_workers, prefetch_factor=self.prefetch,
            persistent_workers=False, pin_memory=pin)
        return iter(loader)

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The rank's batch of ``step`` on ``device`` (keys x, y, real, stream, env)."""
        if not 0 <= step < self.steps:
            raise CausalKitError(f"step {step} is outside the run's {self.steps} steps")
        if not 0 <= rank < world:
            raise CausalKitError(f"rank {rank} is outside a world of {world} processes")
        device = torch.device(device)
        if self._it is None or self._next != (step, rank, world):
            self._it = self._loader(step, rank, world, pin=device.type == "cuda")
        batch = next(self._it)
        self._next = (step + 1, rank, world)
        flip, jit = batch.pop("_flip", None), batch.pop("_jitter", None)
        out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if flip is not None:
            out["x"] = apply_batch(out["x"], flip.to(device, non_blocking=True),
                                   None if jit is None else jit.to(device, non_blocking=True),
                                   backend=self.jitter_backend)
        return out

    def __getstate__(self) -> dict[str, Any]:  # workers get the sources, not the iterator
        state = dict(self.__dict__)
        state["_it"], state["_next"] = None, None
        return state


def real_source(spec: str, *, batch_size: int, steps: int, size: int = 224, seed: int = 0,
                num_workers: int = 0, augment: str = "cpu", classes: Sequence[Any] | None = None,
                jitter: float | Sequence[float] = 0.0, on_corrupt: str = "raise",
                prefetch: int = 2) -> EvenBatches:
    """The real training images of a spec as a batch source (one ``"real"`` stream).

    Parameters
    ----------
    spec
        ``imagefolder:DIR``, ``webdataset:PATTERN`` or ``generated:DIR``
        (:data:`SPEC_FORMS`).
    batch_size
        Rows per step (the global batch; DDP ranks split it).
    steps
        Steps of the run.
    size
        Side of the training crops (224 for ImageNet).
    seed
        Seeds the epoch orders and every row's augmentation.
    num_workers
        DataLoader processes decoding ahead.
    augment
        ``"cpu"`` or ``"gpu"`` (flip, jitter, normalisation batched on the device).
    classes
        Folder names (ImageFolder) or class ids (shards, generated) to keep, in label
        order; ``None`` keeps every class.
    jitter, on_corrupt, prefetch
        As for :class:`EvenBatches`.
    """
    _check_int(batch_size, "batch_size", 1)
    _check_int(steps, "steps", 1)
    if augment not in AUGMENTS:  # checked before the (possibly long) listing
        raise CausalKitError(f"unknown augment {augment!r}; use 'cpu' or 'gpu'")
    stream = FolderStream.from_spec(spec, batch_size, classes=classes)
    return EvenBatches([stream], steps=steps, size=size, seed=seed, num_workers=num_workers,
                       prefetch=prefetch, augment=augment, jitter=jitter,
                       on_corrupt=on_corrupt)


class _EvalItems(torch.utils.data.Dataset):
    """Item ``j``: the evaluation view of file ``j`` and its label (``None`` if skipped)."""

    def __init__(self, files: np.ndarray, labels: np.ndarray, resize: int | None, crop: int,
                 on_corrupt: str) -> None:
        self.files, self.labels = files, labels
        self.resize, self.crop, self.on_corrupt = resize, crop, on_corrupt

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, j: int) -> tuple[torch.Tensor, int] | None:
        from causalkit.datasets.image_folder import resize_center_crop

        try:
            image = decode(self.files[j])
        except DataError as exc:
            if self.on_corrupt == "raise":
                raise
            warnings.warn(f"skipping an unreadable image: {exc}", stacklevel=2)
            return None
        view = resize_center_crop(image, resize=self.resize, crop=self.crop)
        return torch.from_numpy(view).permute(2, 0, 1), int(self.labels[j])


def val_batches(spec: str, batch_size: int, *, resize: int | None = 256, crop: int = 224,
                classes: Sequence[Any] | None = None, num_workers: int = 0, rank: int = 0,
                world: int = 1, on_corrupt: str = "raise"
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x in [0, 1] (B, 3, crop, crop), labels int64 (B,))`` over a spec's images, in
    order, in ImageNet's evaluation view (short side to ``resize``, centre ``crop``).

    DDP rank ``r`` of ``w`` gets the images ``r::w``; ``on_corrupt="skip"`` drops
    unreadable images with a warning. The spec is read (and checked) at the call, the
    images as the iterator is consumed.
    """
    from causalkit.datasets.image_folder import skip_none_collate

    _check_int(batch_size, "batch_size", 1)
    _check_int(crop, "crop", 1)
    if resize is not None:
        _check_int(resize, "resize", 1)
    _check_int(num_workers, "num_workers", 0)
    _check_int(world, "world", 1)
    if not 0 <= rank < world:
        raise CausalKitError(f"rank {rank} is outside a world of {world} processes")
    if on_corrupt not in ("raise", "skip"):
        raise CausalKitError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}")
    stream = FolderStream.from_spec(spec, 1, classes=classes)
    items = _EvalItems(stream.files[rank::world], stream.labels[rank::world, 0], resize,
                       crop, on_corrupt)
    loader = torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False,
                                         num_workers=num_workers,
                                         collate_fn=skip_none_collate)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch, _skipped in loader:
            if batch is not None:
                x, y = batch
                yield x.float().div(255), y.long()

    return batches()
