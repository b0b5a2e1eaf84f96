"""By-name BigGAN loading: loopback download with checks, then offline use of the cache."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading

import pytest
import torch

from causalkit.errors import CausalKitError, DataError
from generators.biggan import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    fetch_pretrained,
    load_biggan,
    save_tiny_biggan,
)
from generators.cache import cache_root, cached_file, download_file

NAME = "biggan-deep-128"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CAUSALKIT_OFFLINE", raising=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A loopback HTTP server holding tiny weights under the names of biggan-deep-128."""
    root = tmp_path_factory.mktemp("server")
    model = save_tiny_biggan(tmp_path_factory.mktemp("tiny"), seed=0)
    shutil.copy(model / CONFIG_NAME, root / f"{NAME}-config.json")
    shutil.copy(model / WEIGHTS_NAME, root / f"{NAME}-pytorch_model.bin")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_download_then_offline_load(served, tmp_path, monkeypatch):
    url, root = served
    folder = fetch_pretrained(NAME, root=tmp_path, base_url=url, progress=False)
    assert folder == tmp_path / "biggan" / NAME
    weights = folder / WEIGHTS_NAME
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert weights.read_bytes() == (root / f"{NAME}-pytorch_model.bin").read_bytes()
    assert (folder / f"{WEIGHTS_NAME}.sha256").read_text().split()[0] == digest
    assert not list(folder.glob(".*.tmp"))

    _no_network(monkeypatch)
    # The default address is unreachable here; the cache must not even try it.
    gen = load_biggan(NAME, device="cpu", root=tmp_path, progress=False)
    assert gen.name == NAME and gen.image_size == 32
    x = gen(gen.sample_noise(2, seed=0), [0, 1])
    assert x.shape == (2, 3, 32, 32)
    # CAUSALKIT_DATA is the default cache root.
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path))
    assert cache_root() == tmp_path
    assert load_biggan(NAME, device="cpu").name == NAME


def test_checksum_mismatch_leaves_nothing_behind(served, tmp_path):
    url, _ = served
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_pretrained(NAME, root=tmp_path, base_url=url, progress=False,
                         sha256={WEIGHTS_NAME: "0" * 64})
    folder = tmp_path / "biggan" / NAME
    assert not (folder / WEIGHTS_NAME).exists()
    assert not (folder / f"{WEIGHTS_NAME}.sha256").exists()
    assert not list(folder.glob(".*"))


def test_correct_checksum_and_size_pass(served, tmp_path):
    url, root = served
    data = (root / f"{NAME}-config.json").read_bytes()
    dest = download_file(f"{url}/{NAME}-config.json", tmp_path / "c.json",
                         sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                         progress=False)
    assert dest.read_bytes() == data
    with pytest.raises(DataError, match=f"got {len(data)} bytes, expected 3;"):
        download_file(f"{url}/{NAME}-config.json", tmp_path / "d.json", size=3,
                      progress=False)
    assert not (tmp_path / "d.json").exists()


def test_cached_file_rejects_a_truncated_cache_entry(served, tmp_path, monkeypatch):
    url, _ = served
    folder = fetch_pretrained(NAME, root=tmp_path, base_url=url, progress=False)
    weights = folder / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:100])
    _no_network(monkeypatch)
    with pytest.raises(DataError, match="delete .* to download it again"):
        load_biggan(NAME, root=tmp_path)


def test_offline_mode_and_unreachable_server(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="offline mode is on"):
        fetch_pretrained(NAME, root=tmp_path, offline=True)
    monkeypatch.setenv("CAUSALKIT_OFFLINE", "1")
    with pytest.raises(DataError, match="offline mode is on"):
        cached_file("http://127.0.0.1:9/x", tmp_path / "x")
    monkeypatch.delenv("CAUSALKIT_OFFLINE")
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot download"):
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "x", timeout=5,
                      progress=False)


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(CausalKitError, match="unknown BigGAN 'biggan-deep-64'"):
        fetch_pretrained("biggan-deep-64", root=tmp_path)
    with pytest.raises(CausalKitError, match="neither a BigGAN name"):
        load_biggan(str(tmp_path / "nope"))


def test_registry_specs(served, tmp_path, monkeypatch):
    from generators.registry import load_generator, register_generator

    url, _ = served
    fetch_pretrained(NAME, root=tmp_path, base_url=url, progress=False)
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path))
    _no_network(monkeypatch)
    by_name = load_generator(f"biggan:{NAME}", device="cpu")
    by_dir = load_generator(f"biggan:{tmp_path / 'biggan' / NAME}", device="cpu")
    assert by_name.name == f"biggan:{NAME}"
    for a, b in zip(by_name.module.state_dict().values(),
                    by_dir.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(CausalKitError, match="unknown generator 'nope:1'"):
        load_generator("nope:1")
    with pytest.raises(CausalKitError, match="integer seed"):
        load_generator("tiny:x")
    with pytest.raises(CausalKitError, match="already registered"):
        register_generator("tiny", lambda arg, device: None)
