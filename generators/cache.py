"""An offline-first cache of downloaded model files, with checksums and atomic renames.

pytorch-pretrained-biggan sends an HTTP ``HEAD`` request on every ``from_pretrained``
call (to read the ETag), so it fails without a network even when the weights are
cached. Here a file that is in the cache is used without any network call; a download
happens only when a file is absent, goes to a temporary file beside its destination, is
checked against the expected size and SHA-256 (when known; otherwise against the server's
``Content-Length``) and is then renamed into place, so an interrupted download never
leaves a file that looks complete. Each cached file has a ``<name>.sha256`` record written
after it; the record is what marks the file complete.

The cache root is ``$CAUSALKIT_DATA`` (default ``~/.cache/causalkit``).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from causalkit.errors import DataError
from causalkit.io import atomic_write, atomic_write_text
from causalkit.progress import progress as progress_bar

__all__ = ["cache_root", "download_file", "cached_file", "sha256_file"]

_CHUNK = 1 << 20


def cache_root() -> Path:
    """The cache folder: ``$CAUSALKIT_DATA`` or ``~/.cache/causalkit``."""
    env = os.environ.get("CAUSALKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "causalkit"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                  size: int | None = None, timeout: float = 60.0,
                  progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying size and SHA-256.

    Parameters
    ----------
    url
        ``http(s)://`` or ``file://`` address.
    dest
        Final path; it appears only once the download is complete and verified.
    sha256, size
        Expected checksum and byte count, when known. Without ``size`` the server's
        ``Content-Length`` (if sent) is enforced instead.
    timeout
        Socket timeout in seconds.
    progress
        Show a tqdm progress bar (bytes).

    Raises
    ------
    DataError
        The server could not be reached, or the bytes do not match what was expected
        (the partial file is deleted; rerun to try again).
    """
    dest = Path(dest)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s)/file
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"cannot download {url}: {exc}; check the network, or fetch the "
                        "files yourself and load them from a local folder") from None
    with response:
        length = response.headers.get("Content-Length")
        expected_size = size if size is not None else (int(length) if length else None)
        digest = hashlib.sha256()
        received = 0

        def write(fh) -> None:
            nonlocal received
            bar = progress_bar(total=expected_size, unit="B", unit_scale=True,
                               desc=dest.name, enabled=progress, leave=False)
            with bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            # Checked inside the write callback so that a bad file is never renamed in.
            if expected_size is not None and received != expected_size:
                raise DataError(f"download of {url} is incomplete or wrong: got "
                                f"{received} bytes, expected {expected_size}; rerun to "
                                "retry")
            if sha256 is not None and digest.hexdigest() != sha256.lower():
                raise DataError(f"checksum mismatch for {url}: sha256 "
                                f"{digest.hexdigest()} != expected {sha256.lower()}; the "
                                "file is corrupt or was replaced upstream; rerun to retry "
                                "or update the expected checksum")

        atomic_write(dest, write)
    atomic_write_text(_record(dest), f"{digest.hexdigest()}  {received}\n")
    return dest


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cached_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                size: int | None = None, offline: bool = False,
                verify: bool = False, progress: bool = True) -> Path:
    """Return ``dest`` if it is cached and complete; otherwise download it.

    A cached file is trusted when its ``.sha256`` record exists and its size matches the
    record -- no network call is made. ``verify=True`` also re-hashes it. With
    ``offline=True`` (or ``CAUSALKIT_OFFLINE=1``) a missing file is an error instead of
    a download.
    """
    dest = Path(dest)
    record = _record(dest)
    if dest.exists() and record.exists():
        try:
            want_hash, _, want_size = record.read_text(encoding="utf-8").strip().partition(
                "  ")
            if want_size:
                int(want_size)
        except (UnicodeDecodeError, ValueError):
            raise DataError(f"cache record {record} is damaged; delete it and {dest} to "
                            "download the file again") from None
        if want_size and dest.stat().st_size != int(want_size):
            raise DataError(f"cached file {dest} has {dest.stat().st_size} bytes, its "
                            f"record says {want_size}; delete {dest} and {record} to "
                            "download it again")
        if sha256 is not None and want_hash != sha256.lower():
            raise DataError(f"cached file {dest} has sha256 {want_hash}, expected {sha256}; "
                            f"delete it and {record} to download it again")
        if verify and sha256_file(dest) != want_hash:
            raise DataError(f"cached file {dest} does not match its recorded sha256; "
                            f"delete it and {record} to download it again")
        return dest
    if offline or os.environ.get("CAUSALKIT_OFFLINE", "") not in ("", "0"):
        raise DataError(f"{dest} is not in the cache and offline mode is on; download it "
                        f"once with network access (from {url}) or unset CAUSALKIT_OFFLINE")
    return download_file(url, dest, sha256=sha256, size=size, progress=progress)
