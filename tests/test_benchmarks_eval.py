"""Every evaluator on a fixture in its released layout, checked against a hand count.

The classifier is :class:`CodeClassifier`: it answers the ImageNet index painted into a
pixel, so each fixture's expected metrics follow from how it was drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _benchmark_helpers import CodeClassifier, code_image, save

from analysis.benchmarks import imagenet_c, imagenet_v2, in9, objectnet, shape_bias
from analysis.benchmarks.classes import IN9_CLASSES, IN9_INDICES
from analysis.benchmarks.imagenet_ids import WNIDS
from analysis.benchmarks.views import ImageView
from causalkit.errors import DataError

FAST = dict(batch_size=4, progress=False)


def test_shape_bias_hand_count(tmp_path):
    root = tmp_path / "cue-conflict"
    save(root / "cat" / "cat1-dog1.png", code_image(281, size=64))    # shape decision
    save(root / "cat" / "cat2-car1.png", code_image(436, size=64))    # texture decision
    save(root / "cat" / "cat3-bear1.png", code_image(152, size=64))   # dog: neither
    save(root / "dog" / "dog1-dog2.png", code_image(152, size=64))    # same class: dropped
    result = shape_bias.evaluate(CodeClassifier(), root, **FAST)
    summary = result.details["logits"]
    assert (summary["shape_decisions"], summary["texture_decisions"],
            summary["other_decisions"], summary["dropped_same_class"]) == (1, 1, 1, 1)
    assert result.metric("shape_bias") == pytest.approx(0.5)
    assert summary["per_category"]["cat"]["shape_bias"] == pytest.approx(0.5)
    with pytest.raises(DataError, match="not a cue-conflict file name"):
        save(root / "cat" / "photo.png", code_image(281, size=16))
        shape_bias.evaluate(CodeClassifier(), root, **FAST)


def _in9_fixture(root):
    perm = [0, 2, 1, 3, 5, 4, 6, 8, 7]
    for k, name in enumerate(IN9_CLASSES):
        first, second = IN9_INDICES[name][0], IN9_INDICES[name][1]
        other = IN9_INDICES[IN9_CLASSES[perm[k]]][0]
        folder = f"{k:02d}_{name}"
        save(root / "original" / "val" / folder / "a.png", code_image(first, size=64))
        save(root / "mixed_same" / "val" / folder / "a.png", code_image(first, second, 64))
        save(root / "mixed_rand" / "val" / folder / "a.png", code_image(first, other, 64))
        save(root / "only_fg" / folder / "a.png", code_image(first, size=64, bg_black=True))


def test_in9_background_gap_hand_count(tmp_path):
    _in9_fixture(tmp_path)
    # the corner-reading classifier relies only on the background
    result = in9.evaluate(CodeClassifier("corner"), tmp_path, **FAST)
    acc = result.metrics["logits"]
    assert acc["original"] == 1.0 and acc["mixed_same"] == 1.0
    assert acc["mixed_rand"] == pytest.approx(3 / 9)        # classes 0, 3, 6 kept theirs
    assert acc["only_fg"] == pytest.approx(1 / 9)           # black -> index 0 -> fish
    assert acc["bg_gap"] == pytest.approx(1 - 3 / 9)
    assert result.details["logits"]["only_fg"]["per_class"]["fish"] == 1.0
    # the centre-reading classifier looks at the foreground only: no gap
    fg = in9.evaluate(CodeClassifier(), tmp_path, **FAST).metrics["logits"]
    assert fg["mixed_rand"] == 1.0 and fg["bg_gap"] == 0.0


def test_in9_layout_errors(tmp_path):
    with pytest.raises(DataError, match="none of the IN-9 variations"):
        in9.evaluate(CodeClassifier(), tmp_path, **FAST)
    save(tmp_path / "original" / "val" / "dog" / "a.png", code_image(151, size=16))
    with pytest.raises(DataError, match="nine IN-9 class folders"):
        in9.evaluate(CodeClassifier(), tmp_path, **FAST)


def test_objectnet_pooled_and_border(tmp_path):
    images = tmp_path / "objectnet-1.0" / "images"
    save(images / "chair" / "1.png", code_image(765, size=80))     # rocking chair -> chair
    save(images / "mug" / "1.png", code_image(504, size=80))
    save(images / "banana" / "1.png", code_image(950, size=80))    # an orange: wrong
    save(images / "air_freshener" / "1.png", code_image(0, size=80))
    with pytest.raises(DataError, match="lacks 110 of ObjectNet's 113"):
        objectnet.evaluate(CodeClassifier(), tmp_path / "objectnet-1.0", **FAST)
    result = objectnet.evaluate(CodeClassifier(), tmp_path / "objectnet-1.0",
                                allow_missing_classes=True, **FAST)
    assert result.n == 3 and result.details["ignored_folders"] == 1
    assert result.metric("top1") == pytest.approx(2 / 3)
    framed = np.zeros((40, 40, 3), np.uint8)
    framed[:2], framed[-2:], framed[:, :2], framed[:, -2:] = 255, 255, 255, 255
    assert ImageView(border=2, resize=None, crop=36).array(framed).max() == 0


def test_imagenet_v2_and_a(tmp_path):
    for variant in ("matched-frequency", "threshold0.7"):
        folder = tmp_path / f"imagenetv2-{variant}-format-val"
        for name, code in (("5", 5), ("7", 8)):
            path = folder / name / "x.jpeg"
            path.parent.mkdir(parents=True, exist_ok=True)
            from PIL import Image
            Image.fromarray(code_image(code, size=64)).save(path, format="PNG")
    v2 = imagenet_v2.evaluate(CodeClassifier(), tmp_path, **FAST)
    assert set(v2.details) == {"matched-frequency", "threshold0.7"}
    assert v2.metric("matched-frequency/top1") == 0.5
    assert v2.metric("threshold0.7/top5") >= 0.5
    a_root = tmp_path / "imagenet-a"
    save(a_root / WNIDS[6] / "1.png", code_image(6, size=64))
    save(a_root / WNIDS[11] / "1.png", code_image(12, size=64))    # 12 is not in the 200
    a = imagenet_v2.evaluate_a(CodeClassifier(), a_root, **FAST)
    assert a.metric("top1") == 0.5
    save(a_root / WNIDS[0] / "1.png", code_image(0, size=64))
    with pytest.raises(DataError, match="outside ImageNet-A's 200"):
        imagenet_v2.evaluate_a(CodeClassifier(), a_root, **FAST)


def test_imagenet_c_released_layout_and_mce(tmp_path):
    from analysis.benchmarks import corruptions, mce

    for name in corruptions.BENCHMARK:
        for severity in range(1, 6):
            code = 3 if severity < 3 else 4                        # wrong from severity 3
            save(tmp_path / name / str(severity) / WNIDS[3] / "a.png", code_image(code, size=32))
    result = imagenet_c.evaluate(CodeClassifier(), tmp_path, clean_error=0.25, **FAST)
    values = result.metrics["logits"]
    assert values["error/gaussian_noise"] == pytest.approx(0.6)
    expected = {c: 3 / sum(mce.ALEXNET_ERRORS[c]) for c in corruptions.BENCHMARK}
    assert values["mce"] == pytest.approx(np.mean(list(expected.values())))
    rel = {c: (3 - 5 * 0.25) / (sum(mce.ALEXNET_ERRORS[c]) - 5 * mce.ALEXNET_CLEAN_ERROR)
           for c in corruptions.BENCHMARK}
    assert values["relative_mce"] == pytest.approx(np.mean(list(rel.values())))
    with pytest.raises(DataError, match="unknown corruption"):
        imagenet_c.evaluate(CodeClassifier(), tmp_path, corruptions=["rain"], **FAST)


def test_imagenet_c_on_the_fly_is_seeded(tmp_path):
    save(tmp_path / WNIDS[3] / "a.png", code_image(3, size=64))
    save(tmp_path / WNIDS[9] / "a.png", code_image(9, size=64))
    kw = dict(source="folder", corruptions=["gaussian_noise"], severities=(1, 5), **FAST)
    first = imagenet_c.evaluate(CodeClassifier(), tmp_path, seed=1, **kw)
    again = imagenet_c.evaluate(CodeClassifier(), tmp_path, seed=1, **kw)
    assert first.details["errors"] == again.details["errors"]
    values = first.metrics["logits"]
    assert values["clean_error"] == 0.0
    assert first.details["errors"]["logits"]["gaussian_noise"][1] > 0.0  # noise moves codes
    from analysis.benchmarks.views import CorruptedView

    image = code_image(3, size=64)
    one = CorruptedView("gaussian_noise", 5, seed=1)(image, 0)
    assert torch.equal(one, CorruptedView("gaussian_noise", 5, seed=1)(image, 0))
    assert not torch.equal(one, CorruptedView("gaussian_noise", 5, seed=1)(image, 1))


def test_multi_head_scored_per_head_and_averaged(tmp_path):
    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.centre, self.corner = CodeClassifier(), CodeClassifier("corner")

        def forward(self, x):
            return {"shape": self.centre(x), "background": self.corner(x)}

    _in9_fixture(tmp_path)
    result = in9.evaluate(TwoHeads(), tmp_path, variations=("mixed_rand",), **FAST)
    assert set(result.heads) == {"shape", "background", "averaged"}
    assert result.metrics["shape"]["mixed_rand"] == 1.0
    assert result.metrics["background"]["mixed_rand"] == pytest.approx(3 / 9)
