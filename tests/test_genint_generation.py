"""GenInt's interventional stream: the paper's strategy, on-the-fly batches, pre-generation.

Stand-ins: the tiny random BigGAN-deep (32x32, 10 classes, z_dim 8) through the strict
loader, and the small GAN, in place of BigGAN-deep-256.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from generators.biggan import load_biggan_dir, save_biggan, tiny_biggan
from generators.directions import generator_digest
from generators.keyed import row_keys
from generators.pregenerate import assemble, pregenerate
from generators.sampling import make_sampler
from generators.strategies import (
    GENINT_RANGES,
    GenIntStrategy,
    parse_strategy,
    sample_rows,
    sample_seed_edits,
)
from robust_training.generated_source import OnTheFlySource

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = "genint:t=1,k=8"  # the paper's first 8 ranges: the tiny model has z_dim 8


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    # the tiny model's files, for subprocesses (tiny_biggan caches its build per process)
    return save_biggan(tiny_biggan(0), tmp_path_factory.mktemp("tiny") / "biggan")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    gen = load_biggan_dir(tiny_dir, device="cpu")
    return gen, make_sampler(gen, STRATEGY).sampler


@pytest.fixture(scope="module")
def small():
    from generators.small_gan import SmallGANConfig, build_small_gan

    gen = build_small_gan(SmallGANConfig(z_dim=16, ngf=8), seed=1, device="cpu")
    return gen, make_sampler(gen, STRATEGY).sampler


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# -- the strategy ---------------------------------------------------------------------------
def test_the_strategy_string_parses_to_the_papers_ranges():
    strat = parse_strategy("genint:t=1,k=60")
    assert isinstance(strat, GenIntStrategy)
    assert (strat.truncation, strat.components, strat.per_sample, strat.centered) == (
        1.0, 60, 1, True)
    ranges = strat.ranges
    assert ranges.shape == (60, 2) and np.all(ranges[:, 0] < ranges[:, 1])
    # entries of the official scale_pair_updown, as (min, max) of their listed offsets
    official = {0: (-3, 3), 1: (-4, 2), 4: (-3, 5), 12: (-8, 10), 13: (-10, 7),
                18: (-5, 10), 23: (-10, 10), 39: (-12, 10), 48: (-13, 12), 51: (6, 12),
                53: (-12, 13), 55: (-12, 15), 59: (-10, 12)}
    for c, pair in official.items():
        assert tuple(ranges[c]) == pair, c
    assert str(strat) == "genint:t=1,k=60" and parse_strategy(str(strat)) == strat
    assert parse_strategy("genint") == strat
    half = parse_strategy("genint:t=1,k=4,s=0.5")
    np.testing.assert_array_equal(half.ranges, np.asarray(GENINT_RANGES[:4]) * 0.5)
    assert parse_strategy(str(half)) == half
    for bad, message in (("genint:k=61", "ranges for 60 components"),
                         ("genint:q=1", "take t, k, s, n, centered"),
                         ("genint:t=2", "truncation"), ("genint:k=x", "not a number")):
        with pytest.raises(CausalKitError, match=message):
            parse_strategy(bad)


def test_an_edit_sets_one_coordinate_to_an_offset_in_its_range(tiny):
    gen, sampler = tiny
    u = torch.from_numpy(sampler.directions.top(8).components)
    lat = sample_rows(sampler.strategy, row_keys(3, 0, np.arange(64)), gen.z_dim,
                      directions=sampler.directions)
    assert lat.chosen.shape == (64, 1) and (lat.offsets != 0).sum(1).eq(1).all()
    c = lat.chosen[:, 0]
    amount = lat.offsets[torch.arange(64), c]
    lo, hi = (torch.tensor(GENINT_RANGES[:8], dtype=torch.float32)[c].T)
    assert torch.all((lo <= amount) & (amount <= hi))
    # centred: the coordinate along u_c becomes the offset; the rest of z is untouched
    coord = (lat.z_star * u[c]).sum(1)
    torch.testing.assert_close(coord, amount, rtol=0, atol=1e-5)
    rest = lat.z_star - coord[:, None] * u[c]
    torch.testing.assert_close(rest, lat.z - (lat.z * u[c]).sum(1, keepdim=True) * u[c],
                               rtol=0, atol=1e-5)
    assert len(set(c.tolist())) == 8  # every component gets used
    # five images of one seed: one z, five distinct components
    group = sample_seed_edits(sampler.strategy, gen.z_dim, edits=5,
                              directions=sampler.directions, seed=11)
    assert torch.equal(group.z, group.z[:1].expand(5, -1))
    assert len(set(group.chosen[:, 0].tolist())) == 5
    with pytest.raises(CausalKitError, match="need 9 directions"):
        sample_seed_edits(sampler.strategy, gen.z_dim, edits=9,
                          directions=sampler.directions, seed=0)


# -- the on-the-fly source -------------------------------------------------------------------
@pytest.mark.parametrize("which", ["tiny", "small"])
def test_world_one_equals_the_rows_of_world_two(which, request):
    gen, sampler = request.getfixturevalue(which)
    src = OnTheFlySource(gen, sampler, batch_size=7, seed=5, precision="fp32",
                         classes=[1, 4, 6])
    full = src.batch(3)
    assert full["x"].shape == (7, 3, 32, 32) and full["x"].dtype == torch.float32
    assert full["x"].abs().max() <= 1 and full["x"].std() > 0.01
    assert full["y"].shape == (7, 3) and set(full["y"][:, 0].tolist()) <= {1, 4, 6}
    assert torch.equal(full["y"][:, 0], full["y"][:, 2])
    assert full["stream"].eq(1).all() and not full["real"].any()
    labels, lat = src.latents(3)
    for rank in (0, 1):
        part = src.batch(3, rank=rank, world=2)
        rows = slice(rank, None, 2)
        for key in ("y", "stream", "real", "env"):
            assert torch.equal(part[key], full[key][rows]), key
        part_labels, part_lat = src.latents(3, rank=rank, world=2)
        assert torch.equal(part_labels, labels[rows])
        assert torch.equal(part_lat.z_star, lat.z_star[rows])  # the same bits
        # the same image up to the CPU kernels' batch-size-dependent rounding
        torch.testing.assert_close(part["x"], full["x"][rows], rtol=0, atol=1e-4)
    again = OnTheFlySource(gen, sampler, batch_size=7, seed=5, precision="fp32",
                           classes=[1, 4, 6]).batch(3)
    assert torch.equal(again["x"], full["x"])  # a pure function of the step
    other = src.batch(4)
    assert not torch.equal(other["x"], full["x"])


def test_an_observational_stream_is_paired_with_the_interventional_one(tiny):
    gen, sampler = tiny
    obs = make_sampler(gen, "observational:t=1").sampler
    plain = OnTheFlySource(gen, obs, kind="obs", batch_size=5, seed=5, precision="fp32")
    edited = OnTheFlySource(gen, sampler, batch_size=5, seed=5, precision="fp32")
    batch = plain.batch(2)
    assert batch["stream"].eq(4).all() and batch["env"].eq(4).all()
    (y_obs, lat_obs), (y_int, lat_int) = plain.latents(2), edited.latents(2)
    assert torch.equal(y_obs, y_int) and torch.equal(lat_obs.z, lat_int.z)  # same noise
    assert torch.equal(lat_obs.z_star, lat_obs.z)
    assert not torch.equal(lat_int.z_star, lat_int.z)


def test_bf16_and_resizing(tiny):
    gen, sampler = tiny
    fp32 = OnTheFlySource(gen, sampler, batch_size=4, seed=1, precision="fp32").batch(0)
    bf16 = OnTheFlySource(gen, sampler, batch_size=4, seed=1, precision="bf16",
                          size=24).batch(0)
    assert bf16["x"].shape == (4, 3, 24, 24) and bf16["x"].dtype == torch.float32
    assert torch.equal(bf16["y"], fp32["y"])
    small = torch.nn.functional.interpolate(fp32["x"], size=(24, 24), mode="bilinear",
                                            antialias=True)
    err = (bf16["x"] - small).abs().mean()
    assert err < 0.1 * small.abs().mean(), float(err)  # bf16 rounding, not other images


def test_the_source_trains_through_the_engine(tiny):
    from robust_training.engine import FitConfig, fit

    gen, sampler = tiny
    src = OnTheFlySource(gen, sampler, batch_size=4, seed=0, size=28, precision="fp32")
    torch.manual_seed(0)
    _, info = fit(src, FitConfig(objective="erm", steps=2, checkpoint_every=2),
                  device="cpu", progress=False)
    assert info["steps"] == 2 and np.isfinite(info["last"]["loss"])


def test_bad_source_options_are_refused(tiny, small):
    gen, sampler = tiny
    for kwargs, message in ((dict(batch_size=0), "batch_size"),
                            (dict(batch_size=2, kind="fake"), "unknown stream kind"),
                            (dict(batch_size=2, precision="fp8"), "unknown precision"),
                            (dict(batch_size=2, classes=[12]), "outside"),
                            (dict(batch_size=2, size=2), "size")):
        with pytest.raises(CausalKitError, match=message):
            OnTheFlySource(gen, sampler, **kwargs)
    with pytest.raises(CausalKitError, match="another generator"):
        OnTheFlySource(small[0], sampler, batch_size=2)
    with pytest.raises(CausalKitError, match="rank 2 of world 2"):
        OnTheFlySource(gen, sampler, batch_size=2).batch(0, rank=2, world=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_overlapped_cuda_stream_gives_the_synchronous_batches(tiny_dir):
    gen = load_biggan_dir(tiny_dir, device="cuda")
    sampler = make_sampler(gen, STRATEGY).sampler
    ahead = OnTheFlySource(gen, sampler, batch_size=6, seed=2, overlap=True)
    plain = OnTheFlySource(gen, sampler, batch_size=6, seed=2, overlap=False)
    for step in (0, 1, 2, 5, 6):
        a, b = ahead.batch(step, device="cuda"), plain.batch(step, device="cuda")
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])


# -- pre-generation ---------------------------------------------------------------------------
RUN = dict(per_class=2, classes=[0, 3, 9], seed=4, shard_size=7, batch_size=4,
           edits_per_seed=5, progress=False)


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    gen, sampler = tiny
    out = tmp_path_factory.mktemp("pregen") / "one"
    result = pregenerate(gen, sampler, out, **RUN)
    return out, result, folder_bytes(out)


def test_layout_labels_and_manifest(tiny, reference):
    gen, sampler = tiny
    out, result, files = reference
    assert result["complete"] and result["images"] == 30 and result["shards"] == 5
    pngs = sorted(f for f in files if f.endswith(".png"))
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == pngs and len(pngs) == 30  # 3 classes x 2 x 5
    assert rows[0]["file"] == "0/0000_0.png" and rows[-1]["file"] == "9/0001_4.png"
    assert all(r["file"].split("/")[0] == r["label"] for r in rows)
    from PIL import Image

    with Image.open(out / pngs[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    for label in ("0", "3", "9"):
        for seed_index in ("0", "1"):
            group = [r for r in rows if r["label"] == label and r["seed_index"] == seed_index]
            assert [r["edit"] for r in group] == ["0", "1", "2", "3", "4"]
            assert len({r["noise_seed"] for r in group}) == 1
            comps = [int(r["components"]) for r in group]
            assert len(set(comps)) == 5  # five distinct components per seed
            # the record says how to remake the latent: its noise seed and its edits
            lat = sample_seed_edits(sampler.strategy, gen.z_dim, edits=5,
                                    directions=sampler.directions,
                                    seed=int(group[0]["noise_seed"]))
            assert lat.chosen[:, 0].tolist() == comps
            np.testing.assert_allclose([float(r["offsets"]) for r in group],
                                       lat.offsets[torch.arange(5), lat.chosen[:, 0]],
                                       rtol=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["images"] == 30
    assert manifest["counts"] == {"classes": 3, "seeds_per_class": 2, "edits_per_seed": 5,
                                  "images_per_class": 10}
    assert manifest["generator_sha256"] == generator_digest(gen)
    assert manifest["strategy"] == STRATEGY and manifest["classes"] == [0, 3, 9]
    assert "directions_key" in manifest and len(manifest["directions_sha256"]) == 64
    assert [s["index"] for s in manifest["shards"]] == list(range(5))
    assert sum(s["images"] for s in manifest["shards"]) == 30
    for shard in manifest["shards"]:
        assert shard["sha256"] == hashlib.sha256(files[shard["record"]]).hexdigest()


def test_a_folder_stream_reads_it(reference):
    from robust_training import imagenet_data

    if not hasattr(imagenet_data.FolderStream, "generated"):
        pytest.skip("FolderStream.generated (issue 26, part 1) is not in this tree yet")
    out, _, _ = reference
    stream = imagenet_data.FolderStream.generated(out, 4, kind="int")
    assert len(stream) == 30 and stream.kind == "int"


def test_two_workers_write_the_bytes_of_one(tiny, reference, tmp_path):
    gen, sampler = tiny
    out = tmp_path / "two"
    first = pregenerate(gen, sampler, out, worker=1, workers=2, **RUN)
    assert not first["complete"] and first["written_shards"] == 2  # shards 1 and 3
    assert not (out / "labels.csv").exists() and not (out / "manifest.json").exists()
    with pytest.raises(CausalKitError, match=r"3 of 5 shards .* are not done \(shards 0, 2, "
                                             r"4\)"):
        assemble(out)
    second = pregenerate(gen, sampler, out, worker=0, workers=2, **RUN)
    assert second["complete"] and second["written_shards"] == 3
    assert folder_bytes(out) == reference[2]
    before = (out / "manifest.json").read_bytes()
    assert assemble(out)["images"] == 30 and (out / "manifest.json").read_bytes() == before


def test_bad_settings_are_refused_before_anything_is_written(tiny, reference, tmp_path):
    gen, sampler = tiny
    out = tmp_path / "never"
    for kwargs, message in ((dict(per_class=0), "per_class"),
                            (dict(shard_size=-1), "shard_size"),
                            (dict(edits_per_seed=9), "need 9 directions"),
                            (dict(classes=[10]), "outside"),
                            (dict(precision="fp16"), "unknown precision"),
                            (dict(worker=2, workers=2), "impossible")):
        with pytest.raises(CausalKitError, match=message):
            pregenerate(gen, sampler, out, **{**RUN, **kwargs})
        assert not out.exists()
    with pytest.raises(CausalKitError, match=r"other settings \(differs in \['seed'\]\)"):
        pregenerate(gen, sampler, reference[0], **{**RUN, "seed": 5})


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from generators.biggan import load_biggan_dir
    from generators.sampling import make_sampler
    import generators.pregenerate as pg
    gen = load_biggan_dir(sys.argv[1], device="cpu")
    sampler = make_sampler(gen, sys.argv[3]).sampler
    writes = [0]
    real = pg.atomic_write_bytes
    def dying(path, data):
        writes[0] += 1
        if writes[0] == int(sys.argv[4]):  # in the middle of shard 1
            (path.parent / ("." + path.name + ".abc123.tmp")).write_bytes(data)
            real(path, data[: len(data) // 2])  # and a torn file under the final name
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, data)
    pg.atomic_write_bytes = dying
    pg.pregenerate(gen, sampler, sys.argv[2], per_class=2, classes=[0, 3, 9], seed=4,
                   shard_size=7, batch_size=4, edits_per_seed=5, progress=False)
""")


def test_kill_9_in_a_shard_then_rerun_gives_identical_bytes(tiny, tiny_dir, reference,
                                                            tmp_path):
    gen, sampler = tiny
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tiny_dir), str(out), STRATEGY,
                           "10"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(list((out / ".shards").glob("*.npz"))) == 1  # shard 0 done, shard 1 torn
    assert list(out.rglob(".*.tmp")) and not (out / "labels.csv").exists()
    result = pregenerate(gen, sampler, out, **RUN)
    assert result["complete"] and result["written_shards"] == 4
    assert result["generated_images"] == 23  # shards 1..4 only
    assert not list(out.rglob(".*.tmp"))
    assert folder_bytes(out) == reference[2]
