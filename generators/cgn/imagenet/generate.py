"""Counterfactual ImageNet: a CGN's images written to disk, sharded and resumable.

A counterfactual image is the CGN's composite ``x = m * f + (1 - m) * b`` for three
class labels -- one for the shape mechanism, one for the texture, one for the
background -- and a noise draw ``u``. Sauer & Geiger train their invariant classifier
on such images, each with its three labels (the official ``generate_data.py``).

Which classes (``mode``):

* ``random``: each mechanism's class uniform over the classes (the paper's data);
* ``best-classes``: each from the official lists of classes whose masks, textures or
  backgrounds look best (:data:`BEST_CLASSES`);
* ``fixed``: the three given classes for every image.

Which noise (``noise``):

* ``shared``: one ``u`` feeds all three mechanisms (the official code);
* ``separate``: each mechanism draws its own ``u`` (the paper's description).

Interpolation (``interpolate`` = ``shape``, ``texture``, ``background`` or ``all``): each
base sample becomes a sheet of ``midpoints + 2`` images whose class vector of that
mechanism (or of all three) moves linearly from its class to a target class
(``interp_class``; drawn when ``None``), the noise held fixed -- the official
``interp_sheet``. It needs a CGN that takes class *vectors* (``y`` as float ``(B,
num_classes)``), as BigGAN does.

Layout of ``out/``::

    generation.json              the settings; a rerun must match them
    <shape class>/<index>.png    ImageFolder layout by the shape label (zero-padded)
    labels.csv                   file, shape, texture, background, seed_shape,
                                 seed_texture, seed_background, target, alpha
    .shards/shard-NNNNNN.npz     one record per finished shard

``file`` in ``labels.csv`` is the exact path (relative to ``out``) of the image that was
written: the classifier's reader (:mod:`robust_training.imagenet_data`) opens these
names and nothing else. With ``tar=True`` the images of shard ``s`` go into one
WebDataset-style archive ``shards/shard-NNNNNN.tar`` instead (members
``<index>.png`` and ``<index>.json`` with its labels and seeds), and ``file`` reads
``shards/shard-NNNNNN.tar/<index>.png``.

Randomness. Base sample ``k`` draws its classes from ``default_rng(SeedSequence([seed,
k]))`` and its noise from ``torch.Generator().manual_seed(seed_m)`` with ``seed_m =
shard_seed(shard_seed(seed, k), j)`` for mechanism ``j`` (all three ``j = 0`` under
shared noise): ``truncated_normal(1, dim_z, truncation, generator=...)`` with a
recorded seed gives that image's ``u`` back. Every image is therefore a pure function of
``(seed, k)``, and a shard of ``shard_size`` images is the same whichever process makes
it and whenever.

Shards and ranks. Rank ``r`` of ``world`` processes makes shards ``r, r + world, ...``
(``RANK`` / ``WORLD_SIZE`` from torchrun or an array job's index by default). Each shard
is written image by image, atomically, and its record (the files and their sizes) comes
last; a shard counts as done only when its record exists and the files have the
recorded sizes, so a run killed at any moment resumes by running the same command, with
byte-identical results. The process that finds every shard done writes ``labels.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write, atomic_write_bytes, atomic_write_text, check_out_dir
from causalkit.resume import check_run_folder
from causalkit.workers import worker_share
from generators.base import check_truncation, truncated_normal
from generators.images import to_uint8
from generators.writer import _png_bytes, _shard_done, shard_seed

__all__ = ["GenerationSettings", "write_counterfactual_imagenet", "read_labels",
           "noise_from_seed", "MODES", "NOISE", "INTERPOLATE", "BEST_CLASSES",
           "LABEL_COLUMNS", "plain_forward_rate"]

MODES = ("random", "best-classes", "fixed")
NOISE = ("shared", "separate")
INTERPOLATE = ("shape", "texture", "background", "all")
MECHANISMS = ("shape", "texture", "background")
#: the columns of ``labels.csv``, in order
LABEL_COLUMNS = ("file", "shape", "texture", "background", "seed_shape", "seed_texture",
                 "seed_background", "target", "alpha")

#: The official ``generate_data.py``'s lists of ImageNet classes with good masks, textures
#: and backgrounds (its ``MASKS``, ``FOREGROUND``, ``BACKGROUNDS``), for ``best-classes``.
BEST_CLASSES: dict[str, tuple[int, ...]] = {
    "shape": (9, 18, 22, 35, 56, 63, 96, 97, 119, 207, 225, 260, 275, 323, 330, 350, 370,
              403, 411, 414, 427, 438, 439, 441, 460, 484, 493, 518, 532, 540, 550, 559,
              561, 570, 604, 647, 688, 713, 724, 749, 751, 756, 759, 779, 780, 802, 814,
              833, 841, 849, 850, 859, 869, 872, 873, 874, 876, 880, 881, 883, 894, 897,
              898, 900, 907, 930, 933, 945, 947, 949, 950, 953, 963, 966, 967, 980),
    "texture": (12, 15, 18, 25, 54, 66, 72, 130, 145, 207, 251, 267, 271, 275, 293, 323,
                385, 388, 407, 409, 427, 438, 439, 441, 454, 461, 468, 482, 483, 486, 490,
                492, 509, 530, 555, 607, 608, 629, 649, 652, 681, 688, 719, 720, 728, 737,
                741, 751, 756, 779, 800, 810, 850, 852, 854, 869, 881, 907, 911, 930, 936,
                937, 938, 941, 949, 950, 951, 954, 957, 959, 963, 966, 985, 987, 992),
    "background": (7, 9, 20, 30, 35, 46, 50, 65, 72, 93, 96, 97, 119, 133, 147, 337, 350,
                   353, 354, 383, 429, 460, 693, 801, 888, 947, 949, 952, 953, 955, 958,
                   970, 972, 973, 974, 977, 979, 998),
}


@dataclass(frozen=True)
class GenerationSettings:
    """What a counterfactual ImageNet run makes (recorded in ``generation.json``).

    Attributes
    ----------
    n
        Base samples (images; sheets under ``interpolate``).
    mode, classes
        How the three classes are chosen (module docstring); ``classes`` is
        ``(shape, texture, background)`` for ``fixed``.
    noise
        ``shared`` or ``separate``.
    truncation
        BigGAN truncation of the noise (1.0: none, the official setting).
    seed
        Run seed.
    shard_size
        Images per shard: the unit of resumption and of a rank's work.
    interpolate, interp_class, midpoints
        Interpolation sheets (``None``: single images).
    tar
        Write WebDataset tar shards instead of an ImageFolder.
    """

    n: int = 1000
    mode: str = "random"
    classes: tuple[int, int, int] | None = None
    noise: str = "shared"
    truncation: float = 1.0
    seed: int = 0
    shard_size: int = 1000
    interpolate: str | None = None
    interp_class: int | None = None
    midpoints: int = 6
    tar: bool = False

    def validate(self, num_classes: int) -> None:
        """Raise :class:`CausalKitError` naming a bad setting and the fix."""
        for name in ("n", "shard_size", "midpoints"):
            value = getattr(self, name)
            low = 0 if name == "midpoints" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CausalKitError(f"generation {name} must be an integer >= {low}, got "
                                     f"{value!r}")
        if self.mode not in MODES:
            raise CausalKitError(f"unknown generation mode {self.mode!r}; choose one of "
                                 f"{list(MODES)}")
        if self.noise not in NOISE:
            raise CausalKitError(f"unknown noise option {self.noise!r}; choose one of "
                                 f"{list(NOISE)}")
        check_truncation(self.truncation)
        if self.mode == "fixed":
            if self.classes is None or len(self.classes) != 3:
                raise CausalKitError("mode 'fixed' needs classes: three class ids (shape, "
                                     f"texture, background), got {self.classes!r}")
            _check_classes(self.classes, num_classes, "classes")
        elif self.classes is not None:
            raise CausalKitError(f"classes are only used by mode 'fixed', not {self.mode!r};"
                                 " drop them or use mode 'fixed'")
        if self.mode == "best-classes":
            for name, ids in BEST_CLASSES.items():
                _check_classes(ids, num_classes, f"the best {name} classes")
        if self.interpolate is not None and self.interpolate not in INTERPOLATE:
            raise CausalKitError(f"unknown interpolate {self.interpolate!r}; choose one of "
                                 f"{list(INTERPOLATE)} or leave it unset")
        if self.interp_class is not None:
            _check_classes([self.interp_class], num_classes, "interp_class")

    @property
    def per_sample(self) -> int:
        """Images per base sample (a sheet's length under ``interpolate``)."""
        return self.midpoints + 2 if self.interpolate else 1

    @property
    def images(self) -> int:
        """Images the run writes."""
        return self.n * self.per_sample


def _check_classes(ids: Sequence[int], num_classes: int, what: str) -> None:
    bad = [c for c in ids if isinstance(c, bool) or not isinstance(c, (int, np.integer))
           or not 0 <= c < num_classes]
    if bad:
        raise CausalKitError(f"{what} {bad} are not class ids of this CGN (0..{num_classes - 1})"
                             "; pass valid ImageNet class ids")


def noise_from_seed(seed: int, dim_z: int, truncation: float = 1.0) -> torch.Tensor:
    """The ``(1, dim_z)`` noise vector a recorded ``seed_*`` column stands for."""
    return truncated_normal(1, dim_z, truncation,
                            generator=torch.Generator().manual_seed(int(seed)))


@dataclass
class _Sample:
    classes: np.ndarray  # (3,) shape, texture, background
    seeds: np.ndarray  # (3,) noise seed per mechanism
    target: int  # interpolation target class (-1: none)


def _base_sample(settings: GenerationSettings, k: int, num_classes: int) -> _Sample:
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, k]))
    if settings.mode == "random":
        classes = rng.integers(0, num_classes, 3)
    elif settings.mode == "best-classes":
        classes = np.array([rng.choice(BEST_CLASSES[m]) for m in MECHANISMS])
    else:
        classes = np.asarray(settings.classes)
    target = -1
    if settings.interpolate:
        drawn = int(rng.integers(0, num_classes))
        target = drawn if settings.interp_class is None else int(settings.interp_class)
    base = shard_seed(settings.seed, k)
    if settings.noise == "shared":
        seeds = np.full(3, shard_seed(base, 0), dtype=np.int64)
    else:
        seeds = np.array([shard_seed(base, j) for j in range(3)], dtype=np.int64)
    return _Sample(classes.astype(np.int64), seeds, target)


def _interp_inputs(cgn: Any, sample: _Sample, settings: GenerationSettings,
                   positions: np.ndarray) -> dict[str, torch.Tensor]:
    # class vectors (len(positions), num_classes) per mechanism, lerped where asked
    c = cgn.num_classes
    alphas = torch.as_tensor(positions / (settings.per_sample - 1), dtype=torch.float32)
    out = {}
    for j, m in enumerate(MECHANISMS):
        start = torch.nn.functional.one_hot(torch.tensor(int(sample.classes[j])), c).float()
        if settings.interpolate in (m, "all"):
            end = torch.nn.functional.one_hot(torch.tensor(sample.target), c).float()
            out[m] = (1 - alphas)[:, None] * start + alphas[:, None] * end
        else:
            out[m] = start.expand(len(positions), c)
    return out


def _forward(cgn: Any, u: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor],
             truncation: float, device: torch.device) -> torch.Tensor:
    u = {m: v.to(device) for m, v in u.items()}
    y = {m: v.to(device) for m, v in y.items()}
    with torch.no_grad():
        out = cgn(u, y, truncation=truncation)
    image = out.image if hasattr(out, "image") else out
    return image


def _rows(settings: GenerationSettings, num_classes: int, idx: np.ndarray
          ) -> list[tuple[_Sample, int]]:
    cache: dict[int, _Sample] = {}
    rows = []
    for i in idx:
        k, pos = divmod(int(i), settings.per_sample)
        if k not in cache:
            cache[k] = _base_sample(settings, k, num_classes)
        rows.append((cache[k], pos))
    return rows


def _image_record(sample: _Sample, pos: int, settings: GenerationSettings) -> dict[str, Any]:
    alpha = pos / (settings.per_sample - 1) if settings.interpolate else 0.0
    return {"shape": int(sample.classes[0]), "texture": int(sample.classes[1]),
            "background": int(sample.classes[2]),
            "seed_shape": int(sample.seeds[0]), "seed_texture": int(sample.seeds[1]),
            "seed_background": int(sample.seeds[2]), "target": int(sample.target),
            "alpha": round(float(alpha), 6)}


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    check_run_folder(out, manifest, file="generation.json",
                     what="a counterfactual ImageNet run", write=True)


def write_counterfactual_imagenet(cgn: Any, out: str | os.PathLike,
                                  settings: GenerationSettings, *, batch_size: int = 16,
                                  rank: int | None = None, world: int | None = None,
                                  device: torch.device | str | None = None,
                                  progress: bool = True, stop_after: int | None = None,
                                  encode_threads: int = 2) -> dict[str, Any]:
    """Write this rank's shards of a counterfactual ImageNet set into ``out`` (resumable).

    Parameters
    ----------
    cgn
        A CGN with ``dim_z``, ``num_classes`` and ``cgn(u, y, truncation=)`` taking
        mappings ``{"shape", "texture", "background"}`` of noise ``(B, dim_z)`` and of
        class ids ``(B,)`` (or class vectors ``(B, num_classes)`` for interpolation),
        returning an output whose ``image`` is float ``(B, 3, H, W)`` in ``[-1, 1]``
        (:class:`generators.cgn.imagenet.model.CGNImageNet`).
    out
        Output folder (created); the same command resumes a killed run.
    settings
        What to make (:class:`GenerationSettings`).
    batch_size
        Images per forward pass (within a shard).
    rank, world
        This process's share: shards ``rank, rank + world, ...`` (default: ``RANK`` and
        ``WORLD_SIZE`` from the environment, else one process).
    device
        Where the CGN runs (default: where its parameters are).
    progress
        A tqdm bar on stderr.
    stop_after
        Stop after this many shards were written in this call (tests, time slices).
    encode_threads
        Threads encoding PNGs while the CGN computes the next batch (0: inline). The
        bytes do not depend on it.

    Returns
    -------
    dict
        Counts, images/s written by this call, paths; ``complete`` says whether every
        shard of every rank is done (and ``labels.csv`` written).
    """
    from causalkit.progress import progress as progress_bar

    num_classes = int(cgn.num_classes)
    settings.validate(num_classes)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CausalKitError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    rank, world = worker_share(rank, world)
    out = check_out_dir(out)
    if device is None:
        params = list(cgn.parameters()) if hasattr(cgn, "parameters") else []
        device = params[0].device if params else torch.device("cpu")
    device = torch.device(device)
    manifest = {**asdict(settings), "dim_z": int(cgn.dim_z), "num_classes": num_classes,
                "columns": list(LABEL_COLUMNS)}
    _check_manifest(out, manifest)
    total = settings.images
    n_shards = -(-total // settings.shard_size)
    records = [out / ".shards" / f"shard-{s:06d}.npz" for s in range(n_shards)]
    mine = [s for s in range(rank, n_shards, world)]
    _remove_stale_temps(out, set(mine), settings.shard_size, world)
    todo = [s for s in mine if not _shard_done(out, records[s])]
    width = len(str(num_classes - 1))
    index_width = max(7, len(str(total - 1)))
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(encode_threads) if encode_threads > 0 else None
    generated, written, start = 0, 0, time.perf_counter()
    bar = progress_bar(total=sum(_shard_len(s, settings, total) for s in mine),
                       initial=sum(_shard_len(s, settings, total) for s in mine
                                   if s not in todo),
                       unit="img", desc=f"counterfactuals {rank}/{world}", enabled=progress)
    with bar:
        for s in todo:
            if stop_after is not None and written >= stop_after:
                break
            idx = np.arange(s * settings.shard_size, min((s + 1) * settings.shard_size, total))
            rows = _rows(settings, num_classes, idx)
            names = [f"{i:0{index_width}d}.png" for i in idx]
            labels = [_image_record(smp, pos, settings) for smp, pos in rows]
            pngs: list[Any] = []
            for b in range(0, len(idx), batch_size):
                chunk = rows[b:b + batch_size]
                u = {m: torch.cat([noise_from_seed(smp.seeds[j], cgn.dim_z,
                                                   settings.truncation) for smp, _ in chunk])
                     for j, m in enumerate(MECHANISMS)}
                if settings.interpolate:
                    y_parts = [_interp_inputs(cgn, smp, settings, np.array([pos]))
                               for smp, pos in chunk]
                    y = {m: torch.cat([p[m] for p in y_parts]) for m in MECHANISMS}
                else:
                    y = {m: torch.as_tensor([int(smp.classes[j]) for smp, _ in chunk])
                         for j, m in enumerate(MECHANISMS)}
                image = _forward(cgn, u, y, settings.truncation, device)
                for array in to_uint8(image).permute(0, 2, 3, 1).numpy():
                    array = np.ascontiguousarray(array)
                    pngs.append(pool.submit(_png_bytes, array) if pool else _png_bytes(array))
                bar.update(len(chunk))
            pngs = [p.result() if pool else p for p in pngs]
            if settings.tar:
                tar_name = f"shards/shard-{s:06d}.tar"
                members = []
                for name, png, lab in zip(names, pngs, labels, strict=True):
                    members.append((name, png))
                    members.append((name.replace(".png", ".json"),
                                    json.dumps(lab, sort_keys=True).encode()))
                data = _tar_bytes(members)
                atomic_write_bytes(out / tar_name, data)
                files = np.array([f"{tar_name}/{name}" for name in names])
                record = dict(files=np.array([tar_name]), sizes=np.array([len(data)]),
                              images=files)
            else:
                files = np.array([f"{lab['shape']:0{width}d}/{name}"
                                  for name, lab in zip(names, labels, strict=True)])
                sizes = np.array([len(p) for p in pngs], dtype=np.int64)
                for f, png in zip(files, pngs, strict=True):
                    atomic_write_bytes(out / f, png)
                record = dict(files=files, sizes=sizes, images=files)
            table = np.array([[lab[c] for c in LABEL_COLUMNS[1:8]] for lab in labels],
                             dtype=np.int64)
            alphas = np.array([lab["alpha"] for lab in labels], dtype=np.float64)
            record.update(labels=table, alpha=alphas)
            atomic_write(records[s], lambda fh, rec=record: np.savez(fh, **rec))
            generated += len(idx)
            written += 1
    if pool is not None:
        pool.shutdown()
    elapsed = time.perf_counter() - start
    complete = all(_shard_done(out, r) for r in records)
    if complete:
        _write_index(out, records)
    return dict(out=str(out), images=total, shards=n_shards, rank=rank, world=world,
                shards_of_rank=len(mine), written_shards=written,
                generated_images=generated, seconds=round(elapsed, 3),
                images_per_s=round(generated / elapsed, 3) if generated else None,
                complete=complete, labels_csv=str(out / "labels.csv") if complete else None)


def _temp_shard(temp: Path, shard_size: int) -> int | None:
    """The shard whose file the atomic-write temp ``temp`` (``.NAME.XXXX.tmp``) was
    writing: an image ``<index>.png``, a shard record or a tar shard; else ``None``."""
    target = temp.name[1:].rsplit(".", 2)[0]
    stem, _, ext = target.rpartition(".")
    if ext == "png" and stem.isdigit():
        return int(stem) // shard_size
    if stem.startswith("shard-") and stem[6:].isdigit() and ext in ("npz", "tar"):
        return int(stem[6:])
    return None


def _remove_stale_temps(out: Path, mine: set[int], shard_size: int, world: int) -> None:
    """Delete the temps a killed run of *this* rank left behind. Temps of other shards
    may belong to ranks writing at this moment and stay; temps of no shard (the index)
    go only when this process is the only one."""
    for stale in out.rglob(".*.tmp"):
        shard = _temp_shard(stale, shard_size)
        if shard in mine or (shard is None and world == 1):
            stale.unlink(missing_ok=True)


def _shard_len(s: int, settings: GenerationSettings, total: int) -> int:
    return min(settings.shard_size, total - s * settings.shard_size)


def _write_index(out: Path, records: list[Path]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for r in records:
        with np.load(r, allow_pickle=False) as data:
            for f, row, a in zip(data["images"], data["labels"], data["alpha"], strict=True):
                writer.writerow([str(f), *(int(v) for v in row), f"{float(a):.6g}"])
    atomic_write_text(out / "labels.csv", buf.getvalue())


def read_labels(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """``labels.csv`` of a counterfactual ImageNet folder: ``file`` (str) and the int
    columns ``shape``, ``texture``, ``background`` (and the seeds), checked."""
    root = Path(root)
    path = root / "labels.csv"
    if not path.is_file():
        raise CausalKitError(f"{root} has no labels.csv; point to the folder a finished "
                             "`causalkit reproduce cgn-imagenet --stage generate` wrote "
                             "(rerun it to finish the set)")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header[:4]) != LABEL_COLUMNS[:4]:
            raise CausalKitError(f"{path} does not start with the columns "
                                 f"{list(LABEL_COLUMNS[:4])}; it was not written by the "
                                 "counterfactual ImageNet generator")
        rows = list(reader)
    if not rows:
        raise CausalKitError(f"{path} lists no images; generate the set again")
    try:
        files = np.array([r[0] for r in rows])
        ints = np.array([[int(v) for v in r[1:len(header) - 1 if "alpha" in header
                                          else len(header)]] for r in rows], dtype=np.int64)
    except (ValueError, IndexError):
        raise CausalKitError(f"{path} has a malformed row; generate the set again") from None
    cols = [c for c in header[1:] if c != "alpha"]
    return {"file": files, **{c: ints[:, i] for i, c in enumerate(cols)}}


def plain_forward_rate(generator: Any, *, n: int, batch_size: int, dim_z: int,
                       truncation: float = 1.0, seed: int = 0) -> float:
    """Images/s of ``generator(u, y, truncation)`` alone (no disk): the baseline that
    :func:`write_counterfactual_imagenet`'s rate is compared with."""
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    done = 0
    with torch.no_grad():
        while done < n:
            b = min(batch_size, n - done)
            u = truncated_normal(b, dim_z, truncation, generator=g)
            y = torch.randint(0, 2, (b,), generator=g)
            generator(u, y, truncation)
            done += b
    return n / (time.perf_counter() - start)
