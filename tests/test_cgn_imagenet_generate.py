"""Counterfactual ImageNet: shards, ranks, resume after kill -9, labels.csv, modes, tar.

The CGN is the real ImageNet CGN on a tiny random BigGAN with the real u2netp
(``tests/_cgn_imagenet_helpers.py``).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from _cgn_imagenet_helpers import folder_bytes, tiny_cgn, tiny_cgn_file

from causalkit.errors import CausalKitError
from generators.cgn.imagenet.generate import (
    LABEL_COLUMNS,
    GenerationSettings,
    noise_from_seed,
    read_labels,
    write_counterfactual_imagenet,
)
from generators.images import to_uint8

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cgn():
    torch.manual_seed(0)
    return tiny_cgn()


def _write(cgn, out, settings, **kw):
    return write_counterfactual_imagenet(cgn, out, settings, batch_size=3, progress=False, **kw)


def test_two_ranks_write_the_one_rank_set(cgn, tmp_path):
    settings = GenerationSettings(n=10, shard_size=4, seed=3)
    one = _write(cgn, tmp_path / "one", settings, rank=0, world=1)
    assert one["complete"] and one["shards"] == 3
    first = _write(cgn, tmp_path / "two", settings, rank=0, world=2)
    assert not first["complete"] and first["written_shards"] == 2  # shards 0 and 2
    assert not (tmp_path / "two" / "labels.csv").exists()
    second = _write(cgn, tmp_path / "two", settings, rank=1, world=2)
    assert second["complete"] and second["generated_images"] == 4
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")


def test_a_rank_removes_only_its_own_stale_temps(cgn, tmp_path):
    # ranks start at different times: rank 0 must not delete the temps rank 1 is
    # writing (shard 1 holds images 4..7), only those a killed run of its own left
    out = tmp_path / "cf"
    (out / "0").mkdir(parents=True)
    own, other, index = (out / "0" / ".0000001.png.a1.tmp", out / "0" / ".0000005.png.b2.tmp",
                         out / ".labels.csv.c3.tmp")
    for f in (own, other, index):
        f.write_bytes(b"partial")
    _write(cgn, out, GenerationSettings(n=10, shard_size=4, seed=3), rank=0, world=2,
           stop_after=0)
    assert not own.exists() and other.exists() and index.exists()


def test_labels_csv_names_exactly_the_written_files(cgn, tmp_path):
    out = tmp_path / "cf"
    _write(cgn, out, GenerationSettings(n=7, shard_size=3, seed=1))
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == LABEL_COLUMNS
    listed = [r[0] for r in rows[1:]]
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert sorted(listed) == on_disk and len(listed) == 7
    table = read_labels(out)
    for f, shape in zip(table["file"], table["shape"], strict=True):
        assert Path(f).parts[0] == str(shape)  # ImageFolder layout by the shape label
    # the classifier's reader opens these names
    from robust_training.imagenet_data import FolderStream

    stream = FolderStream.counterfactual(out, 2)
    assert len(stream) == 7
    assert stream.labels[:, 0].tolist() == table["shape"].tolist()


def test_recorded_seeds_and_labels_give_the_image_back(cgn, tmp_path):
    out = tmp_path / "cf"
    _write(cgn, out, GenerationSettings(n=4, shard_size=4, seed=5, noise="separate"))
    table = read_labels(out)
    assert (table["seed_shape"] != table["seed_texture"]).all()  # separate noise
    i = 2
    u = {m: noise_from_seed(table[f"seed_{m}"][i], cgn.dim_z) for m in
         ("shape", "texture", "background")}
    y = {m: torch.tensor([int(table[m][i])]) for m in ("shape", "texture", "background")}
    with torch.no_grad():
        image = to_uint8(cgn(u, y).image)[0].permute(1, 2, 0).numpy()
    from causalkit.datasets.image_folder import read_image

    assert np.array_equal(read_image(out / table["file"][i]), image)


def test_shared_noise_and_modes(cgn, tmp_path):
    _write(cgn, tmp_path / "fixed", GenerationSettings(n=3, shard_size=3, mode="fixed",
                                                       classes=(1, 2, 3)))
    table = read_labels(tmp_path / "fixed")
    assert set(table["shape"]) == {1} and set(table["texture"]) == {2}
    assert set(table["background"]) == {3}
    assert (table["seed_shape"] == table["seed_background"]).all()  # shared noise
    assert len(set(table["seed_shape"])) == 3  # one noise draw per image
    with pytest.raises(CausalKitError, match="best shape classes"):
        _write(cgn, tmp_path / "best", GenerationSettings(n=2, mode="best-classes"))
    with pytest.raises(CausalKitError, match="needs classes"):
        _write(cgn, tmp_path / "nofixed", GenerationSettings(n=2, mode="fixed"))
    assert not (tmp_path / "best").exists() and not (tmp_path / "nofixed").exists()


def test_interpolation_sheet_moves_one_mechanism(cgn, tmp_path):
    out = tmp_path / "interp"
    settings = GenerationSettings(n=1, shard_size=8, mode="fixed", classes=(1, 2, 3),
                                  interpolate="texture", interp_class=7, midpoints=2)
    _write(cgn, out, settings)
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["alpha"]) for r in rows] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert {r["target"] for r in rows} == {"7"}
    table = read_labels(out)
    u = noise_from_seed(table["seed_shape"][0], cgn.dim_z)
    ends = []
    for texture in (2, 7):  # alpha 0 and 1 are the plain images of the two classes
        y = {"shape": torch.tensor([1]), "texture": torch.tensor([texture]),
             "background": torch.tensor([3])}
        with torch.no_grad():
            ends.append(to_uint8(cgn({m: u for m in y}, y).image)[0].permute(1, 2, 0))
    from causalkit.datasets.image_folder import read_image

    first, last = (read_image(out / table["file"][j]) for j in (0, 3))
    assert np.abs(first.astype(int) - ends[0].numpy()).max() <= 1
    assert np.abs(last.astype(int) - ends[1].numpy()).max() <= 1
    assert not np.array_equal(first, last)


def test_tar_shards_hold_images_and_labels(cgn, tmp_path):
    import json
    import tarfile

    out = tmp_path / "tar"
    _write(cgn, out, GenerationSettings(n=5, shard_size=3, tar=True))
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-000000.tar",
                                                                "shard-000001.tar"]
    with tarfile.open(out / "shards" / "shard-000000.tar") as tar:
        names = tar.getnames()
        label = json.loads(tar.extractfile("0000001.json").read())
    assert names == ["0000000.png", "0000000.json", "0000001.png", "0000001.json",
                     "0000002.png", "0000002.json"]
    table = read_labels(out)
    assert label["shape"] == table["shape"][1] and label["seed_texture"] == \
        table["seed_texture"][1]
    from robust_training.imagenet_data import FolderStream, decode

    stream = FolderStream.counterfactual(out, 2)
    assert decode(stream.files[4]).shape == (32, 32, 3)


def test_other_settings_in_the_same_folder_are_refused(cgn, tmp_path):
    out = tmp_path / "cf"
    _write(cgn, out, GenerationSettings(n=2, shard_size=2, seed=0))
    with pytest.raises(CausalKitError, match="other settings"):
        _write(cgn, out, GenerationSettings(n=2, shard_size=2, seed=1))


_KILLER = textwrap.dedent("""
    import os, signal, sys
    import generators.cgn.imagenet.generate as gen
    from generators.cgn.imagenet import load_cgn_imagenet
    cgn = load_cgn_imagenet(sys.argv[1], device="cpu").eval()
    writes = [0]
    real = gen.atomic_write_bytes
    def dying(path, data):
        writes[0] += 1
        if writes[0] == int(sys.argv[3]):  # half-way through a shard, after a file
            real(path, data[: len(data) // 2])  # and a torn file under the final name
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, data)
    gen.atomic_write_bytes = dying
    gen.write_counterfactual_imagenet(cgn, sys.argv[2], gen.GenerationSettings(
        n=9, shard_size=4, seed=2), batch_size=3, progress=False)
""")


def test_resume_after_kill_9_is_byte_identical(cgn, tmp_path):
    settings = GenerationSettings(n=9, shard_size=4, seed=2)
    _write(cgn, tmp_path / "clean", settings)
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tiny_cgn_file()), str(out), "6"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (out / "labels.csv").exists()
    assert len(list((out / ".shards").glob("*.npz"))) == 1  # shard 0 done, shard 1 torn
    result = _write(cgn, out, settings)
    assert result["complete"] and result["generated_images"] == 5  # shards 1 and 2 only
    assert folder_bytes(out) == folder_bytes(tmp_path / "clean")
