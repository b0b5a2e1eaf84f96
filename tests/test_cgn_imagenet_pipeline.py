"""The ImageNet CGN pipeline: config precedence, even batches, the multi-head classifier,
and every stage of ``causalkit reproduce cgn-imagenet`` on stand-ins through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _cgn_imagenet_helpers import tiny_cgn_file, u2net_spec, write_image_folder
from typer.testing import CliRunner

from causalkit.cli import app
from causalkit.errors import CausalKitError
from robust_training.experiments.cgn_imagenet import CGNImageNetConfig
from robust_training.imagenet_classifier import (
    build_imagenet_classifier,
    load_imagenet_classifier,
    save_imagenet_classifier,
)
from robust_training.imagenet_data import EvenBatches, FolderStream

runner = CliRunner()


def test_settings_resolve_preset_then_file_then_flags(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: tiny\ngeneration: {n: 5, noise: separate}\n"
                    "classifier: {lr: 0.01}\n")
    cfg = CGNImageNetConfig.resolve(None, file=mine, flags={"n": 7})
    assert (cfg.generation.n, cfg.generation.noise, cfg.classifier.lr) == (7, "separate", 0.01)
    assert cfg.cgn.biggan == "tiny" and cfg.classifier.arch == "resnet18"  # from tiny
    paper = CGNImageNetConfig.resolve("paper")
    t = paper.cgn.train_config(seed=0, precision="fp32")
    assert (t.episodes, t.batch_acc, t.batch_size, t.truncation) == (300, 4000, 1, 1.0)
    assert (t.lr_shape, t.lr_texture, t.lr_background) == (8e-6, 3e-5, 1e-5)
    w = t.losses
    assert (w.l1, w.perc, w.binary, w.mask, w.mask_interval, w.text, w.bg) == (
        100.0, (4.0,) * 4, 300.0, 500.0, (0.1, 0.9), (0.0, 5.0, 5.0, 0.0), 2000.0)
    with pytest.raises(CausalKitError, match="unknown cgn.train"):
        CGNImageNetConfig.resolve("tiny", flags={"cgn_train": {"lambda_l1": 1.0}})


def test_print_config_runs_back(tmp_path):
    res = runner.invoke(app, ["reproduce", "cgn-imagenet", "--stage", "generate", "--preset",
                              "tiny", "--n", "3", "--print-config"])
    assert res.exit_code == 0, res.output
    (tmp_path / "cfg.yaml").write_text(res.output)
    again = CGNImageNetConfig.resolve(None, file=tmp_path / "cfg.yaml")
    assert again.to_dict() == CGNImageNetConfig.resolve("tiny", flags={"n": 3}).to_dict()


def test_bad_input_exits_2_before_writing(tmp_path):
    out = tmp_path / "run"
    for args, needle in ((["--stage", "fly"], "unknown --stage"),
                         (["--stage", "train-classifier"], "real_root"),
                         (["--stage", "generate", "--classes", "1,2"], "three"),
                         (["--stage", "evaluate"], "evaluation.roots"),
                         (["--stage", "generate", "--u2net", "random:u2netp"],
                          "run --stage train-cgn"),
                         (["--stage", "evaluate", "--root", f"in9={tmp_path}", "--benchmark",
                           "in9"], "run --stage train-classifier"),
                         (["--stage", "generate", "--mode", "every"], "unknown generation")):
        res = runner.invoke(app, ["reproduce", "cgn-imagenet", "--preset", "tiny",
                                  "--out", str(out), *args])
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output
        assert not out.exists()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    from generators.cgn.imagenet import load_cgn_imagenet
    from generators.cgn.imagenet.generate import (
        GenerationSettings,
        write_counterfactual_imagenet,
    )

    root = tmp_path_factory.mktemp("pipeline")
    real = write_image_folder(root / "real", classes=3, per_class=4)
    cgn = load_cgn_imagenet(tiny_cgn_file(), device="cpu").eval()
    write_counterfactual_imagenet(cgn, root / "cf", GenerationSettings(n=6, shard_size=6),
                                  batch_size=6, progress=False)
    return real, root / "cf"


def test_even_batches_are_a_pure_function_of_the_step(sources):
    real, cf = sources
    streams = [FolderStream.real(real, 4), FolderStream.counterfactual(cf, 4)]
    seq = EvenBatches(streams, steps=5, size=24, seed=1)
    batches = [seq.batch(s) for s in range(5)]
    b = batches[3]
    assert b["x"].shape == (8, 3, 24, 24) and b["x"].min() >= -1 and b["x"].max() <= 1
    assert b["real"].tolist() == [True] * 4 + [False] * 4  # evenly sized
    assert (b["y"][:4, 0] == b["y"][:4, 1]).all() and (b["y"][:4, 0] == b["y"][:4, 2]).all()
    resumed = EvenBatches(streams, steps=5, size=24, seed=1).batch(3)
    workers = EvenBatches(streams, steps=5, size=24, seed=1, num_workers=2)
    in_workers = [workers.batch(s) for s in (2, 3)]
    for other in (resumed, in_workers[1]):
        assert all(torch.equal(b[k], other[k]) for k in b)
    ranks = [seq.batch(3, rank=r, world=2) for r in (0, 1)]
    assert torch.equal(ranks[0]["x"], b["x"][[0, 2, 4, 6]])
    assert torch.equal(ranks[1]["y"], b["y"][[1, 3, 5, 7]])
    other_seed = EvenBatches(streams, steps=5, size=24, seed=2).batch(3)
    assert not torch.equal(other_seed["x"], b["x"])
    # one epoch of the real images sees each of them once
    seen = np.concatenate([seq.indices(0, s) for s in range(3)])
    assert sorted(seen.tolist()) == list(range(12))


def test_classifier_normalises_inside_and_averages_heads(tmp_path):
    torch.manual_seed(0)
    model = build_imagenet_classifier("resnet18", width=8, n_classes=5, seed=0).eval()
    x01 = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        heads = model(x01 * 2 - 1)
        mean = model.view("mean")(x01)
        shape = model.view("shape")(x01)
        mu = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        sd = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        by_hand = model.heads["texture"](model.backbone((x01 - mu) / sd))
    assert torch.allclose(mean, torch.stack(list(heads.values())).mean(0))
    assert torch.allclose(shape, heads["shape"]) and torch.allclose(by_hand, heads["texture"])
    save_imagenet_classifier(model, tmp_path, {"arch": "resnet18", "width": 8,
                                               "heads": list(model.head_names),
                                               "n_classes": 5})
    again = load_imagenet_classifier(tmp_path)
    with torch.no_grad():
        assert torch.equal(again.view("mean")(x01), mean)
    with pytest.raises(CausalKitError, match="no head"):
        model.view("colour")


def test_evaluate_scores_every_head_and_the_mean(tmp_path, monkeypatch):
    import robust_training.experiments.cgn_imagenet as pipeline

    model = build_imagenet_classifier("resnet18", width=8, n_classes=10, seed=0).eval()
    save_imagenet_classifier(model, tmp_path / "run" / "classifier",
                             {"arch": "resnet18", "width": 8, "heads": list(model.head_names),
                              "n_classes": 10})
    seen = {}

    def evaluate(classifier, root, *, batch_size, device, progress):
        x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = classifier(x)  # [0, 1] images -> a dict of the heads' logits
        seen["root"], seen["heads"] = root, sorted(out)
        means = {h: {"top1": float(v.argmax(1).float().mean())} for h, v in out.items()}
        avg = torch.stack(list(out.values())).mean(0)
        return {"metrics": {**means, "averaged": {"top1": float(avg.argmax(1).float().mean())}}}

    monkeypatch.setattr(pipeline, "_benchmark", lambda name: evaluate)
    cfg = CGNImageNetConfig.resolve("tiny", flags={"benchmarks": ["in9"],
                                                   "roots": {"in9": str(tmp_path)},
                                                   "views": ["shape", "mean"]})
    record = pipeline.run_stage(cfg, "evaluate", tmp_path / "run", progress=False)
    assert seen == {"root": str(tmp_path), "heads": ["background", "shape", "texture"]}
    assert sorted(record["result"]["in9"]["metrics"]) == ["mean", "shape"]
    saved = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert saved == record["result"]


def _cli(out: Path, *args: str) -> dict:
    res = runner.invoke(app, ["reproduce", "cgn-imagenet", "--preset", "tiny", "--out",
                              str(out), "--u2net", u2net_spec(), "--json", *args])
    assert res.exit_code == 0, res.output[-3000:]
    # the JSON record; warnings (e.g. the random perceptual features') may follow it
    return json.JSONDecoder().raw_decode(res.output[res.output.index("{"):])[0]


@pytest.mark.slow
def test_every_stage_through_the_cli(sources, tmp_path):
    pytest.importorskip("generators.perceptual", reason="generators.perceptual (the "
                        "perceptual features of the CGN losses) is not in this tree")
    real, _ = sources
    out = tmp_path / "run"
    trained = _cli(out, "--stage", "train-cgn")
    assert trained["result"]["iterations"] == 4 and (out / "cgn" / "cgn.pt").is_file()
    lines = (out / "cgn" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "mask_mean" in json.loads(lines[-1])
    gen = _cli(out, "--stage", "generate", "--n", "6")
    assert gen["result"]["complete"] and gen["result"]["generated_images"] == 6
    again = _cli(out, "--stage", "generate", "--n", "6")  # resumes: nothing left to do
    assert again["result"]["generated_images"] == 0
    clf = _cli(out, "--stage", "train-classifier", "--n", "6", "--real-root", str(real),
               "--steps", "2")
    assert clf["result"]["steps"] == 2 and clf["result"]["cf_images"] == 6
    assert (out / "classifier" / "classifier.json").is_file()
    log = [json.loads(line) for line in (out / "classifier" / "log.jsonl").read_text()
           .splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    try:
        from analysis.benchmarks.registry import get_benchmark  # noqa: F401
    except ImportError:
        pytest.skip("analysis.benchmarks (the evaluators) is not installed")
    from conftest import shared_data

    cue = shared_data("cue_conflict_sample")
    ev = _cli(out, "--stage", "evaluate", "--n", "6", "--real-root", str(real),
              "--benchmark", "shape-bias", "--root", f"shape-bias={cue}")
    assert set(ev["result"]["shape-bias"]["metrics"]) == {"shape", "texture", "background",
                                                          "mean"}
    assert (out / "evaluation.json").is_file()
