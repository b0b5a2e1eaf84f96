"""No stale state: a run folder's cached directions are reused only by the request that
made them, a refused run writes nothing, and GANSpace fits are the same in every process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from causalkit.cli import app
from generators.biggan import tiny_biggan
from generators.directions import Directions, directions_key, shortcut_directions

runner = CliRunner()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _generate(out: Path, *extra: str):
    return runner.invoke(app, ["generate", "-n", "2", "--classes", "0,3", "-s", "t=1,k=4,s=1",
                               "--shard-size", "3", "--out", str(out), "--json", *extra])


def test_refused_run_then_corrected_run_equals_a_fresh_folder(tmp_path):
    fresh, reused = tmp_path / "fresh", tmp_path / "reused"
    assert _generate(fresh, "-g", "tiny:2").exit_code == 0

    # a refused run (another generator, a bad count) writes nothing at all ...
    bad = _generate(reused, "-g", "tiny:1", "--per-class", "0")
    assert bad.exit_code == 2 and "--per-class must be >= 1" in bad.stderr
    assert not reused.exists()
    # ... and the corrected run with a different generator is a fresh run
    assert _generate(reused, "-g", "tiny:2").exit_code == 0
    assert _files(reused) == _files(fresh)


def test_stale_directions_are_refitted_not_reused(tmp_path):
    fresh = tmp_path / "fresh"
    assert _generate(fresh, "-g", "tiny:2").exit_code == 0
    want = _files(fresh)
    key = directions_key(tiny_biggan(2), k=4)
    assert Directions.load(fresh / "directions.npz").key == key

    # directions another generator left behind: without a key (written before keys),
    # with another request's key, and a damaged file
    other = shortcut_directions(tiny_biggan(1))
    for i, plant in enumerate(["no key", "other key", "damaged"]):
        folder = tmp_path / f"stale{i}"
        folder.mkdir()
        if plant == "damaged":
            (folder / "directions.npz").write_bytes(b"PK\x03\x04 cut short")
        else:
            other.key = "" if plant == "no key" else directions_key(tiny_biggan(1), k=4)
            other.save(folder / "directions.npz")
        result = _generate(folder, "-g", "tiny:2")
        assert result.exit_code == 0, result.output
        assert _files(folder) == want, plant


def test_matching_directions_are_reused_and_other_runs_refused(tmp_path):
    out = tmp_path / "run"
    assert _generate(out, "-g", "tiny:2").exit_code == 0
    before = _files(out)
    again = _generate(out, "-g", "tiny:2")
    assert again.exit_code == 0 and '"skipped_shards": 2' in again.stdout
    assert _files(out) == before
    # a finished folder and another generator: refused, and the folder is left alone
    other = _generate(out, "-g", "tiny:1")
    assert other.exit_code == 2 and "directions_key" in other.stderr
    assert _files(out) == before


_FIT = """
import hashlib, torch
from generators.small_gan import SmallGANConfig, SmallGANNet, SmallGANGenerator
from generators.directions import fit_pca_directions
torch.manual_seed(0)
net = SmallGANNet(SmallGANConfig(z_dim=32, block_latent=True, ngf=8))
for m in net.modules():
    if isinstance(m, torch.nn.Linear):
        torch.nn.init.normal_(m.weight, std=0.3)
torch.set_num_threads({threads})
# blocks.0.affine sees 8 of the 32 latent entries: 16 directions are rank-deficient
d = fit_pca_directions(SmallGANGenerator(net.eval(), name="t"), k=16,
                       layer="blocks.0.affine", n_samples=1024, batch_size=128,
                       progress=False)
print(hashlib.sha256(d.components.tobytes() + d.stds.tobytes()).hexdigest())
"""


def test_rank_deficient_pca_fit_is_the_same_in_every_process():
    digests = {subprocess.run([sys.executable, "-c", _FIT.format(threads=t)], check=True,
                              capture_output=True, text=True).stdout.strip()
               for t in (1, 2, 1)}
    assert len(digests) == 1, digests


def test_directions_key_names_what_made_them(tmp_path):
    gen = tiny_biggan(0)
    key = directions_key(gen, k=4)
    assert key == directions_key(tiny_biggan(0), k=4)
    assert len({key, directions_key(tiny_biggan(1), k=4), directions_key(gen, k=5),
                directions_key(gen, k=4, layer="generator.gen_z"),
                directions_key(gen, k=4, fit="shortcut")}) == 5
    path = tmp_path / "d.npz"
    d = shortcut_directions(gen)
    d.key = key
    d.save(path)
    loaded = Directions.load(path)
    assert loaded.matches(key) and not loaded.matches(directions_key(gen, k=5))
    assert np.array_equal(loaded.components, d.components)
    d.key = ""
    d.save(path)
    assert not Directions.load(path).matches(key)  # keyless files are never reused
