"""Texture-OOD sets for Wildlife MNIST: unseen textures, same geometry, one role at a time."""

from __future__ import annotations

import numpy as np
import pytest

from causalkit.datasets import build_split
from causalkit.datasets.texture_sets import (
    TEXTURE_SETS,
    VALIDATION_SETS,
    _crop,
    _photo,
    check_texture_spec,
    texture_set_folder,
)
from causalkit.datasets.textures import load_texture_folder, procedural_textures
from causalkit.errors import CausalKitError, DataError
from robust_training.experiments.cgn_mnist import preset_config

pytest.importorskip("skimage")


@pytest.fixture
def training(tmp_path):
    """A training texture folder (the procedural stripes and veins, written as PNGs)."""
    from PIL import Image

    root = tmp_path / "train_textures"
    for role, kind in (("object", "stripes"), ("background", "veins")):
        (root / role).mkdir(parents=True)
        for k, tex in enumerate(procedural_textures(kind)):
            Image.fromarray(tex).save(root / role / f"{k}_{kind}.png")
    return root


def test_sets_are_ten_distinct_textures_per_role_from_disjoint_photos(tmp_path):
    for name, roles in TEXTURE_SETS.items():
        assert {p for p, *_ in roles["object"]}.isdisjoint(p for p, *_ in roles["background"])
        folder = texture_set_folder(name, root=tmp_path)
        banks = [load_texture_folder(folder / r) for r in ("object", "background")]
        for bank in banks:
            flat = bank.reshape(10, -1).astype(np.int16)
            # every pair of textures differs clearly (no crop repeated)
            diffs = np.abs(flat[:, None] - flat[None]).mean(-1)
            assert (diffs[~np.eye(10, dtype=bool)] > 5).all()
        assert not np.array_equal(banks[0], procedural_textures("stripes"))


def test_the_photo_validation_set_shares_no_photo_and_no_pixel():
    """``photos-val`` uses no photo of a reported set, and its crops of one photo do not
    overlap, so no pixel is scored twice."""
    def photos(name):
        return {p for crops in TEXTURE_SETS[name].values() for p, *_ in crops}

    assert "photos-val" in VALIDATION_SETS
    for name in set(TEXTURE_SETS) - set(VALIDATION_SETS):
        assert photos("photos-val").isdisjoint(photos(name))
    for crops in TEXTURE_SETS["photos-val"].values():
        image = _photo(crops[0][0])
        index = np.arange(image.shape[0] * image.shape[1]).reshape(image.shape[:2])
        seen = np.concatenate([_crop(index, *c[1:]).ravel() for c in crops])
        assert len(np.unique(seen)) == len(seen)
        assert len(seen) > 0.5 * index.size  # most of the photo is used


def test_one_role_keeps_the_training_textures_of_the_other(tmp_path, training):
    obj = texture_set_folder("photos:object", training=training, root=tmp_path)
    bg = texture_set_folder("photos:background", training=training, root=tmp_path)
    both = texture_set_folder("photos", root=tmp_path)
    np.testing.assert_array_equal(load_texture_folder(obj / "background"),
                                  load_texture_folder(training / "background"))
    np.testing.assert_array_equal(load_texture_folder(obj / "object"),
                                  load_texture_folder(both / "object"))
    np.testing.assert_array_equal(load_texture_folder(bg / "object"),
                                  load_texture_folder(training / "object"))


def test_a_set_is_written_once_whatever_the_training_files_are(tmp_path, training):
    """A second call (a parallel run, say) finds the set whole and leaves it in place,
    also when the copied training textures are JPEGs, as the shipped ones are."""
    from PIL import Image

    jpegs = tmp_path / "jpeg_textures"
    for role in ("object", "background"):
        (jpegs / role).mkdir(parents=True)
        for f in sorted((training / role).glob("*.png")):
            Image.open(f).convert("RGB").save(jpegs / role / (f.stem + ".jpg"))
    first = texture_set_folder("photos:background", training=jpegs, root=tmp_path / "sets")
    stamp = {f: f.stat().st_mtime_ns for f in first.rglob("*")}
    again = texture_set_folder("photos:background", training=jpegs, root=tmp_path / "sets")
    assert again == first
    assert {f: f.stat().st_mtime_ns for f in again.rglob("*")} == stamp
    assert len(list((again / "object").glob("*.jpg"))) == 10
    assert not list((tmp_path / "sets").glob(".*tmp*"))


def test_the_same_digits_render_with_the_new_textures(tmp_path, monkeypatch, training):
    monkeypatch.setenv("CAUSALKIT_DATA", str(tmp_path / "data"))
    folder = texture_set_folder("photos", root=tmp_path)
    a = build_split("wildlife-mnist", "ood", seed=3, n=64, textures=training, cache=False)
    b = build_split("wildlife-mnist", "ood", seed=3, n=64, textures=folder, cache=False)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.nuisances["digit"], b.nuisances["digit"])
    np.testing.assert_array_equal(a.nuisances["obj_texture"], b.nuisances["obj_texture"])
    assert not np.array_equal(a.images, b.images)


def test_bad_specs_and_configs_are_refused(training):
    with pytest.raises(DataError, match="unknown texture set"):
        check_texture_spec("dtd")
    with pytest.raises(DataError, match="unknown texture role"):
        check_texture_spec("photos:digits")
    with pytest.raises(DataError, match="training texture folder"):
        texture_set_folder("photos:object")
    with pytest.raises(CausalKitError, match="Wildlife"):
        preset_config("colored", quick=True, texture_ood=("photos",)).check()
    with pytest.raises(CausalKitError, match="data.textures"):
        preset_config("wildlife", quick=True, texture_ood=("photos:object",)).check()
    preset_config("wildlife", quick=True, textures=str(training),
                  texture_ood=("photos:object",)).check()
