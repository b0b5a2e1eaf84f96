"""The correlation probe: ground truth on colored MNIST, the class-subset classifier, sources
and image folders."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from analysis.imagesets import load_image_set, read_image_folder, true_nuisance_matrix
from analysis.probes import (
    chance_tolerance,
    check_against_truth,
    label_predictability,
    probe_correlation,
    train_regressor,
)
from analysis.sources import SCMSource, StrategySource
from causalkit.errors import CausalKitError


@pytest.fixture(autouse=True)
def one_thread():
    # The shared 2-core machine: one intra-op thread is faster under contention.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the embedded-MNIST notice
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def colored_regressor():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_num_threads(1)
        return train_regressor(SCMSource("colored-mnist", source="embedded"), n_train=2000,
                               n_val=500, epochs=4, batch_size=16, seed=0)


def test_ground_truth_validation(colored_regressor):
    """Biased train: ratio >> 1 and close to the true nuisance's; OOD split: about 1."""
    assert colored_regressor.r2 > 0.9  # colour is easy to read off a coloured digit
    rep = probe_correlation("scm:colored-mnist", ["colored-mnist:train", "colored-mnist:ood"],
                            regressor=colored_regressor, categories=(2, 5, 10), n_subsets=6,
                            max_samples=2000, dataset_options={"source": "embedded"}, seed=0)
    train, ood = rep.datasets
    assert train.true_ratios is not None and ood.true_ratios is not None
    # >> 1: far outside what chance allows at N = 10
    r10 = train.ratios[10]
    assert r10.mean > 1 + 5 * chance_tolerance(10, r10.n_test)
    for n_cat, row in check_against_truth(train).items():
        assert row["ok"], (n_cat, row)
    for n_cat, stats in ood.ratios.items():
        assert abs(stats.mean - 1.0) <= chance_tolerance(n_cat, stats.n_test), (n_cat, stats)
    # the true nuisance of the OOD split is independent of the label too
    for n_cat, stats in ood.true_ratios.items():
        assert abs(stats.mean - 1.0) <= chance_tolerance(n_cat, stats.n_test)


def test_label_predictability_extremes():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 200)
    informative = np.eye(10)[y] + 0.01 * rng.normal(size=(len(y), 10))
    noise = rng.normal(size=(len(y), 3))
    full = label_predictability(informative, y, (2, 5, 10), n_subsets=3, seed=1)
    none = label_predictability(noise, y, (2, 5, 10), n_subsets=5, seed=1)
    for n_cat in (2, 5, 10):
        assert full[n_cat].mean == pytest.approx(n_cat)
        assert abs(none[n_cat].mean - 1) <= chance_tolerance(n_cat, none[n_cat].n_test)
    again = label_predictability(noise, y, (5,), n_subsets=5, seed=1)
    assert again[5].ratios == none[5].ratios  # seeded
    with pytest.raises(CausalKitError, match="classes"):
        label_predictability(noise, y, (11,))


def test_strategy_source_on_tiny_biggan():
    from generators.biggan import tiny_biggan

    gen = tiny_biggan(seed=0)
    src = StrategySource(gen, None, "t=1,k=6,s=1,n=2")
    a, b = src.sample(24, seed=3), src.sample(24, seed=3)
    assert torch.equal(a.images, b.images) and np.array_equal(a.z, b.z)
    assert a.images.shape == (24, 3, 32, 32) and a.z.shape == (24, 6)
    assert ((a.z != 0).sum(1) == 2).all()  # two of the six directions per sample
    r = src.directions.ranges()
    assert (np.abs(a.z) <= r[None, :] + 1e-6).all()
    with pytest.raises(CausalKitError, match="directions"):
        StrategySource(gen, None, "t=1,k=60,s=1")


def test_interventional_samples_are_not_confounded(tmp_path):
    """GenInt interventional samples written as an image folder: ratio about 1."""
    from generators.biggan import tiny_biggan

    gen = tiny_biggan(seed=0)
    src = StrategySource(gen, None, "t=1,k=6,s=1,n=3")
    reg = train_regressor(src, n_train=600, n_val=200, epochs=2, batch_size=16, seed=0)
    assert np.isfinite(reg.r2)
    batch = src.sample(600, seed=99)
    u8 = ((batch.images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    for i, (img, y) in enumerate(zip(u8, batch.labels, strict=True)):
        d = tmp_path / "gen" / str(int(y))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(d / f"{i}.png")
    # the same samples by name, drawn on the fly (another seed)
    rep = probe_correlation(src, [str(tmp_path / "gen"), "gan:tiny@t=1,k=6,s=1,n=3"],
                            regressor=reg, categories=(2, 5), n_subsets=6, max_samples=600,
                            seed=0)
    assert [d.n for d in rep.datasets] == [600, 600]
    for d in rep.datasets:
        for n_cat, stats in d.ratios.items():
            assert abs(stats.mean - 1.0) <= chance_tolerance(n_cat, stats.n_test), (d.name,
                                                                                   n_cat)
    with pytest.raises(CausalKitError, match="gan:<generator>@<strategy>"):
        load_image_set("gan:tiny")


def test_read_image_folder_layouts(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    for i, img in enumerate(imgs):
        d = tmp_path / "tree" / ("cat" if i < 3 else "dog")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i}.png")
    s = read_image_folder(tmp_path / "tree")
    assert s.images.shape == (6, 3, 8, 8) and s.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(s.images[4], torch.from_numpy(imgs[4]).permute(2, 0, 1))
    flat = tmp_path / "flat"
    flat.mkdir()
    with (flat / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label"])
        for i, img in enumerate(imgs):
            Image.fromarray(img).save(flat / f"{i}.png")
            w.writerow([f"{i}.png", i % 2])
    s2 = read_image_folder(flat, n=4, seed=0)
    assert len(s2) == 4 and set(s2.labels.tolist()) <= {0, 1}
    with pytest.raises(CausalKitError, match="labels.csv"):
        read_image_folder(tmp_path / "tree" / "cat")
    with pytest.raises(CausalKitError, match="cannot resolve"):
        load_image_set("no-such-dataset")


def test_true_nuisances_are_the_rendered_colours():
    s = load_image_set("colored-mnist:ood", options={"n": 50, "source": "embedded"})
    assert s.true_z is not None and s.true_z.shape == (50, 3)
    np.testing.assert_array_equal(s.true_z, s.nuisances["fg_color"])
    tex = true_nuisance_matrix({"obj_texture": np.array([0, 3]), "digit": np.array([5, 6])})
    assert tex.shape == (2, 10) and tex[1, 3] == 1


def test_any_torch_dataset_is_read():
    from torch.utils.data import Dataset

    class Toy(Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return torch.full((3, 4, 4), i / 19.0), i % 4  # floats in [0, 1]

    s = load_image_set(Toy(), options={"n": 8, "seed": 0})
    assert s.images.dtype == torch.uint8 and s.images.shape == (8, 3, 4, 4)
    assert set(s.labels.tolist()) <= {0, 1, 2, 3} and s.true_z is None
    full = load_image_set(Toy())
    assert int(full.images[19].max()) == 255 and int(full.images[0].max()) == 0
