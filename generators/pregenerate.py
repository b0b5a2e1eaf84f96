"""GenInt's interventional data written ahead: seeds x components per class, over workers.

The GenInt paper trains on about five million interventional BigGAN images: for every
ImageNet class, 1,000 noise seeds, and for every seed five images, each moving the
seed's latent along a different GANSpace component (:class:`~generators.strategies.
GenIntStrategy`, :func:`~generators.strategies.sample_seed_edits`). That is days of GPU
time, so the work is cut into shards that any number of processes -- the ranks of a
``torchrun`` job, the tasks of a SLURM array, or one process at a time -- share out, and
that survive being killed.

**Which image is which.** Image ``(class c, seed i, edit e)`` comes from the noise seed
``keyed_seed(seed, c, i)`` (:mod:`generators.keyed`) alone: the seed's latent, its
``edits`` distinct components and their offsets are drawn from it
(:func:`~generators.strategies.sample_seed_edits`). So an image is the same whichever
worker makes it, in whichever shard, and class ``c`` gets the same images whatever other
classes the run holds. (The official script draws its seeds from one global torch
stream, class after class; keyed seeds give the same distribution without an order.)

**Shards and workers.** Rows run class by class, seed by seed, edit by edit, and are cut
into shards of ``shard_size``. Worker ``w`` of ``W`` makes the shards ``w, w + W, ...``;
``worker`` / ``workers`` default to ``RANK`` / ``WORLD_SIZE`` (torchrun), else to
``SLURM_ARRAY_TASK_ID`` (minus ``SLURM_ARRAY_TASK_MIN``) / ``SLURM_ARRAY_TASK_COUNT``,
else to one worker.

**Resumption.** Every PNG is written atomically and a shard's record (its files, their
byte sizes, labels, seeds, components, offsets and the SHA-256 of its PNGs) is written
last. A shard counts as done only when its record exists and its files have the
recorded sizes, so a worker killed at any moment reruns only its unfinished shards, with
the same bytes.

**Assembly.** When a worker finds every shard done it writes ``labels.csv`` and
``manifest.json``; :func:`assemble` does the same on demand (for example from a job that
runs after a SLURM array). Layout of ``out/``::

    generation.json              the settings; every worker's rerun must match them
    directions.npz               the directions moved along, with their key
    <class>/<seed>_<edit>.png    ImageFolder layout (zero-padded class and seed)
    .shards/shard-NNNNNN.npz     one record per finished shard
    labels.csv                   file, label, seed_index, edit, noise_seed, components,
                                 offsets (``;`` between several per image)
    manifest.json                counts, each shard's record and its SHA-256, the
                                 directions key and the generator's weight digest

``labels.csv`` lists exactly the files written, so
:meth:`robust_training.imagenet_data.FolderStream.generated` reads the folder as it is.
Nothing is written before every setting is checked.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write, atomic_write_bytes, atomic_write_text, check_out_dir
from causalkit.precision import autocast, check_precision
from causalkit.resume import check_run_folder
from causalkit.workers import worker_share
from generators.base import ConditionalGenerator, as_label_list
from generators.cache import sha256_file
from generators.directions import Directions, generator_digest
from generators.images import to_uint8
from generators.keyed import keyed_seed
from generators.strategies import InterventionSampler, LatentBatch, sample_seed_edits
from generators.writer import _png_bytes, _shard_done

__all__ = ["pregenerate", "assemble", "LABEL_COLUMNS",
           "GENINT_EDITS_PER_SEED"]

#: Images per noise seed in the official data: five components per seed.
GENINT_EDITS_PER_SEED = 5
#: The columns of ``labels.csv``, in order.
LABEL_COLUMNS = ("file", "label", "seed_index", "edit", "noise_seed", "components",
                 "offsets")
_FORMAT = "causalkit-genint-pregenerated/1"


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CausalKitError(f"{name} must be an integer >= 1, got {value!r}; pass a "
                             "positive count")
    return int(value)


def _settings(generator: ConditionalGenerator, sampler: InterventionSampler, *,
              classes: list[int], per_class: int, edits: int, seed: int, shard_size: int,
              precision: str, extra: dict[str, Any] | None) -> dict[str, Any]:
    strategy = sampler.strategy
    fields = dict(dataclasses.asdict(strategy), kind=type(strategy).__name__)
    directions = sampler.directions
    return dict(extra or {}, format=_FORMAT, strategy=str(strategy), strategy_fields=fields,
                classes=classes, per_class=per_class, edits_per_seed=edits, seed=seed,
                shard_size=shard_size, precision=precision, z_dim=generator.z_dim,
                image_size=generator.image_size, num_offsets=sampler.num_offsets,
                directions_key=directions.key if directions is not None else None,
                directions_sha256=_directions_digest(directions),
                generator_sha256=generator_digest(generator),
                columns=list(LABEL_COLUMNS))


def _directions_digest(directions: Directions | None) -> str | None:
    # the directions' own bytes: a key is empty for directions made by hand
    if directions is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(directions.components).tobytes()).hexdigest()


def _read_settings(out: Path) -> dict[str, Any] | None:
    path = out / "generation.json"
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CausalKitError(f"{path} is damaged (not JSON); use a new --out folder or "
                             "delete it") from None
    if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
        raise CausalKitError(f"{path} was not written by the GenInt pre-generation; use a "
                             "new --out folder")
    return saved


def _check_or_write_settings(out: Path, settings: dict[str, Any]) -> None:
    _read_settings(out)  # written by this module, or refused
    check_run_folder(out, settings, file="generation.json",
                     what="pre-generated GenInt data", write=True)


class _Layout:
    """Rows ``(class, seed, edit)`` of a run and the shards they are cut into."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.classes = list(settings["classes"])
        self.per_class = int(settings["per_class"])
        self.edits = int(settings["edits_per_seed"])
        self.shard_size = int(settings["shard_size"])
        self.total = len(self.classes) * self.per_class * self.edits
        self.n_shards = -(-self.total // self.shard_size)
        self.class_width = len(str(max(self.classes))) if self.classes else 1
        self.seed_width = max(4, len(str(self.per_class - 1)))

    def rows(self, shard: int) -> np.ndarray:
        return np.arange(shard * self.shard_size,
                         min((shard + 1) * self.shard_size, self.total))

    def where(self, row: int) -> tuple[int, int, int]:
        """``(class id, seed index, edit)`` of a row."""
        group, edit = divmod(int(row), self.edits)
        ci, seed_index = divmod(group, self.per_class)
        return self.classes[ci], seed_index, edit

    def file(self, label: int, seed_index: int, edit: int) -> str:
        return (f"{label:0{self.class_width}d}/{seed_index:0{self.seed_width}d}_"
                f"{edit}.png")

    def record(self, out: Path, shard: int) -> Path:
        return out / ".shards" / f"shard-{shard:06d}.npz"


def _clear_stale(out: Path, files: Sequence[str]) -> None:
    # a killed write leaves ".NAME.XXXX.tmp" beside NAME; only this worker's names
    wanted: dict[Path, set[str]] = {}
    for f in files:
        path = out / f
        wanted.setdefault(path.parent, set()).add(path.name)
    for folder, names in wanted.items():
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                target = entry.name[1:].rsplit(".", 2)[0]
                if target in names:
                    Path(entry.path).unlink(missing_ok=True)


def pregenerate(generator: ConditionalGenerator, sampler: InterventionSampler,
                out: str | os.PathLike, *, per_class: int, seed: int = 0,
                shard_size: int = 1000, worker: int | None = None,
                workers: int | None = None, edits_per_seed: int = GENINT_EDITS_PER_SEED,
                classes: Sequence[int] | None = None, batch_size: int = 32,
                precision: str = "fp32", encode_threads: int = 4, progress: bool = True,
                stop_after: int | None = None, settings: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """Write this worker's shards of GenInt's interventional data into ``out``.

    Parameters
    ----------
    generator
        The generator (``sampler.generator``), on the device it should run on.
    sampler
        Strategy and directions (:func:`generators.sampling.make_sampler`), e.g.
        ``"genint:t=1,k=60"`` on BigGAN-deep-256.
    out
        Output folder (created); the same call resumes a killed worker.
    per_class
        Noise seeds per class (1,000 in the paper).
    seed
        Run seed: image ``(c, i, e)`` comes from ``keyed_seed(seed, c, i)``.
    shard_size
        Images per shard: the unit of a worker's work and of resumption.
    worker, workers
        This process's share (module docstring for the defaults).
    edits_per_seed
        Images per noise seed, each along its own components (5 in the paper).
    classes
        Class ids (default all of the generator's).
    batch_size
        Images per generator forward pass. Keep it for the whole run: some CPU and GPU
        kernels round a row's arithmetic differently in batches of another size.
    precision
        ``"fp32"`` or ``"bf16"`` (autocast of the generator; recorded, so a rerun must
        match).
    encode_threads
        Threads encoding PNGs while the generator computes (0: inline).
    progress
        A progress bar on stderr.
    stop_after
        Stop after this many shards were written by this call (time slices, tests).
    settings
        Extra settings recorded in ``generation.json`` and checked on a rerun.

    Returns
    -------
    dict
        Counts, this call's images/s, ``complete`` (every shard of every worker done,
        ``labels.csv`` and ``manifest.json`` written) and paths.
    """
    from concurrent.futures import ThreadPoolExecutor

    from causalkit.progress import progress as progress_bar

    per_class = _positive("per_class", per_class)
    shard_size = _positive("shard_size", shard_size)
    batch_size = _positive("batch_size", batch_size)
    edits = _positive("edits_per_seed", edits_per_seed)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CausalKitError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(encode_threads, bool) or not isinstance(encode_threads, int) or \
            encode_threads < 0:
        raise CausalKitError(f"encode_threads must be an integer >= 0, got {encode_threads!r}")
    check_precision(precision)
    if sampler.generator is not generator:
        raise CausalKitError("the sampler was made for another generator; build it with "
                             "make_sampler(generator, ...)")
    labels_list = as_label_list(classes, generator.num_classes)
    worker, workers = worker_share(worker, workers)
    # the strategy must be able to make `edits` distinct edits of one seed
    sample_seed_edits(sampler.strategy, generator.z_dim, edits=edits,
                      directions=sampler.directions, seed=0)
    out = check_out_dir(out)
    config = _settings(generator, sampler, classes=labels_list, per_class=per_class,
                       edits=edits, seed=int(seed), shard_size=shard_size,
                       precision=precision, extra=settings)
    _check_or_write_settings(out, config)
    _save_directions(out, sampler.directions)

    layout = _Layout(config)
    mine = list(range(worker, layout.n_shards, workers))
    todo = [s for s in mine if not _shard_done(out, layout.record(out, s))]
    device = generator.device
    pool = ThreadPoolExecutor(encode_threads) if encode_threads else None
    written = generated = 0
    start = time.perf_counter()
    bar = progress_bar(total=sum(len(layout.rows(s)) for s in mine),
                       initial=sum(len(layout.rows(s)) for s in mine if s not in todo),
                       unit="img", desc=f"pregenerate {worker}/{workers}", enabled=progress)
    try:
        with bar:
            for s in todo:
                if stop_after is not None and written >= stop_after:
                    break
                n = _write_shard(generator, sampler, out, layout, s, seed=int(seed),
                                 batch_size=batch_size, precision=precision, device=device,
                                 pool=pool, bar=bar)
                generated += n
                written += 1
    finally:
        if pool is not None:
            pool.shutdown()
    elapsed = time.perf_counter() - start
    complete = all(_shard_done(out, layout.record(out, s)) for s in range(layout.n_shards))
    result = dict(out=str(out), images=layout.total, shards=layout.n_shards, worker=worker,
                  workers=workers, shards_of_worker=len(mine), written_shards=written,
                  generated_images=generated, seconds=round(elapsed, 3),
                  images_per_s=round(generated / elapsed, 3) if generated else None,
                  strategy=str(sampler.strategy), complete=complete,
                  labels_csv=None, manifest=None)
    if complete:
        result.update(_assemble(out, config, layout))
    return result


def _save_directions(out: Path, directions: Directions | None) -> None:
    if directions is None:
        return
    path = out / "directions.npz"
    try:
        current = Directions.load(path) if path.exists() else None
    except CausalKitError:
        current = None  # damaged: written again
    if current is None or not current.matches(directions.key) or not directions.key:
        directions.save(path)


def _seed_group(sampler: InterventionSampler, z_dim: int, seed: int, label: int,
                seed_index: int, edits: int) -> tuple[int, LatentBatch]:
    noise_seed = keyed_seed(seed, label, seed_index)
    return noise_seed, sample_seed_edits(sampler.strategy, z_dim, edits=edits,
                                         directions=sampler.directions, seed=noise_seed)


def _write_shard(generator: ConditionalGenerator, sampler: InterventionSampler, out: Path,
                 layout: _Layout, shard: int, *, seed: int, batch_size: int,
                 precision: str, device: torch.device, pool: Any, bar: Any) -> int:
    rows = layout.rows(shard)
    where = [layout.where(r) for r in rows]
    files = [layout.file(*w) for w in where]
    _clear_stale(out, files)
    groups: dict[tuple[int, int], tuple[int, LatentBatch]] = {}
    z_star, noise_seeds, chosen, amounts = [], [], [], []
    for label, seed_index, edit in where:
        key = (label, seed_index)
        if key not in groups:
            groups[key] = _seed_group(sampler, generator.z_dim, seed, label, seed_index,
                                      layout.edits)
        noise_seed, batch = groups[key]
        z_star.append(batch.z_star[edit])
        noise_seeds.append(noise_seed)
        chosen.append(batch.chosen[edit])
        amounts.append(batch.offsets[edit][batch.chosen[edit]])
    z_all = torch.stack(z_star)
    labels = np.array([w[0] for w in where], dtype=np.int64)
    truncation = sampler.strategy.truncation
    pngs: list[Any] = []
    for b in range(0, len(rows), batch_size):
        sl = slice(b, b + batch_size)
        with torch.no_grad(), autocast(device, precision):
            images = generator(z_all[sl].to(device), torch.as_tensor(labels[sl]), truncation)
        for array in to_uint8(images.float()).permute(0, 2, 3, 1).numpy():
            array = np.ascontiguousarray(array)
            pngs.append(pool.submit(_png_bytes, array) if pool else _png_bytes(array))
        bar.update(images.shape[0])
    data = [p.result() if pool else p for p in pngs]
    digest = hashlib.sha256()
    for f, png in zip(files, data, strict=True):
        atomic_write_bytes(out / f, png)
        digest.update(png)
    record = dict(files=np.array(files), sizes=np.array([len(d) for d in data], np.int64),
                  labels=labels, seed_index=np.array([w[1] for w in where], np.int64),
                  edit=np.array([w[2] for w in where], np.int64),
                  noise_seed=np.array(noise_seeds, np.int64),
                  chosen=torch.stack(chosen).numpy().astype(np.int64),
                  amounts=torch.stack(amounts).numpy().astype(np.float32),
                  images_sha256=np.array(digest.hexdigest()))
    atomic_write(layout.record(out, shard), lambda fh: np.savez(fh, **record))
    return len(rows)


def _assemble(out: Path, settings: dict[str, Any], layout: _Layout) -> dict[str, Any]:
    shards = []

    def write_labels(fh: Any) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(LABEL_COLUMNS)
        for s in range(layout.n_shards):
            path = layout.record(out, s)
            with np.load(path, allow_pickle=False) as rec:
                for i in range(len(rec["files"])):
                    writer.writerow([str(rec["files"][i]), int(rec["labels"][i]),
                                     int(rec["seed_index"][i]), int(rec["edit"][i]),
                                     int(rec["noise_seed"][i]),
                                     ";".join(str(int(c)) for c in rec["chosen"][i]),
                                     ";".join(f"{float(a):.6g}" for a in rec["amounts"][i])])
                shards.append(dict(index=s, record=str(path.relative_to(out)),
                                   images=int(len(rec["files"])),
                                   sha256=sha256_file(path),
                                   images_sha256=str(rec["images_sha256"])))
        text.flush()
        text.detach()

    atomic_write(out / "labels.csv", write_labels)
    per_class_images = layout.per_class * layout.edits
    manifest = dict(format=_FORMAT, images=layout.total, shards=shards,
                    counts=dict(classes=len(layout.classes), seeds_per_class=layout.per_class,
                                edits_per_seed=layout.edits,
                                images_per_class=per_class_images),
                    strategy=settings["strategy"], strategy_fields=settings["strategy_fields"],
                    seed=settings["seed"], shard_size=layout.shard_size,
                    precision=settings["precision"], classes=layout.classes,
                    directions_key=settings["directions_key"],
                    directions_sha256=settings["directions_sha256"],
                    generator_sha256=settings["generator_sha256"],
                    labels_csv="labels.csv", columns=list(LABEL_COLUMNS))
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return dict(labels_csv=str(out / "labels.csv"), manifest=str(out / "manifest.json"))


def assemble(out: str | os.PathLike) -> dict[str, Any]:
    """Write ``labels.csv`` and ``manifest.json`` of a finished pre-generation in ``out``.

    Raises :class:`CausalKitError` naming the unfinished shards when some are missing
    (rerun the workers that own them).
    """
    out = Path(out)
    settings = _read_settings(out)
    if settings is None:
        raise CausalKitError(f"{out} holds no generation.json; point to a folder that "
                             "pregenerate() wrote")
    layout = _Layout(settings)
    missing = [s for s in range(layout.n_shards) if not _shard_done(out, layout.record(out, s))]
    if missing:
        some = ", ".join(str(s) for s in missing[:8]) + (", ..." if len(missing) > 8 else "")
        raise CausalKitError(f"{len(missing)} of {layout.n_shards} shards in {out} are not "
                             f"done (shards {some}); rerun the workers that own them (the "
                             "same call resumes)")
    return dict(out=str(out), images=layout.total, shards=layout.n_shards,
                **_assemble(out, settings, layout))
