"""MNIST sources: IDX parsing, folders, the embedded subset, the verified download."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import threading
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data

from causalkit.datasets import mnist
from causalkit.datasets.mnist import (
    MNIST_FILES,
    MNIST_SHA256,
    EmbeddedSourceWarning,
    download_mnist,
    load_embedded,
    load_mnist_dir,
    read_idx,
    resolve_source,
)
from causalkit.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0x0000 08 ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_plain_and_gzipped_agree(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_wrong_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="wrong magic number"):
        read_idx(tmp_path / "bad")


def test_read_idx_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8) + 7))
    (tmp_path / "t.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_idx(tmp_path / "t.gz")


def test_read_idx_size_mismatch(tmp_path):
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((4, 2), np.uint8))[:-3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "short")


def test_missing_folder_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist_dir(tmp_path / "nope")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte, t10k-images"):
        load_mnist_dir(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        resolve_source(f"mnist:{tmp_path / 'nope'}")


def test_mixed_plain_and_gz_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        (tmp_path / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (tmp_path / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(np.arange(n) % 10)))
    train, test = load_mnist_dir(tmp_path)
    assert train.images.shape == (6, 28, 28) and len(test) == 4
    assert train.labels.dtype == np.int64


def test_shared_mnist_matches_canonical_hashes():
    folder = shared_data("mnist")
    for stem, digest in MNIST_SHA256.items():
        raw = gzip.decompress((folder / f"{stem}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest
    train, test = load_mnist_dir(folder)
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert np.bincount(train.labels).tolist()[:2] == [5923, 6742]  # MNIST's known counts


def test_embedded_subset_is_stratified_and_announced(monkeypatch, tmp_path):
    train, test = load_embedded()
    assert train.images.shape == (4000, 28, 28) and len(test) == 1000
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    monkeypatch.delenv("CAUSALKIT_MNIST", raising=False)
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path))  # empty cache
    monkeypatch.setattr(mnist, "_ANNOUNCED", set())
    with pytest.warns(EmbeddedSourceWarning, match="NOT the full MNIST"):
        src = resolve_source()
    assert src.name == "embedded" and "CAUSALKIT_MNIST" in src.note
    with warnings.catch_warnings():  # announced once per process, not on every call
        warnings.simplefilter("error", EmbeddedSourceWarning)
        assert resolve_source().name == "embedded"


def test_default_source_prefers_env_folder(monkeypatch):
    folder = shared_data("mnist")
    monkeypatch.setenv("CAUSALKIT_MNIST", str(folder))
    src = resolve_source()
    assert src.name == f"mnist:{folder.resolve()}" and "$CAUSALKIT_MNIST" in src.note
    assert len(src.train) == 60000


def test_unknown_source():
    with pytest.raises(DataError, match="unknown MNIST source 'foo'"):
        resolve_source("foo")


# ------------------------------------------------------------------ loopback download
class _Handler(http.server.SimpleHTTPRequestHandler):
    fail_first: set[str] = set()
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        if self.path in type(self).fail_first:
            type(self).fail_first.discard(self.path)
            self.send_error(503, "try again")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder, fail_first=()) -> base URL of a loopback server for ``folder``."""
    servers = []

    def start(folder: Path, fail_first=()) -> str:
        handler = type("H", (_Handler,), {"fail_first": set(fail_first), "requests": []})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, handler))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, _ in servers:
        server.shutdown()
        server.server_close()


def test_download_verifies_and_is_reused(serve, tmp_path, monkeypatch):
    url = serve(shared_data("mnist"))
    dest = download_mnist(tmp_path / "mnist", mirrors=[url], backoff=0)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in
                                                             MNIST_FILES.values())
    # The re-gzipped train-images differs from the original .gz but verifies: the
    # checksums are on the decompressed bytes.
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path))
    monkeypatch.delenv("CAUSALKIT_MNIST", raising=False)
    src = resolve_source()
    assert "found in the cache" in src.note and len(src.test) == 10000
    assert resolve_source("download").name == "download"  # verified cache: no network
    # Verified files are not fetched again: an unreachable mirror is never contacted.
    download_mnist(tmp_path / "mnist", mirrors=["http://127.0.0.1:9/"], retries=1)


def test_download_rejects_corrupted_file_and_leaves_nothing(serve, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(shared_data("mnist") / "train-images-idx3-ubyte.gz", served)
    labels = bytearray(gzip.decompress(
        (shared_data("mnist") / "train-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # one wrong label: valid gzip, valid IDX
    (served / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    url = serve(served)
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="could not download a verified "
                                        "train-labels-idx1-ubyte.*sha256"):
        download_mnist(dest, mirrors=[url], retries=2, backoff=0)
    assert sorted(p.name for p in dest.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_download_truncated_file_is_an_error(serve, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    data = (shared_data("mnist") / "train-images-idx3-ubyte.gz").read_bytes()
    (served / "train-images-idx3-ubyte.gz").write_bytes(data[:100000])
    url = serve(served)
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        download_mnist(tmp_path / "cache", mirrors=[url], retries=1, backoff=0)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_retries_a_transient_failure(serve, tmp_path):
    url = serve(shared_data("mnist"),
                fail_first={"/t10k-labels-idx1-ubyte.gz", "/train-labels-idx1-ubyte.gz"})
    dest = download_mnist(tmp_path / "m", mirrors=[url], retries=2, backoff=0)
    train, test = load_mnist_dir(dest)
    assert len(train) == 60000 and len(test) == 10000


def test_download_falls_back_to_the_next_mirror(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_FILES", {"test_labels": "t10k-labels-idx1-ubyte"})
    good = serve(shared_data("mnist"))
    dest = download_mnist(tmp_path / "m", mirrors=["http://127.0.0.1:9/", good], retries=1,
                          backoff=0, timeout=5)
    assert [p.name for p in dest.iterdir()] == ["t10k-labels-idx1-ubyte.gz"]
