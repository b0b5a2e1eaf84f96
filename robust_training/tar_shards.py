"""WebDataset tar shards: name them, list their samples, read one sample, write them.

A WebDataset is a set of plain POSIX tar files ("shards"). Consecutive members that share
a *key* form one sample, and the rest of the member's name after the key is the field::

    shard-000000.tar
        n01440764_10026.jpg     the image (jpg, jpeg, png, webp, ppm, bmp, tif ...)
        n01440764_10026.cls     its class id as decimal text, e.g. ``0``
        n01443537_1000.jpg
        n01443537_1000.cls
        ...

The key is the member's path up to the first ``.`` of its base name (the WebDataset
library's rule), so ``a/b.c.jpg`` is the field ``c.jpg`` of the sample ``a/b``. A
*pattern* names the shards: brace ranges and lists as the WebDataset library writes them
(``shard-{000000..000146}.tar``, ``{train,extra}-{0..3}.tar``), shell globs
(``shards/*.tar``), or a folder (every ``*.tar`` in it), always in sorted order within
each expansion.

**Random access, not streaming.** The WebDataset library reads shards front to back,
which makes the order of a batch depend on how shards are dealt to processes. causalkit's
training batches are a pure function of the step (resume after a kill and DDP with any
number of ranks give the same global batch), which needs any sample by name. Each
process therefore indexes a shard once from its tar headers (member name -> data offset
and size, :func:`member_index`) and reads a member with one positioned read
(:func:`read_member`). Shards must be seekable files: a local disk or a network file
system, not URLs.

:func:`write_shards` turns an ImageFolder into shards, copying each image's bytes as they
are (no re-encoding), so both layouts decode to the same pixels; a shard's bytes depend
only on the images it holds (member times and owners are fixed).
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from causalkit.errors import CausalKitError, DataError

__all__ = ["IMAGE_FIELDS", "Samples", "expand_pattern", "list_samples", "member_index",
           "read_member", "split_member", "write_shards"]

IMAGE_FIELDS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp", "ppm", "pgm", "bmp", "tif",
                                 "tiff", "img")
"""Fields read as the sample's image (case-insensitive), first match wins."""

_BRACE = re.compile(r"\{([^{}]*)\}")


def _expand_braces(pattern: str) -> list[str]:
    match = _BRACE.search(pattern)
    if match is None:
        return [pattern]
    body, head, tail = match.group(1), pattern[:match.start()], pattern[match.end():]
    span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if span:
        lo, hi = span.group(1), span.group(2)
        if int(hi) < int(lo):
            raise CausalKitError(f"shard pattern {pattern!r}: range {{{body}}} runs "
                                 "backwards; write it as {low..high}")
        width = len(lo) if lo.startswith("0") else 0
        options = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    elif "," in body:
        options = body.split(",")
    else:
        raise CausalKitError(f"shard pattern {pattern!r}: cannot read {{{body}}}; use a range "
                             "{000..099} or a list {a,b}")
    return [out for option in options for out in _expand_braces(head + option + tail)]


def expand_pattern(pattern: str | os.PathLike) -> list[Path]:
    """The shard files a pattern names, in order; a name that matches nothing is an error."""
    text = str(pattern)
    if not text:
        raise CausalKitError("empty shard pattern; name tar shards as DIR, DIR/*.tar or "
                             "shard-{000000..000009}.tar")
    if Path(text).is_dir():
        found = sorted(Path(text).glob("*.tar"))
        if not found:
            raise DataError(f"shard folder {text} holds no .tar files; point to the folder "
                            "of the WebDataset shards")
        return found
    out: list[Path] = []
    for name in _expand_braces(text):
        if any(ch in name for ch in "*?["):
            matches = sorted(glob.glob(name))
            if not matches:
                raise DataError(f"shard pattern {name!r} matches no file; check the path")
            out.extend(Path(m) for m in matches)
        elif not Path(name).is_file():
            raise DataError(f"shard {name} (from the pattern {text!r}) does not exist; check "
                            "the pattern's path and range")
        else:
            out.append(Path(name))
    return out


def split_member(name: str) -> tuple[str, str]:
    """``(key, field)`` of a tar member name by the WebDataset rule."""
    folder, _, base = name.rpartition("/")
    stem, dot, field = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (field.lower() if dot else "")


@dataclass(frozen=True)
class Samples:
    """The samples of some shards: ``files[i]`` (``shard.tar/member``) shows ``labels[i]``."""

    files: np.ndarray
    labels: np.ndarray
    shards: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.files)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"{path} is not a readable (uncompressed) tar shard ({exc}); "
                        "recreate the shard") from None


def list_samples(pattern: str | os.PathLike) -> Samples:
    """Every sample of the shards, in shard order then member order, with its ``.cls``
    label. A sample without an image or a class id raises :class:`DataError` naming it."""
    shards = expand_pattern(pattern)
    files: list[str] = []
    labels: list[int] = []
    for shard in shards:
        groups: dict[str, dict[str, tarfile.TarInfo]] = {}
        table: dict[str, tuple[int, int]] = {}
        with _open_tar(shard) as tar:
            try:
                for member in tar:
                    if member.isfile():
                        key, field = split_member(member.name)
                        groups.setdefault(key, {})[field] = member
                        table[member.name] = (member.offset_data, member.size)
                _TABLES[str(shard)] = (_signature(str(shard)), table)
                for key, fields in groups.items():
                    image = next((f for f in IMAGE_FIELDS if f in fields), None)
                    if image is None or "cls" not in fields:
                        lack = "an image" if image is None else "a .cls label"
                        raise DataError(f"sample {key!r} of {shard} has no {lack} (fields: "
                                        f"{sorted(fields)}); write each sample as key.jpg + "
                                        "key.cls")
                    fh = tar.extractfile(fields["cls"])
                    text = fh.read().decode("utf-8", "replace").strip() if fh else ""
                    if not re.fullmatch(r"-?\d+", text):
                        raise DataError(f"{shard}: {key}.cls holds {text[:20]!r}, not an "
                                        "integer class id; fix that sample")
                    files.append(f"{shard}/{fields[image].name}")
                    labels.append(int(text))
            except (OSError, tarfile.TarError) as exc:
                raise DataError(f"tar shard {shard} is truncated or corrupt ({exc}); "
                                "recreate the shard") from None
    if not files:
        raise DataError(f"the shards {pattern!s} hold no samples; check the pattern")
    return Samples(np.array(files), np.array(labels, dtype=np.int64), tuple(shards))


_TABLES: dict[str, tuple[tuple[int, int, int], dict[str, tuple[int, int]]]] = {}
_FDS: dict[str, tuple[int, int]] = {}  # archive -> (pid, open file descriptor)


def _signature(path: str) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataError(f"cannot open the tar shard {path} ({exc}); check the path") from None
    return st.st_ino, st.st_size, st.st_mtime_ns


def member_index(archive: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """``member name -> (data offset, size)`` of a tar file, read once per process (and
    inherited by forked DataLoader workers when :func:`list_samples` read it first).
    A shard replaced on disk is indexed again."""
    key = str(archive)
    signature = _signature(key)
    cached = _TABLES.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    stale = _FDS.pop(key, None)
    if stale is not None and stale[0] == os.getpid():
        os.close(stale[1])
    with _open_tar(Path(key)) as tar:
        try:
            table = {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}
        except (OSError, tarfile.TarError) as exc:
            raise DataError(f"tar shard {key} is truncated or corrupt ({exc}); recreate "
                            "the shard") from None
    _TABLES[key] = (signature, table)
    return table


def _fd(archive: str) -> int:
    opened = _FDS.get(archive)
    if opened is None or opened[0] != os.getpid():  # a forked worker opens its own
        try:
            opened = _FDS[archive] = (os.getpid(), os.open(archive, os.O_RDONLY))
        except OSError as exc:
            raise DataError(f"cannot open the tar shard {archive} ({exc}); check the "
                            "path") from None
    return opened[1]


def read_member(archive: str | os.PathLike, member: str) -> bytes:
    """The bytes of one member, by a positioned read (safe in forked workers)."""
    key = str(archive)
    where = member_index(key).get(member)
    if where is None:
        raise DataError(f"{archive} has no member {member}; the shard does not match its "
                        "listing: recreate it or list the shards again")
    offset, size = where
    data = os.pread(_fd(key), size, offset)
    if len(data) != size:
        raise DataError(f"{archive} ends inside {member} (read {len(data)} of {size} bytes); "
                        "the shard is truncated: recreate it")
    return data


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shards(root: str | os.PathLike, out: str | os.PathLike, *, shard_size: int = 1000,
                 classes: Sequence[str] | None = None, prefix: str = "shard") -> str:
    """Write the ImageFolder ``root`` as WebDataset shards under ``out``; return their
    pattern (``out/prefix-{000000..N}.tar``).

    Samples keep the folder's listing order (class by class), keys are their positions
    (``00000042``), each image's bytes are copied as they are, and ``.cls`` holds the
    label. Shards are written atomically, so a rerun finishes a killed one; a folder that
    holds shards of other settings (``webdataset.json``) is refused.
    """
    from causalkit.datasets.image_folder import list_image_folder
    from causalkit.io import atomic_write, atomic_write_text, check_out_dir, read_json

    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise CausalKitError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", prefix):
        raise CausalKitError(f"shard prefix {prefix!r} must be letters, digits, _ or -")
    listing = list_image_folder(root, classes=classes)
    out = check_out_dir(out)
    n = len(listing)
    count = -(-n // shard_size)
    settings = {"root": str(Path(root).resolve()), "images": n, "shard_size": shard_size,
                "classes": list(listing.classes), "prefix": prefix, "shards": count}
    manifest = out / "webdataset.json"
    if manifest.exists():
        before = read_json(manifest)
        if before != settings:
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            raise CausalKitError(f"{out} holds shards of other settings ({', '.join(changed)}"
                                 "); pass another folder or delete that one")
    else:
        atomic_write_text(manifest, json.dumps(settings, indent=1) + "\n")
    width = max(6, len(str(count - 1)))
    for s in range(count):
        path = out / f"{prefix}-{s:0{width}d}.tar"
        if path.is_file():
            continue

        def write(fh, s=s) -> None:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for i in range(s * shard_size, min(n, (s + 1) * shard_size)):
                    src = listing.paths[i]
                    field = src.suffix.lower().lstrip(".") or "img"
                    _add(tar, f"{i:08d}.{field}", src.read_bytes())
                    _add(tar, f"{i:08d}.cls", str(listing.labels[i]).encode())

        atomic_write(path, write)
    last = f"{count - 1:0{width}d}"
    return str(out / (f"{prefix}-{{{0:0{width}d}..{last}}}.tar" if count > 1
                      else f"{prefix}-{last}.tar"))
