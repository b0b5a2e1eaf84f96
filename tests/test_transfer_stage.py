"""GenInt's transfer (L-BFGS Gram matching) and the sharded, resumable transfer stage."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from causalkit.errors import CausalKitError, DataError, WeightsMismatchError
from robust_training.transfer import (
    VGG19_STYLE_LAYERS,
    gram,
    statistics_transfer,
    transfer_features,
    vgg19_transfer_features,
)
from robust_training.transfer_stage import (
    LABEL_COLUMNS,
    assemble_transfer,
    write_transfer,
)

ROOT = Path(__file__).resolve().parents[1]
#: the stage's settings in these tests (10 images in shards of 4, batches of 3)
SETTINGS = dict(n=10, features="random:0", batch_size=3, shard_size=4, size=32,
                steps=(5, 8), seed=5, device="cpu", progress=False, io_threads=2)


def _photos(size: int) -> torch.Tensor:
    """Four real photos (scikit-image's), ``size`` x ``size``, in [-1, 1]."""
    from skimage import data

    from causalkit.datasets.image_folder import resize_center_crop

    arrays = [resize_center_crop(getattr(data, name)(), resize=size, crop=size)
              for name in ("chelsea", "astronaut", "coffee", "rocket")]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _edges(x: torch.Tensor) -> torch.Tensor:
    g = x.mean(1)
    return torch.cat([(g[:, :, 1:] - g[:, :, :-1]).flatten(1),
                      (g[:, 1:] - g[:, :-1]).flatten(1)], 1)


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def _style_gap(features, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image Gram distance of ``a`` and ``b`` over the style layers."""
    with torch.no_grad():
        fa, fb = features((a + 1) / 2), features((b + 1) / 2)
    return sum((gram(fa[i]) - gram(fb[i])).pow(2).mean(dim=(1, 2))
               for i in features.style_layers)


def test_transfer_moves_statistics_to_the_style_and_keeps_the_content():
    photos = _photos(48)
    content, style = photos, photos.roll(1, dims=0)  # every photo styled by another
    features = transfer_features("random:0")
    out = statistics_transfer(content, style, features, steps=20)
    assert out.shape == content.shape and out.min() >= -1 and out.max() <= 1
    before, after = _style_gap(features, content, style), _style_gap(features, out, style)
    assert torch.all(after < 0.05 * before), (before, after)
    # The content's edges survive; the style's do not appear.
    keep, take = _corr(_edges(out), _edges(content)), _corr(_edges(out), _edges(style))
    assert torch.all(keep > 0.5) and torch.all(keep > take + 0.4), (keep, take)
    # The colour statistics move to the style's.
    gap = (out.mean((2, 3)) - style.mean((2, 3))).abs().mean()
    assert gap < 0.5 * (content.mean((2, 3)) - style.mean((2, 3))).abs().mean()
    assert torch.equal(statistics_transfer(content, style, features, steps=0),
                       content.clamp(-1, 1))


def _vgg19_file(tmp_path: Path, arch: str = "vgg19") -> Path:
    from generators.perceptual import VGGFeatures

    torch.manual_seed(3)
    full = VGGFeatures(arch, ["pool5"])
    path = tmp_path / f"{arch}.pth"
    torch.save({f"features.{k}": v for k, v in full.features.state_dict().items()}, path)
    return path


def test_vgg19_features_are_the_official_layers_and_load_strictly(tmp_path):
    path = _vgg19_file(tmp_path)
    features = transfer_features(f"vgg19:{path}")
    assert features.net.layers == (0, 2, 5, 7, 10)  # conv1_1 .. conv3_1, before ReLU
    assert features.content_layers == (VGG19_STYLE_LAYERS.index("conv2_2"),)
    maps = features(torch.rand(1, 3, 16, 16))
    assert [m.shape[1] for m in maps] == [64, 64, 128, 128, 256]
    assert maps[0].min() < 0  # a conv output, not a ReLU's
    state = torch.load(path, weights_only=True)
    assert torch.equal(features.net.features[7].weight, state["features.7.weight"])
    assert len(features.digest) == 64
    photos = _photos(16)
    out = statistics_transfer(photos, photos.flip(0), features, steps=10)
    assert torch.all(_style_gap(features, out, photos.flip(0))
                     < _style_gap(features, photos, photos.flip(0)))
    with pytest.raises(WeightsMismatchError) as info:
        transfer_features(f"vgg19:{_vgg19_file(tmp_path, 'vgg16')}")
    assert "\n" not in str(info.value)
    assert vgg19_transfer_features().digest is None


def test_feature_spec_and_input_errors():
    with pytest.raises(CausalKitError, match="vgg19:PATH"):
        transfer_features("vgg19")
    with pytest.raises(DataError, match="does not exist"):
        transfer_features("vgg19:/no/such/file.pth")
    with pytest.raises(CausalKitError, match="unknown transfer features"):
        transfer_features("vgg16:x")
    with pytest.raises(CausalKitError, match="integer seed"):
        transfer_features("random:x")
    with pytest.raises(CausalKitError, match="one shape"):
        statistics_transfer(torch.zeros(2, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(CausalKitError, match="steps"):
        statistics_transfer(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), steps=-1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A Wildlife-MNIST ImageFolder (3 classes x 4 PNGs; textured like photos, where
    flat black grounds barely move in a few steps) and an interventional folder written
    by the generate stage's writer from a random small GAN (4 classes x 2)."""
    from causalkit.datasets import build_split
    from generators.sampling import make_sampler
    from generators.small_gan import build_small_gan
    from generators.writer import write_generated

    root = tmp_path_factory.mktemp("data")
    with warnings.catch_warnings():  # the offline 5,000-digit subset says so
        warnings.simplefilter("ignore")
        split = build_split("wildlife-mnist", "train", seed=0, source="embedded", n=60)
    real = root / "real"
    for c in range(3):
        (real / f"class{c}").mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(split.labels == c)[:4]):
            Image.fromarray(split.images[i].transpose(1, 2, 0)).save(
                real / f"class{c}" / f"{j}.png")
    gen = build_small_gan(seed=0)
    setup = make_sampler(gen, "t=0.8,k=4,s=1")
    write_generated(gen, setup.sampler, root / "int", per_class=2, classes=[0, 1, 2, 3],
                    shard_size=8, progress=False)
    return f"imagefolder:{real}", root / "int"


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "transfer"
    result = write_transfer(*data, out, **SETTINGS)
    return out, result, _snapshot(out)


def test_layout_labels_and_pairs(data, reference):
    real_spec, int_root = data
    out, result, files = reference
    assert result["complete"] and result["images"] == 10 and result["shards"] == 3
    assert result["generated_images"] == 10 and result["written_shards"] == 3
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert list(rows[0]) == list(LABEL_COLUMNS) and len(rows) == 10
    real_root = Path(real_spec.partition(":")[2])
    contents = [r["content"] for r in rows]
    assert len(set(contents)) == 10  # n <= N: no real image twice
    for r in rows:
        assert int(r["label"]) == int(r["content"].split("/")[0][-1])  # the real label
        assert r["file"].split("/")[0] == r["label"]  # class folder of the real label
        assert (int_root / r["style"]).is_file() and 5 <= int(r["steps"]) <= 8
        image = np.asarray(Image.open(out / r["file"]))
        assert image.shape == (32, 32, 3)
        source = np.asarray(Image.open(real_root / r["content"]).convert("RGB"))
        assert np.abs(image.astype(int) - source.astype(int)).mean() > 1  # restyled
    # Each batch of 3 has 3 distinct style classes, one step count.
    for start in (0, 4, 8):
        shard = rows[start:start + 4]
        batch = shard[:3] if len(shard) > 2 else shard
        assert len({r["style_label"] for r in batch}) == len(batch)
        assert len({r["steps"] for r in batch}) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["images"] == 10 and sorted(manifest["shard_sha256"]) == [
        f"shard-{s:06d}.json" for s in range(3)]
    assert sum(manifest["per_label"].values()) == 10
    assert manifest["settings"]["features"] == "random:0"
    from robust_training.imagenet_data import FolderStream

    preview = Image.open(out / "preview.png")  # 3 rows (real, style, transfer) x 8
    assert preview.size == (8 * 34 + 2, 3 * 34 + 2)
    stream = FolderStream.generated(out, 2, kind="transfer")
    assert len(stream) == 10 and list(stream.labels[:, 0]) == [int(r["label"]) for r in rows]


def test_webdataset_shards_give_the_same_images(data, reference, tmp_path):
    from robust_training.tar_shards import write_shards

    _, _, files = reference
    pattern = write_shards(data[0].partition(":")[2], tmp_path / "wds", shard_size=5)
    out = tmp_path / "from_tars"
    assert write_transfer(f"webdataset:{pattern}", data[1], out, **SETTINGS)["complete"]
    pngs = {k: v for k, v in _snapshot(out).items() if k.endswith(".png")}
    assert pngs == {k: v for k, v in files.items() if k.endswith(".png")}
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert all(".tar/" in r["content"] for r in rows)


def test_seeded_and_two_workers_write_the_same_bytes(data, reference, tmp_path):
    _, _, files = reference
    out = tmp_path / "two"
    first = write_transfer(*data, out, worker=1, workers=2, **SETTINGS)
    assert first["shards_of_worker"] == 1 and not first["complete"]
    assert not (out / "labels.csv").exists()
    second = write_transfer(*data, out, worker=0, workers=2, **SETTINGS)
    assert second["complete"] and second["written_shards"] == 2
    assert _snapshot(out) == files
    again = write_transfer(*data, out, **SETTINGS)  # all done: nothing rewritten
    assert again["written_shards"] == 0 and again["complete"]
    other = write_transfer(*data, tmp_path / "seed6", **{**SETTINGS, "seed": 6})
    assert other["complete"] and _snapshot(tmp_path / "seed6") != files


_KILLER = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)  # as the test process (conftest): CPU sums depend on threads
    import robust_training.transfer_stage as stage
    writes = [0]
    real = stage.atomic_write_bytes
    def dying(path, data):
        writes[0] += 1
        if writes[0] == 6:  # shard 0 done (4 PNGs, then its record), shard 1 has 1 PNG
            real(path, data[: len(data) // 2])  # a torn file under the final name
            stale = path.parent / f".{path.name}.k1ll3d00.tmp"  # and a temporary one
            stale.write_bytes(data[:10])
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, data)
    stage.atomic_write_bytes = dying
    settings = dict(n=10, features="random:0", batch_size=3, shard_size=4, size=32,
                    steps=(5, 8), seed=5, device="cpu", progress=False, io_threads=2)
    stage.write_transfer(sys.argv[1], sys.argv[2], sys.argv[3], **settings)
""")


def test_resume_after_kill_9_is_byte_identical(data, reference, tmp_path):
    _, _, files = reference
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLER, data[0], str(data[1]), str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (out / "labels.csv").exists()
    assert [p.name for p in (out / ".shards").glob("*.json")] == ["shard-000000.json"]
    assert len(list(out.rglob(".*.tmp"))) == 1
    result = write_transfer(*data, out, **SETTINGS)
    assert result["complete"] and result["skipped_shards"] == 1
    assert result["generated_images"] == 6
    assert _snapshot(out) == files


def test_bad_inputs_fail_before_anything_is_written(data, tmp_path):
    real_spec, int_root = data
    out = tmp_path / "never"
    cases = [
        (dict(real_spec=real_spec, int_root=tmp_path / "missing"), DataError, "does not exist"),
        (dict(real_spec=real_spec, int_root=tmp_path), DataError, "no labels.csv"),
        (dict(real_spec="folder:/x", int_root=int_root), CausalKitError, "imagefolder:DIR"),
        (dict(real_spec=f"imagefolder:{tmp_path / 'nope'}", int_root=int_root), DataError,
         "does not exist"),
        (dict(real_spec=real_spec, int_root=int_root, features="vgg19"), CausalKitError,
         "vgg19:PATH"),
        (dict(real_spec=real_spec, int_root=int_root,
              features=f"vgg19:{_vgg19_file(tmp_path, 'vgg16')}"), WeightsMismatchError,
         "torchvision's vgg19"),
        (dict(real_spec=real_spec, int_root=int_root, worker=2, workers=2), CausalKitError,
         "worker 2 of 2"),
        (dict(real_spec=real_spec, int_root=int_root, steps=(5, 2)), CausalKitError, "steps"),
        (dict(real_spec=real_spec, int_root=int_root, n=0), CausalKitError, "n must be"),
        (dict(real_spec=real_spec, int_root=int_root, device="cuda:7"), CausalKitError,
         "cuda"),
    ]
    base = {k: v for k, v in SETTINGS.items() if k != "device"}
    for kwargs, error, match in cases:
        options = {**base, **{k: v for k, v in kwargs.items()
                              if k not in ("real_spec", "int_root")}}
        with pytest.raises(error, match=match) as info:
            write_transfer(kwargs["real_spec"], kwargs["int_root"], out, **options)
        assert "\n" not in str(info.value), str(info.value)
        assert not out.exists(), kwargs
    done = tmp_path / "done"
    write_transfer(real_spec, int_root, done, **{**SETTINGS, "n": 2, "shard_size": 2})
    with pytest.raises(CausalKitError, match="other settings"):
        write_transfer(real_spec, int_root, done, **{**SETTINGS, "n": 2, "shard_size": 2,
                                                     "seed": 1})
    write_transfer(real_spec, int_root, tmp_path / "part", **{**SETTINGS, "worker": 0,
                                                               "workers": 2})
    with pytest.raises(CausalKitError, match="not done"):
        assemble_transfer(tmp_path / "part")
