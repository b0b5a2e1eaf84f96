"""Write an interventional (or observational) image set to disk: sharded and resumable.

Layout of ``out/``::

    generation.json          the run's settings; a rerun must match them
    directions.npz           the directions used (interventional runs), with their key
    <class>/<index>.png      ImageFolder layout; class folders are zero-padded numbers
    labels.csv               file, label, offset_0 .. offset_{k-1}
    latents.npz              files, labels, offsets (n, k), z (n, z_dim), z_star (n, z_dim)
    .shards/shard-NNNNNN.npz one record per finished shard

Images are numbered class by class and cut into shards of ``shard_size``. Each shard's
randomness comes from ``(seed, shard index)`` alone, so a shard is the same whether it is
generated in a first run or after a crash. Every PNG is written atomically, and the shard
record (with the byte size of each PNG) is written last: a shard counts as done only when
its record exists and its files have the recorded sizes. A killed run is resumed by
running the same command again.

Nothing is written before every setting is checked: the counts, the output folder
(:func:`causalkit.io.check_out_dir`) and, in a folder that holds a run already, its
``generation.json``. The manifest records the key of the directions
(:func:`generators.directions.directions_key`), so a rerun whose directions differ (another
generator, layer or fit) is refused instead of mixing two runs' images in one folder.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write, atomic_write_bytes, atomic_write_text, check_out_dir
from causalkit.resume import check_run_folder
from generators.base import ConditionalGenerator, as_label_list
from generators.directions import Directions
from generators.images import to_uint8
from generators.strategies import InterventionSampler

__all__ = ["write_generated", "shard_seed"]


def shard_seed(seed: int, shard: int) -> int:
    """An independent 63-bit seed for shard ``shard`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, shard]).generate_state(1, np.uint64)[0] >> 1)


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _save_png(path: Path, array: np.ndarray) -> int:
    data = _png_bytes(array)
    atomic_write_bytes(path, data)
    return len(data)


def _shard_done(out: Path, record: Path) -> bool:
    if not record.exists():
        return False
    try:
        with np.load(record, allow_pickle=False) as data:
            files, sizes = data["files"], data["sizes"]
    except (OSError, KeyError, ValueError):
        return False
    return all((out / f).is_file() and (out / f).stat().st_size == s
               for f, s in zip(files, sizes, strict=True))


def write_generated(generator: ConditionalGenerator, sampler: InterventionSampler,
                    out: str | Path, *, per_class: int, classes: Sequence[int] | None = None,
                    seed: int = 0, shard_size: int = 1000, batch_size: int = 64,
                    progress: bool = True, settings: dict[str, Any] | None = None,
                    directions: Directions | None = None) -> dict[str, Any]:
    """Generate ``per_class`` images for each class into ``out`` (resumable).

    Parameters
    ----------
    generator
        The generator (also ``sampler.generator``).
    sampler
        Strategy, directions and generator together.
    out
        Output folder (created). Rerunning with the same settings resumes.
    per_class
        Images per class.
    classes
        Class indices (default all).
    seed
        Run seed; shard ``i`` uses :func:`shard_seed` ``(seed, i)``.
    shard_size, batch_size
        Images per shard (the unit of resumption) and per forward pass.
    progress
        tqdm progress bar on stderr.
    settings
        Extra settings recorded in ``generation.json`` and checked on resume.
    directions
        The directions ``sampler`` moves along, saved as ``directions.npz`` (after the
        checks) so that a rerun can reuse them; their ``key`` enters the manifest.

    Returns
    -------
    dict
        Counts, timings and paths.
    """
    from causalkit.progress import progress as progress_bar

    out = check_out_dir(out)
    labels_list = as_label_list(classes, generator.num_classes)
    for name, value in (("per_class", per_class), ("shard_size", shard_size),
                        ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CausalKitError(f"{name} must be an integer >= 1, got {value!r}; pass a "
                                 "positive count")
    total = per_class * len(labels_list)
    k = sampler.num_offsets
    # The full strategy (str() omits per_sample and centered, which change the images).
    strategy = dict(dataclasses.asdict(sampler.strategy),
                    kind=type(sampler.strategy).__name__)
    manifest = dict(settings or {}, strategy=str(sampler.strategy),
                    strategy_fields=strategy, classes=labels_list,
                    per_class=per_class, seed=seed, shard_size=shard_size,
                    z_dim=generator.z_dim, num_offsets=k)
    if directions is not None:
        manifest["directions_key"] = directions.key
    man_path = out / "generation.json"
    check_run_folder(out, manifest, file="generation.json", what="a generation run")
    if directions is not None:
        path = out / "directions.npz"
        current = None
        if path.exists():
            try:
                current = Directions.load(path)
            except CausalKitError:
                current = None  # a damaged cache is refitted, never read
        if current is None or not current.matches(directions.key):
            directions.save(path)
    if not man_path.exists():
        atomic_write_text(man_path, json.dumps(manifest, indent=2) + "\n")
    for stale in out.rglob(".*.tmp"):  # left behind by a killed run
        stale.unlink()

    width = len(str(generator.num_classes - 1))
    index_width = max(6, len(str(per_class - 1)))
    n_shards = -(-total // shard_size)
    shard_dir = out / ".shards"
    records = [shard_dir / f"shard-{s:06d}.npz" for s in range(n_shards)]
    done = [_shard_done(out, r) for r in records]
    start = time.perf_counter()
    generated = 0
    bar = progress_bar(total=total, initial=sum(min(shard_size, total - s * shard_size)
                                                for s in range(n_shards) if done[s]),
                       unit="img", desc="generate", enabled=progress)
    with bar:
        for s in range(n_shards):
            if done[s]:
                continue
            idx = np.arange(s * shard_size, min((s + 1) * shard_size, total))
            labels = np.asarray(labels_list)[idx // per_class]
            within = idx % per_class
            files = np.array([f"{c:0{width}d}/{i:0{index_width}d}.png"
                              for c, i in zip(labels, within, strict=True)])
            batch = sampler.latents(len(idx), shard_seed(seed, s))
            sizes = np.zeros(len(idx), dtype=np.int64)
            for b in range(0, len(idx), batch_size):
                sl = slice(b, b + batch_size)
                with torch.no_grad():
                    images = generator(batch.z_star[sl], torch.as_tensor(labels[sl]),
                                       batch.truncation).cpu()
                for j, array in enumerate(to_uint8(images).permute(0, 2, 3, 1).numpy()):
                    sizes[b + j] = _save_png(out / files[b + j], array)
                bar.update(images.shape[0])
            record = dict(files=files, labels=labels, sizes=sizes,
                          offsets=batch.offsets.numpy(), z=batch.z.numpy(),
                          z_star=batch.z_star.numpy())
            atomic_write(records[s], lambda fh, rec=record: np.savez(fh, **rec))
            generated += len(idx)
    elapsed = time.perf_counter() - start

    _write_index(out, records, k)
    return dict(out=str(out), images=total, shards=n_shards,
                skipped_shards=int(sum(done)), generated_images=generated,
                seconds=round(elapsed, 3),
                images_per_s=round(generated / elapsed, 2) if generated else None,
                strategy=str(sampler.strategy), labels_csv=str(out / "labels.csv"),
                latents=str(out / "latents.npz"))


def _write_index(out: Path, records: list[Path], k: int) -> None:
    """Concatenate shard records into labels.csv and latents.npz (atomically)."""
    parts: dict[str, list[np.ndarray]] = {key: [] for key in
                                          ("files", "labels", "offsets", "z", "z_star")}
    for r in records:
        with np.load(r, allow_pickle=False) as data:
            for key in parts:
                parts[key].append(data[key])
    merged = {key: np.concatenate(v) for key, v in parts.items()}
    atomic_write(out / "latents.npz", lambda fh: np.savez(fh, **merged))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "label"] + [f"offset_{j}" for j in range(k)])
    for f, y, o in zip(merged["files"], merged["labels"], merged["offsets"], strict=True):
        writer.writerow([f, int(y)] + [f"{v:.6g}" for v in o])
    atomic_write_text(out / "labels.csv", buf.getvalue())
