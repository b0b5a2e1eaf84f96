"""The transfer stage: real images restyled by interventional ones, written to disk.

GenInt's third stream ``X_tr = T(I, X_int)`` puts the nuisances of an interventional
image onto a real one and keeps the real image's label (the official
``IntervenedGAN/style_transfer_int2imgnet.py``). :func:`write_transfer` makes that
stream for a whole real dataset with :func:`robust_training.transfer.statistics_transfer`
(L-BFGS matching of VGG19 Gram statistics, or its random-feature fallback), batched on
the device, split into shards that several processes or array jobs share.

Layout of ``out/``::

    transfer.json               the settings; a rerun must match them
    <label>/<index>.png         ImageFolder layout by the real image's class (zero-padded)
    .shards/shard-NNNNNN.json   one record per finished shard
    labels.csv                  file, label, content, style, style_label, steps
    manifest.json               counts, the settings, the SHA-256 of every shard record
    preview.png                 the first rows: real images, styles, their transfers

``labels.csv`` and ``manifest.json`` appear when the last shard is done (whichever
worker finishes it, or :func:`assemble_transfer`); ``file`` is the exact name of each
PNG, relative to ``out``, so :meth:`robust_training.imagenet_data.FolderStream.generated`
reads the folder by those names. ``content`` names the real image (relative to its
ImageFolder root, or as the tar listing names it) and ``style`` the interventional one
(relative to ``int_root``); ``steps`` is the number of L-BFGS evaluations its batch got.

Pairing, by seed
----------------
Row ``i`` of ``n`` takes real image ``perm_e[i mod N]`` of the ``N`` real images, where
``perm_e`` is epoch ``e = i // N``'s permutation, drawn from ``seed`` alone: with
``n = N`` (the default) every real image is restyled once, as in the official run.
(That run walks each class folder in ``os.listdir`` order, eight images at a time, and
drops each class's last incomplete batch; a seeded permutation keeps every image and
does not depend on the file system's order, and its batches mix classes, which changes
nothing but the batch mates of the shared L-BFGS problem.)
Rows are cut into shards of ``shard_size`` and each shard into batches of
``batch_size``; batch by batch, shard ``s``'s generator (from
:func:`generators.writer.shard_seed` ``(seed, s)``) draws ``batch_size`` distinct
interventional classes (the official ``random.sample`` over class folders; with
replacement only when the batch has more rows than there are classes), one image of
each, and the batch's number of steps, uniform in ``steps`` (official: 20..70). A shard
is therefore the same whichever worker makes it and whenever, and its batches are
fixed, which matters because a batch is one L-BFGS problem.

Workers and resumption
----------------------
Worker ``w`` of ``W`` makes shards ``w, w + W, ...``; by default ``RANK`` /
``WORLD_SIZE`` (torchrun), else ``SLURM_ARRAY_TASK_ID`` (minus
``SLURM_ARRAY_TASK_MIN``) / ``SLURM_ARRAY_TASK_COUNT`` (an array job), else one worker.
Every PNG is written atomically and a shard's record (names, byte sizes and SHA-256 of
its PNGs, the pairs and steps) comes last: a shard counts as done only when its record
exists and its files have the recorded sizes. A run killed at any moment resumes by
running the same call again and ends with the same bytes as an uninterrupted one.

Nothing is written before every input is checked: the counts, the real data spec, the
interventional folder, the features (a VGG19 file is loaded and checked key by key),
the device, the output folder and, in a folder that holds a run already, its
``transfer.json``. The settings compare the real and interventional listings by
content (their names and labels), not by path, so a dataset moved to another disk
still resumes.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write_bytes, atomic_write_text, check_out_dir
from causalkit.resume import check_run_folder
from causalkit.workers import worker_share

__all__ = ["write_transfer", "assemble_transfer", "real_listing",
           "interventional_listing", "Listing", "LABEL_COLUMNS"]

#: the columns of ``labels.csv``
LABEL_COLUMNS = ("file", "label", "content", "style", "style_label", "steps")
#: settings that may differ on a rerun (where the data lie, not what they are)
_FREE = ("real_spec", "int_root", "features_path")


@dataclass(frozen=True)
class Listing:
    """Images of one source: ``paths`` to open, ``names`` to record, int ``labels``."""

    paths: list[str]
    names: list[str]
    labels: np.ndarray
    num_classes: int

    def digest(self) -> str:
        """SHA-256 of the names and labels (the listing's identity, not its location)."""
        h = hashlib.sha256()
        for name, label in zip(self.names, self.labels.tolist(), strict=True):
            h.update(f"{name}\t{label}\n".encode())
        return h.hexdigest()


def real_listing(spec: str, *, classes: Sequence[Any] | None = None) -> Listing:
    """The real images of a data spec (``"imagefolder:DIR"``, ``"webdataset:PATTERN"``,
    :data:`robust_training.imagenet_data.SPEC_FORMS`), read as the training stream reads
    it (:meth:`~robust_training.imagenet_data.FolderStream.from_spec`; ``classes`` as
    there). Names are relative to the folder when the images lie under it."""
    from robust_training.imagenet_data import FolderStream, parse_spec

    form, target = parse_spec(spec)
    stream = FolderStream.from_spec(spec, 1, classes=classes)
    paths = [str(f) for f in stream.files]
    root = Path(os.path.expanduser(target))
    names = paths
    if form != "webdataset":
        names = [Path(f).relative_to(root).as_posix() if Path(f).is_relative_to(root) else f
                 for f in paths]
    labels = np.asarray(stream.labels, dtype=np.int64)[:, 0]
    return Listing(paths, names, labels, int(labels.max()) + 1)


def interventional_listing(int_root: str | os.PathLike) -> Listing:
    """The images of a pre-generated folder (``labels.csv`` with ``file,label,...``)."""
    from causalkit.io import read_labels_csv

    root = Path(int_root).expanduser()
    if not root.is_dir():
        raise DataError(f"interventional folder {root} does not exist; run the generate "
                        "stage first and pass its output folder as int_root")
    index = root / "labels.csv"
    if not index.is_file():
        raise DataError(f"{root} has no labels.csv (an unfinished or foreign folder); pass "
                        "a folder the generate stage finished, or rerun it to finish")
    rows = read_labels_csv(index)
    if not rows:
        raise DataError(f"{index} lists no images; regenerate the interventional folder")
    names = [f for f, _ in rows]
    for name in names[:: max(1, len(names) // 64)]:
        if not (root / name).is_file():
            raise DataError(f"{index} names {name}, which is missing; rerun the generate "
                            "stage on that folder to finish it")
    labels = np.array([y for _, y in rows], dtype=np.int64)
    return Listing([str(root / f) for f in names], names, labels, int(labels.max()) + 1)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CausalKitError(f"{name} must be an integer >= 1, got {value!r}; pass a "
                             "positive count")
    return value


def _steps_range(steps: int | Sequence[int]) -> tuple[int, int]:
    pair = (steps, steps) if isinstance(steps, int) and not isinstance(steps, bool) \
        else tuple(steps) if isinstance(steps, (list, tuple)) else None
    if pair is None or len(pair) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in pair) \
            or not 1 <= pair[0] <= pair[1]:
        raise CausalKitError(f"steps must be an integer >= 1 or a range (lo, hi) with "
                             f"1 <= lo <= hi, got {steps!r}; the official range is (20, 70)")
    return int(pair[0]), int(pair[1])


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, count: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, epoch))
                                 ).permutation(count)


def _content_rows(seed: int, n: int, count: int, rows: np.ndarray) -> np.ndarray:
    """Real-image index of each global row in ``rows`` (epoch permutations of ``seed``)."""
    out = np.empty(len(rows), dtype=np.int64)
    epochs = rows // count
    for e in np.unique(epochs):
        perm = _permutation(seed, int(e), count)
        sel = epochs == e
        out[sel] = perm[rows[sel] % count]
    return out


@dataclass(frozen=True)
class _Batch:
    shard: int
    rows: np.ndarray          # global row indices
    content: np.ndarray       # real-image indices
    style: np.ndarray         # interventional-image indices
    steps: int


def _shard_batches(s: int, *, seed: int, n: int, shard_size: int, batch_size: int,
                   real: Listing, by_class: list[np.ndarray], steps: tuple[int, int]
                   ) -> list[_Batch]:
    from generators.writer import shard_seed

    rows = np.arange(s * shard_size, min((s + 1) * shard_size, n))
    content = _content_rows(seed, n, len(real.labels), rows)
    rng = np.random.default_rng(shard_seed(seed, s))
    out = []
    for b in range(0, len(rows), batch_size):
        m = len(rows[b:b + batch_size])
        classes = rng.choice(len(by_class), size=m, replace=m > len(by_class))
        style = np.array([by_class[c][rng.integers(len(by_class[c]))] for c in classes])
        out.append(_Batch(s, rows[b:b + m], content[b:b + m], style,
                          int(rng.integers(steps[0], steps[1] + 1))))
    return out


def _load(path: str, size: int) -> np.ndarray:
    from causalkit.datasets.image_folder import resize_center_crop
    from robust_training.imagenet_data import decode

    return resize_center_crop(decode(path), resize=size, crop=size)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _record_path(out: Path, s: int) -> Path:
    return out / ".shards" / f"shard-{s:06d}.json"


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "files" in record else None


def _shard_done(out: Path, s: int) -> bool:
    record = _read_record(_record_path(out, s))
    if record is None:
        return False
    return all((out / f).is_file() and (out / f).stat().st_size == size
               for f, size in zip(record["files"], record["sizes"], strict=True))


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    check_run_folder(out, settings, file="transfer.json", what="a transfer run", free=_FREE)


def write_transfer(real_spec: str, int_root: str | os.PathLike, out: str | os.PathLike, *,
                   n: int | None = None, features: str = "random", batch_size: int = 8,
                   seed: int = 0, device: torch.device | str | None = None,
                   worker: int | None = None, workers: int | None = None, size: int = 256,
                   steps: int | Sequence[int] = (20, 70), shard_size: int = 512,
                   content_weight: float | None = None, style_weight: float | None = None,
                   classes: Sequence[Any] | None = None, progress: bool = True,
                   stop_after: int | None = None, io_threads: int = 4) -> dict[str, Any]:
    """Write this worker's shards of the transfer stream into ``out`` (resumable).

    Parameters
    ----------
    real_spec
        ``"imagefolder:DIR"`` or ``"webdataset:PATTERN"``: the real images and labels.
    int_root
        A pre-generated interventional folder (``labels.csv`` + images), the styles.
    out
        Output folder (created); the same call resumes a killed run.
    n
        Transferred images in all (default: each real image once, as officially).
    features
        ``"vgg19:PATH"`` (GenInt's) or ``"random[:SEED]"``
        (:func:`robust_training.transfer.transfer_features`).
    batch_size
        Images optimised together (official: 8); part of the settings, because a batch
        is one L-BFGS problem.
    seed
        Pairs and steps come from ``seed`` (see the module docstring).
    device
        Where the transfer runs (default: ``cuda:$LOCAL_RANK`` under torchrun, else CUDA
        when available, else the CPU).
    worker, workers
        This process's share (see :func:`causalkit.workers.worker_share`); the bytes
        do not depend on it.
    size
        Images are resized (short side) and centre-cropped to ``size`` (official: 256).
    steps
        L-BFGS evaluations per batch: an integer, or a range drawn per batch.
    shard_size
        Images per shard: the unit of resumption and of the work division.
    content_weight, style_weight
        Default: the official 0.1 and 1e6.
    classes
        Real classes to keep (folder names of an ImageFolder, class ids otherwise), in
        label order, as the training stream takes them; default all.
    progress
        A tqdm bar on stderr.
    stop_after
        Stop after this many shards were written by this call (time slices, tests).
    io_threads
        Threads decoding the next batch and encoding PNGs while the transfer runs.

    Returns
    -------
    dict
        Counts and images/s of this call, ``complete`` (every shard of every worker is
        done, ``labels.csv`` and ``manifest.json`` written) and paths.
    """
    from causalkit.devices import resolve_device
    from causalkit.progress import progress as progress_bar
    from generators.images import to_float, to_uint8
    from robust_training.transfer import (
        CONTENT_WEIGHT,
        STYLE_WEIGHT,
        statistics_transfer,
        transfer_features,
    )

    batch_size = _positive("batch_size", batch_size)
    shard_size = _positive("shard_size", shard_size)
    size = _positive("size", size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CausalKitError(f"seed must be an integer >= 0, got {seed!r}")
    if n is not None:
        n = _positive("n", n)
    if isinstance(io_threads, bool) or not isinstance(io_threads, int) or io_threads < 0:
        raise CausalKitError(f"io_threads must be an integer >= 0, got {io_threads!r}")
    lo_hi = _steps_range(steps)
    weights = {"content_weight": CONTENT_WEIGHT if content_weight is None
               else float(content_weight),
               "style_weight": STYLE_WEIGHT if style_weight is None else float(style_weight)}
    worker, workers = worker_share(worker, workers)
    real = real_listing(real_spec, classes=classes)
    styles = interventional_listing(int_root)
    net = transfer_features(features)
    if device is None and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # torchrun: one GPU per process
    dev = resolve_device(device)
    out = check_out_dir(out)
    total = len(real.labels) if n is None else n
    settings = {
        "stage": "transfer", "method": "statistics_transfer (L-BFGS, Gram matching)",
        "n": total, "batch_size": batch_size, "shard_size": shard_size, "size": size,
        "seed": seed, "steps": list(lo_hi), **weights,
        "features": net.spec if net.digest is None else "vgg19",
        "features_sha256": net.digest,
        "content_layers": list(net.content_layers), "style_layers": list(net.style_layers),
        "real": {"images": len(real.labels), "classes": real.num_classes,
                 "sha256": real.digest()},
        "classes": None if classes is None else [str(c) for c in classes],
        "interventional": {"images": len(styles.labels), "sha256": styles.digest()},
        "real_spec": real_spec, "int_root": str(int_root),
        "features_path": None if net.digest is None else features.partition(":")[2],
    }
    _check_settings(out, settings)
    if not (out / "transfer.json").exists():
        atomic_write_text(out / "transfer.json", json.dumps(settings, indent=2) + "\n")

    by_class = [np.flatnonzero(styles.labels == c) for c in np.unique(styles.labels)]
    n_shards = -(-total // shard_size)
    mine = list(range(worker, n_shards, workers))
    done = {s for s in mine if _shard_done(out, s)}
    todo = [s for s in mine if s not in done]
    skipped = len(done)
    if stop_after is not None:
        todo = todo[:max(0, int(stop_after))]
    width = len(str(max(real.num_classes - 1, 0)))
    index_width = max(7, len(str(total - 1)))
    plan = dict(seed=seed, n=total, shard_size=shard_size, batch_size=batch_size,
                real=real, by_class=by_class, steps=lo_hi)
    batches = [b for s in todo for b in _shard_batches(s, **plan)]
    # Temporary files a killed run left behind, of this worker's unfinished shards only
    # (another worker may be writing its own right now).
    targets = {_record_path(out, s).relative_to(out).as_posix() for s in todo} | {
        _file_name(real, b, j, width, index_width) for b in batches for j in range(len(b.rows))}
    for stale in out.rglob(".*.tmp"):
        target = (stale.parent / stale.name[1:].rsplit(".", 2)[0]).relative_to(out)
        if target.as_posix() in targets:
            stale.unlink(missing_ok=True)
    pool = ThreadPoolExecutor(io_threads) if io_threads > 0 else None

    def fetch(batch: _Batch) -> Future | tuple[np.ndarray, np.ndarray]:
        def load() -> tuple[np.ndarray, np.ndarray]:
            return (np.stack([_load(real.paths[i], size) for i in batch.content]),
                    np.stack([_load(styles.paths[i], size) for i in batch.style]))
        return pool.submit(load) if pool else load()

    def arrays(items: list[_Batch]) -> Iterator[tuple[_Batch, tuple[np.ndarray, np.ndarray]]]:
        ahead = fetch(items[0]) if items else None
        for k, batch in enumerate(items):
            current = ahead
            ahead = fetch(items[k + 1]) if k + 1 < len(items) else None
            yield batch, current.result() if isinstance(current, Future) else current

    done_rows = sum(min(shard_size, total - s * shard_size) for s in done)
    generated, written, start = 0, 0, time.perf_counter()
    parts: list[Any] = []
    bar = progress_bar(total=sum(min(shard_size, total - s * shard_size) for s in mine),
                       initial=done_rows, unit="img", desc=f"transfer {worker}/{workers}",
                       enabled=progress)
    cudnn = torch.backends.cudnn
    saved_cudnn = cudnn.deterministic, cudnn.benchmark
    if dev.type == "cuda":  # identical bytes whichever worker makes a shard, and on resume
        cudnn.deterministic, cudnn.benchmark = True, False
    try:
        with bar:
            for k, (batch, (c_arr, s_arr)) in enumerate(arrays(batches)):
                content = to_float(torch.from_numpy(c_arr).permute(0, 3, 1, 2))
                style = to_float(torch.from_numpy(s_arr).permute(0, 3, 1, 2))
                result = statistics_transfer(content.to(dev), style.to(dev), net,
                                             steps=batch.steps, device=dev, **weights)
                for j, array in enumerate(to_uint8(result).permute(0, 2, 3, 1).numpy()):
                    array = np.ascontiguousarray(array)
                    parts.append((batch, j, pool.submit(_png, array) if pool else _png(array)))
                bar.update(len(batch.rows))
                if k + 1 == len(batches) or batches[k + 1].shard != batch.shard:
                    _finish_shard(out, batch.shard, parts, real, styles, width, index_width)
                    generated += len(parts)
                    written += 1
                    parts = []
    finally:
        cudnn.deterministic, cudnn.benchmark = saved_cudnn
        if pool is not None:
            pool.shutdown()
    elapsed = time.perf_counter() - start
    summary = assemble_transfer(out) if all(_shard_done(out, s) for s in range(n_shards)) \
        else None
    if summary is not None:
        _preview(out, (b for s in range(n_shards) for b in _shard_batches(s, **plan)), real,
                 styles, size, width, index_width)
    return dict(out=str(out), images=total, shards=n_shards, worker=worker, workers=workers,
                shards_of_worker=len(mine), written_shards=written,
                skipped_shards=skipped,
                generated_images=generated, seconds=round(elapsed, 3),
                images_per_s=round(generated / elapsed, 3) if generated else None,
                device=str(dev), features=net.spec, complete=summary is not None,
                labels_csv=str(out / "labels.csv") if summary else None,
                manifest=str(out / "manifest.json") if summary else None)


def _preview(out: Path, batches: Iterator[_Batch], real: Listing, styles: Listing,
             size: int, width: int, index_width: int, columns: int = 8) -> None:
    """``preview.png``: the first ``columns`` rows as real / style / transferred."""
    from generators.images import make_grid

    rows: list[list[np.ndarray]] = [[], [], []]
    for batch in batches:
        if len(rows[0]) == columns:
            break
        for j in range(min(len(batch.rows), columns - len(rows[0]))):
            rows[0].append(_load(real.paths[batch.content[j]], size))
            rows[1].append(_load(styles.paths[batch.style[j]], size))
            rows[2].append(_load(str(out / _file_name(real, batch, j, width, index_width)),
                                 size))
    grid = torch.from_numpy(np.stack([np.stack(r) for r in rows])).permute(0, 1, 4, 2, 3)
    atomic_write_bytes(out / "preview.png", _png(make_grid(grid)))


def _file_name(real: Listing, batch: _Batch, j: int, width: int, index_width: int) -> str:
    """``<label>/<row>.png``: the real image's class folder, the global row number."""
    label = int(real.labels[batch.content[j]])
    return f"{label:0{width}d}/{int(batch.rows[j]):0{index_width}d}.png"


def _finish_shard(out: Path, s: int, parts: list[Any], real: Listing, styles: Listing,
                  width: int, index_width: int) -> None:
    """Write a shard's PNGs (atomically), then its record."""
    record: dict[str, list[Any]] = {key: [] for key in
                                    ("files", "sizes", "sha256", *LABEL_COLUMNS[1:])}
    for batch, j, png in parts:
        data = png.result() if isinstance(png, Future) else png
        label = int(real.labels[batch.content[j]])
        name = _file_name(real, batch, j, width, index_width)
        atomic_write_bytes(out / name, data)
        record["files"].append(name)
        record["sizes"].append(len(data))
        record["sha256"].append(hashlib.sha256(data).hexdigest())
        record["label"].append(label)
        record["content"].append(real.names[batch.content[j]])
        record["style"].append(styles.names[batch.style[j]])
        record["style_label"].append(int(styles.labels[batch.style[j]]))
        record["steps"].append(batch.steps)
    atomic_write_text(_record_path(out, s), json.dumps(record, indent=1) + "\n")


def assemble_transfer(out: str | os.PathLike) -> dict[str, Any]:
    """Write ``labels.csv`` and ``manifest.json`` of a transfer folder whose shards are
    all done; returns the manifest. Any worker may call it, again and again: the files
    it writes depend on the shards only."""
    out = Path(out)
    path = out / "transfer.json"
    if not path.is_file():
        raise DataError(f"{out} holds no transfer run (no transfer.json); pass the folder "
                        "that write_transfer wrote")
    from causalkit.io import read_json

    settings = read_json(path, what="transfer settings", keys=("n", "shard_size"))
    n_shards = -(-int(settings["n"]) // int(settings["shard_size"]))
    missing = [s for s in range(n_shards) if not _shard_done(out, s)]
    if missing:
        raise CausalKitError(f"{out}: {len(missing)} of {n_shards} shards are not done (first:"
                             f" {missing[0]}); run write_transfer on it (every worker) first")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    shard_digests, counts = {}, {}
    for s in range(n_shards):
        rp = _record_path(out, s)
        shard_digests[rp.name] = hashlib.sha256(rp.read_bytes()).hexdigest()
        record = _read_record(rp)
        for row in zip(*(record[c] for c in ("files", *LABEL_COLUMNS[1:])), strict=True):
            writer.writerow(row)
            counts[row[1]] = counts.get(row[1], 0) + 1
    atomic_write_text(out / "labels.csv", buf.getvalue())
    manifest = {"kind": "transfer", "images": int(settings["n"]), "shards": n_shards,
                "columns": list(LABEL_COLUMNS),
                "per_label": {str(k): counts[k] for k in sorted(counts)},
                "settings": {k: v for k, v in settings.items() if k not in _FREE},
                "shard_sha256": shard_digests}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
