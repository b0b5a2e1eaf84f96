"""The one image-folder reader: listing, decoding, corrupt files, the ImageNet view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from causalkit.datasets.image_folder import (
    ImageFolderDataset,
    list_image_folder,
    read_image,
    resize_center_crop,
    skip_none_collate,
    to_tensor,
)
from causalkit.errors import DataError


def _write(path, shape=(20, 30), seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return array


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    _write(root / "b_dog" / "1.png", seed=1)
    _write(root / "b_dog" / "sub" / "2.JPEG", seed=2)
    _write(root / "a_cat" / "3.png", seed=3)
    (root / "a_cat" / "notes.txt").write_text("not an image")
    return root


def test_lists_sorted_classes_and_nested_files(tree):
    images = list_image_folder(tree)
    assert images.classes == ("a_cat", "b_dog")
    assert [p.name for p in images.paths] == ["3.png", "1.png", "2.JPEG"]
    assert images.labels == (0, 1, 1)
    assert images.counts == {"a_cat": 1, "b_dog": 2}


def test_given_class_order_sets_labels(tree):
    images = list_image_folder(tree, classes=["b_dog", "a_cat"])
    assert images.labels == (0, 0, 1)
    assert images.subset([2]).counts == {"b_dog": 0, "a_cat": 1}


@pytest.mark.parametrize("case, words", [
    ("missing root", "does not exist"),
    ("missing class", "lacks 1 class folder"),
    ("empty class", "hold no images"),
    ("flat", "no class subfolders"),
])
def test_layout_errors_name_problem(tree, tmp_path, case, words):
    with pytest.raises(DataError, match=words):
        if case == "missing root":
            list_image_folder(tmp_path / "nope")
        elif case == "missing class":
            list_image_folder(tree, classes=["a_cat", "zebra"])
        elif case == "empty class":
            (tree / "c_empty").mkdir()
            list_image_folder(tree)
        else:
            flat = tmp_path / "flat"
            _write(flat / "x.png")
            list_image_folder(flat)


def test_read_image_converts_modes_and_rejects_corrupt(tmp_path):
    rgb = _write(tmp_path / "a.png", seed=4)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)
    _write(tmp_path / "g.png", mode="L")
    assert read_image(tmp_path / "g.png").shape == (20, 30, 3)
    Image.fromarray(rgb).save(tmp_path / "t.jpg", quality=90)
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.jpg is truncated or corrupt"):
        read_image(tmp_path / "t.jpg")
    (tmp_path / "n.jpg").write_bytes(b"hello")
    with pytest.raises(DataError, match="n.jpg is not a readable image"):
        read_image(tmp_path / "n.jpg")


def test_dataset_skips_and_counts_corrupt_files(tree):
    (tree / "a_cat" / "bad.png").write_bytes(b"\x89PNG broken")
    strict = ImageFolderDataset(tree, transform=to_tensor)
    with pytest.raises(DataError, match="bad.png"):
        [strict[i] for i in range(len(strict))]
    data = ImageFolderDataset(tree, transform=to_tensor, on_corrupt="skip")
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=skip_none_collate)
    (images, labels), skipped = next(iter(loader))
    assert skipped == 1 and data.skipped == 1
    assert images.shape == (3, 3, 20, 30) and labels.tolist() == [0, 1, 1]
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_resize_center_crop_matches_torchvision_rule():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(300, 451, 3), dtype=np.uint8)
    out = resize_center_crop(image, resize=256, crop=224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    # torchvision: long side int(256 * 451 / 300) = 384, antialiased bilinear, then
    # the crop at round((384 - 224) / 2) = 80 and round((256 - 224) / 2) = 16.
    ref = np.asarray(Image.fromarray(image).resize((384, 256), Image.BILINEAR))
    assert np.array_equal(out, ref[16:240, 80:304])
    small = resize_center_crop(image[:10, :10], resize=None, crop=14)
    assert small.shape == (14, 14, 3) and small[0].sum() == 0
