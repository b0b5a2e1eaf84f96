"""`causalkit evaluate --model RUN_DIR`: a training run folder behind the benchmarks'
contract ([0, 1] images in), whichever input its model reads."""

import torch

from causalkit.cli.evaluate import _model_loaders
from robust_training.engine import build_fit_model, save_model


def _run(tmp_path, stem):
    model = build_fit_model("resnet18", ("label",), seed=0, width=8, n_classes=1000 if
                            stem == "imagenet" else 10, stem=stem).eval()
    save_model(model, tmp_path / stem, {"model": "resnet18", "width": 8, "heads": ["label"],
                                        "n_classes": 1000 if stem == "imagenet" else 10,
                                        "stem": stem, "predict_head": "label"})
    return model, _model_loaders()[""](str(tmp_path / stem)).eval()


def test_every_run_folder_gets_its_models_own_input_range(tmp_path):
    torch.manual_seed(0)
    for stem, size in (("imagenet", 64), ("small", 32)):
        model, loaded = _run(tmp_path, stem)
        x = torch.rand(2, 3, size, size)  # the contract: [0, 1]
        with torch.no_grad():
            want = model(x * 2 - 1)["label"]  # the engine trains on [-1, 1]
            got = loaded(x)
            got = got["label"] if isinstance(got, dict) else got
        assert torch.allclose(got, want, atol=1e-5), stem
