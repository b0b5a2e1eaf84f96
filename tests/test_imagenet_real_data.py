"""Real training data for the ImageNet path: ImageFolder and WebDataset specs, per-rank
rows, resumable epochs, the device half of the augmentation, generated folders, the
evaluation view and unreadable images -- on a colored-MNIST ImageFolder of PNGs."""

from __future__ import annotations

import hashlib
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from causalkit.datasets.image_folder import read_image, resize_center_crop
from causalkit.errors import CausalKitError, DataError
from robust_training.augment import apply_batch, draw_row_params
from robust_training.imagenet_data import (
    EvenBatches,
    FolderStream,
    parse_spec,
    real_source,
    val_batches,
)
from robust_training.tar_shards import expand_pattern, list_samples, write_shards

KEYS = ("x", "y", "stream", "real", "env")


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in KEYS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Colored MNIST (rho = 1: colour tells the digit) as ``root/<digit>/<i>.png``."""
    from causalkit.datasets import build_split

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the embedded-MNIST note
        split = build_split("colored-mnist", "train", rho=1.0, seed=0, source="embedded",
                            n=45, cache=False)
    root = tmp_path_factory.mktemp("real") / "train"
    for i, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(root / str(label) / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory) -> str:
    return write_shards(folder, tmp_path_factory.mktemp("wds"), shard_size=16)


def test_specs_are_checked_before_any_reading(folder, tmp_path):
    assert parse_spec(f"imagefolder:{folder}") == ("imagefolder", str(folder))
    for bad in ("imagenet/train", "folder:x", "imagefolder:", "webdataset"):
        with pytest.raises(CausalKitError, match="imagefolder:DIR, webdataset:PATTERN"):
            real_source(bad, batch_size=2, steps=1)
    with pytest.raises(CausalKitError, match="unknown augment"):
        real_source(f"imagefolder:{folder}", batch_size=2, steps=1, augment="tpu")
    with pytest.raises(CausalKitError, match="batch_size"):
        real_source(f"imagefolder:{folder}", batch_size=0, steps=1)
    with pytest.raises(DataError, match="does not exist"):
        real_source(f"imagefolder:{tmp_path / 'nope'}", batch_size=2, steps=1)
    with pytest.raises(DataError, match="matches no file"):
        real_source(f"webdataset:{tmp_path}/*.tar", batch_size=2, steps=1)
    with pytest.raises(CausalKitError, match="backwards"):
        expand_pattern(f"{tmp_path}/s-{{9..1}}.tar")
    with pytest.raises(CausalKitError, match="jitter"):
        real_source(f"imagefolder:{folder}", batch_size=2, steps=1, jitter=2.0)


def test_ranks_split_the_global_batch(folder):
    source = real_source(f"imagefolder:{folder}", batch_size=6, steps=20, size=16, seed=4)
    full = source.batch(7)
    assert full["x"].shape == (6, 3, 16, 16) and full["real"].all()
    assert full["x"].min() >= -1 and full["x"].max() <= 1
    for world in (2, 3):
        parts = [source.batch(7, rank=r, world=world) for r in range(world)]
        for key in KEYS:
            joined = torch.empty_like(full[key])
            for r, part in enumerate(parts):
                joined[r::world] = part[key]
            assert torch.equal(joined, full[key]), (world, key)
    assert (full["y"] == full["y"][:, :1]).all()  # a real image's three labels agree


def test_a_fresh_construction_resumes_mid_epoch_and_in_workers(folder):
    spec, n = f"imagefolder:{folder}", 45
    run = real_source(spec, batch_size=6, steps=20, size=16, seed=1)
    batches = [run.batch(s) for s in range(16)]  # 7 steps per epoch: crosses two epochs
    fresh = real_source(spec, batch_size=6, steps=20, size=16, seed=1)
    assert _same(fresh.batch(11), batches[11])
    workers = real_source(spec, batch_size=6, steps=20, size=16, seed=1, num_workers=2)
    assert all(_same(workers.batch(s), batches[s]) for s in (9, 10, 11))
    # an epoch sees every image once; the next epoch has another order
    spe = run.steps_per_epoch()
    first = np.concatenate([run.indices(0, s) for s in range(spe)])
    assert spe == n // 6 and len(set(first.tolist())) == len(first) == spe * 6
    assert sorted(np.concatenate([first, run.indices(0, spe)[:n - spe * 6]]).tolist()) \
        == list(range(n))
    other = real_source(spec, batch_size=6, steps=20, size=16, seed=2).batch(11)
    assert not torch.equal(other["x"], batches[11]["x"])


def test_webdataset_shards_give_the_imagefolder_batches(folder, shards, tmp_path):
    assert len(expand_pattern(shards)) == 3  # 45 images, 16 per shard
    a = real_source(f"imagefolder:{folder}", batch_size=5, steps=12, size=16, seed=3)
    b = real_source(f"webdataset:{shards}", batch_size=5, steps=12, size=16, seed=3,
                    num_workers=1)
    assert all(_same(a.batch(s), b.batch(s)) for s in (0, 1, 9, 10))
    x_a = next(val_batches(f"imagefolder:{folder}", 8, resize=36, crop=32))
    x_b = next(val_batches(f"webdataset:{shards}", 8, resize=36, crop=32))
    assert torch.equal(x_a[0], x_b[0]) and torch.equal(x_a[1], x_b[1])
    # a shard's bytes depend only on its images: a deleted shard comes back the same
    first = Path(expand_pattern(shards)[1])
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    first.unlink()
    assert write_shards(folder, first.parent, shard_size=16) == shards
    assert hashlib.sha256(first.read_bytes()).hexdigest() == digest
    with pytest.raises(CausalKitError, match="other settings"):
        write_shards(folder, first.parent, shard_size=8)


def test_bad_shards_name_the_sample(tmp_path):
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        for name in ("a.png", "a.cls", "b.png"):
            (tmp_path / name).write_bytes(b"0")
            tar.add(tmp_path / name, arcname=name)
    with pytest.raises(DataError, match="'b'.*no a .cls label"):
        list_samples(good)
    data = (tmp_path / "good.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[:700])
    with pytest.raises(DataError, match="cut.tar"):
        list_samples(tmp_path / "cut.tar")


def _device_matches_workers(spec: str, jitter: float) -> None:
    cpu = real_source(spec, batch_size=6, steps=4, size=16, seed=5, jitter=jitter)
    gpu = real_source(spec, batch_size=6, steps=4, size=16, seed=5, jitter=jitter,
                      augment="gpu")
    assert all(_same(cpu.batch(s), gpu.batch(s)) for s in range(3))
    if torch.cuda.is_available():  # the same rows on a real device
        on_cuda = gpu.batch(2, device="cuda")
        assert torch.allclose(on_cuda["x"].cpu(), cpu.batch(2)["x"], atol=1e-5)


def test_device_augmentation_equals_the_worker_augmentation(folder):
    _device_matches_workers(f"imagefolder:{folder}", 0.0)
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.uint8).view(2, 3, 2, 4)
    out = apply_batch(x, torch.tensor([True, False]))
    assert torch.equal(out[0], x[0].flip(-1).float() / 127.5 - 1)
    assert torch.equal(out[1], x[1].float() / 127.5 - 1)
    with pytest.raises(CausalKitError, match="uint8"):
        apply_batch(x.float(), torch.tensor([True, False]))


def test_colour_jitter_is_seeded_per_row_and_keeps_crops_and_flips(folder):
    pytest.importorskip("kornia", reason="colour jitter runs through kornia")
    spec = f"imagefolder:{folder}"
    _device_matches_workers(spec, 0.4)
    plain = real_source(spec, batch_size=6, steps=4, size=16, seed=5).batch(1)
    jittered = real_source(spec, batch_size=6, steps=4, size=16, seed=5, jitter=0.4).batch(1)
    assert not torch.equal(plain["x"], jittered["x"]) and torch.equal(plain["y"], jittered["y"])
    # jitter draws after the flip, so the crops and flips stay those of the plain run
    rng_a, rng_b = (np.random.default_rng(9) for _ in range(2))
    assert draw_row_params(rng_a, (0.0,) * 3)[0] == draw_row_params(rng_b, (0.4,) * 3)[0]
    # brightness alone multiplies: factors are the drawn ones, row by row
    x = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    factors = torch.tensor([[0.5, 1.0, 1.0], [1.2, 1.0, 1.0]])
    out = apply_batch(x, torch.tensor([False, False]), factors, backend="kornia")
    assert torch.allclose((out + 1) / 2 * 255, torch.tensor([50.0, 120.0]).view(2, 1, 1, 1)
                          .expand(2, 3, 4, 4), atol=1e-3)


def test_generated_folder_is_read_by_its_labels_csv(folder, tmp_path):
    root = tmp_path / "int"
    listed = []
    for i, png in enumerate(sorted(folder.rglob("*.png"))[:9]):
        (root / f"{i % 3:04d}").mkdir(parents=True, exist_ok=True)
        name = f"{i % 3:04d}/{i:06d}.png"
        (root / name).write_bytes(png.read_bytes())
        listed.append((name, 10 + i % 3))
    (root / "0000" / "stray.png").write_bytes(png.read_bytes())  # not in labels.csv
    (root / "labels.csv").write_text("file,label,offset_0\n" + "".join(
        f"{f},{y},0.5\n" for f, y in listed))
    stream = FolderStream.generated(root, 3)
    assert stream.kind == "int" and [Path(f).relative_to(root).as_posix()
                                     for f in stream.files] == [f for f, _ in listed]
    assert stream.labels[:, 0].tolist() == [y for _, y in listed]
    batch = EvenBatches([FolderStream.real(folder, 2), stream], steps=3, size=16).batch(0)
    assert batch["stream"].tolist() == [0, 0, 1, 1, 1]
    assert batch["real"].tolist() == [True, True, False, False, False]
    subset = FolderStream.generated(root, 3, classes=[12, 10])
    assert len(subset) == 6 and set(subset.labels[:, 0].tolist()) == {0, 1}
    (root / listed[4][0]).unlink()
    with pytest.raises(DataError, match="missing"):
        FolderStream.generated(root, 3)
    with pytest.raises(DataError, match="labels.csv"):
        FolderStream.generated(folder, 3)


def test_val_batches_are_the_evaluation_view_in_order(folder):
    paths = sorted(folder.rglob("*.png"), key=lambda p: (p.parent.name, p.name))
    batches = list(val_batches(f"imagefolder:{folder}", 16, resize=40, crop=36))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (45, 3, 36, 36) and 0 <= x.min() and x.max() <= 1 and y.ndim == 1
    want = resize_center_crop(read_image(paths[20]), resize=40, crop=36)
    assert torch.equal(x[20], torch.from_numpy(want).permute(2, 0, 1).float() / 255)
    assert y.tolist() == [int(p.parent.name) for p in paths]
    ranks = [torch.cat([b[1] for b in val_batches(f"imagefolder:{folder}", 7, rank=r,
                                                  world=2)]) for r in (0, 1)]
    assert torch.equal(ranks[0], y[0::2]) and torch.equal(ranks[1], y[1::2])


def test_unreadable_images_raise_or_are_skipped(folder, tmp_path):
    import shutil

    root = tmp_path / "train"
    shutil.copytree(folder, root)
    bad = sorted(root.rglob("*.png"))[3]
    bad.write_bytes(bad.read_bytes()[:60])  # a truncated PNG
    spec = f"imagefolder:{root}"
    source = real_source(spec, batch_size=45, steps=1, size=16)
    with pytest.raises(DataError, match=bad.name):
        source.batch(0)
    with pytest.warns(UserWarning, match=bad.name):
        kept = real_source(spec, batch_size=45, steps=1, size=16, on_corrupt="skip").batch(0)
    again = real_source(spec, batch_size=45, steps=1, size=16, on_corrupt="skip").batch(0)
    assert kept["x"].shape[0] == 45 and _same(kept, again)
    with pytest.raises(DataError, match=bad.name):
        list(val_batches(spec, 16, resize=36, crop=32))
    with pytest.warns(UserWarning, match=bad.name):
        y = torch.cat([b[1] for b in val_batches(spec, 16, resize=36, crop=32,
                                                 on_corrupt="skip")])
    assert len(y) == 44


def test_the_generate_stage_writer_output_is_read_as_written(folder, tmp_path):
    from generators.small_gan import build_small_gan
    from generators.strategies import InterventionSampler, Observational
    from generators.writer import write_generated

    gen = build_small_gan(seed=0)
    out = tmp_path / "int"
    write_generated(gen, InterventionSampler(gen, Observational(0.5)), out, per_class=2,
                    classes=[1, 4, 7], shard_size=4, progress=False)
    stream = FolderStream.generated(out, 2)
    assert stream.labels[:, 0].tolist() == [1, 1, 4, 4, 7, 7]
    assert np.array_equal(read_image(stream.files[3]), np.asarray(Image.open(
        out / "4" / "000001.png").convert("RGB")))
    relabelled = FolderStream.from_spec(f"generated:{out}", 2, kind="int", classes=[7, 1])
    assert relabelled.labels[:, 0].tolist() == [1, 1, 0, 0]
    both = EvenBatches([FolderStream.real(folder, 3), relabelled], steps=2, size=16, seed=0)
    batch = both.batch(1, rank=1, world=2)
    assert batch["stream"].tolist() == [0, 1] and batch["x"].shape == (2, 3, 16, 16)


def test_a_shard_replaced_on_disk_is_indexed_again(tmp_path):
    from robust_training.tar_shards import read_member

    def shard(payloads: dict[str, bytes]) -> None:
        with tarfile.open(tmp_path / "s.tar", "w") as tar:
            for name, data in payloads.items():
                (tmp_path / "m").write_bytes(data)
                tar.add(tmp_path / "m", arcname=name)

    shard({"a.png": b"first"})
    assert read_member(tmp_path / "s.tar", "a.png") == b"first"
    shard({"pad.bin": b"x" * 3000, "a.png": b"second!"})
    assert read_member(tmp_path / "s.tar", "a.png") == b"second!"
    with pytest.raises(DataError, match="no member b.png"):
        read_member(tmp_path / "s.tar", "b.png")
