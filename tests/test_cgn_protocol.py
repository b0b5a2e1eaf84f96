"""The CGN protocol: MnistCGN conforms, the SCM is built from the declaration alone, and a
CGN of another size, channel count, class count and noise layout runs through the same
generic code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalkit.errors import CausalKitError
from causalkit.interventions import Do
from causalkit.library import get_graph
from generators.cgn import (
    CGN,
    Composer,
    Exogenous,
    Mechanism,
    cgn_graph,
    cgn_scm,
    check_cgn,
    generate_counterfactuals,
)
from generators.cgn.counterfactuals import redraw
from generators.cgn.mnist import MnistCGN
from generators.cgn.protocol import (
    label_nodes_by_name,
    mechanism_labels,
    mechanism_nodes_by_name,
)


def test_mnist_cgn_conforms():
    cgn = MnistCGN(ngf=8, seed=0)
    assert isinstance(cgn, CGN)
    check_cgn(cgn)
    assert list(cgn.label_nodes) == ["Y1", "Y2", "Y3"]
    assert list(cgn.noise_nodes) == ["U1", "U2", "U3", "F", "B"]  # the order of draws
    assert {v: e.shape for v, e in cgn.noise_nodes.items()} == {
        "U1": (32,), "U2": (32,), "U3": (32,), "F": (2,), "B": (2,)}
    rng = np.random.default_rng(0)
    assert cgn.noise_nodes["U1"].sample(4, rng).dtype == np.float32
    assert cgn.label_nodes["Y2"].sample(50, rng).max() < 10
    assert label_nodes_by_name(cgn) == {"shape": "Y1", "texture": "Y2", "background": "Y3"}
    assert mechanism_labels(cgn) == {"M": "Y1", "F": "Y2", "B": "Y3"}
    assert mechanism_nodes_by_name(cgn) == {"shape": "M", "texture": "F", "background": "B"}
    assert cgn.composer == Composer("X", ("M", "F", "B"))


def test_scm_graph_is_the_library_graph():
    ours, library = cgn_graph(MnistCGN(ngf=8)), get_graph("cgn-mnist")
    assert ours == library
    assert ours.nodes == library.nodes and ours.roles == library.roles


def test_scm_mechanisms_are_the_declared_ones():
    cgn = MnistCGN(ngf=8, seed=0)
    scm = cgn_scm(cgn, batch_size=3)  # several chunks per mechanism
    s = scm.sample(7, seed=0)
    assert sorted(scm.noise) == ["B", "F", "U1", "U2", "U3", "Y1", "Y2", "Y3"]
    fn = cgn.mechanism_nodes["F"].fn
    chunks = [fn({"Y2": s["Y2"][i:i + 3], "U2": s["U2"][i:i + 3]}, s.noise["F"][i:i + 3])
              for i in range(0, 7, 3)]
    assert torch.equal(torch.cat(chunks), s["F"])  # the declared callable, 3 at a time
    # another chunking: the same values up to the convolutions' summation order
    assert torch.allclose(cgn_scm(cgn).sample(7, seed=0)["X"], s["X"], atol=1e-6)
    with pytest.raises(CausalKitError, match="no exogenous input"):
        cgn_scm(cgn, noise={"U9": lambda n, rng: None})


# -- a CGN that is not MNIST: 5 x 7 images, 2 channels, 4 classes, one shared noise, and a
# two-stage mask (pre-mask -> mask) like the ImageNet CGN's U^2-Net ------------------------

def _net(label: str, channels: int, seed: int):
    w = torch.randn(4, channels * 35, generator=torch.Generator().manual_seed(seed))

    def fn(parents, u):
        y = torch.as_tensor(np.asarray(parents[label]))
        z = torch.as_tensor(np.asarray(parents["U"]))
        return torch.tanh(w[y] * z[:, :1] + z[:, 1:2]).view(-1, channels, 5, 7)

    return fn


def _sharpen(parents, u):
    return torch.sigmoid(4 * parents["Mp"])


class _ToyCGN:
    label_nodes = {y: Exogenous((), lambda n, rng: rng.integers(0, 4, n))
                   for y in ("Y1", "Y2", "Y3")}
    noise_nodes = {"U": Exogenous((2,), lambda n, rng: rng.standard_normal((n, 2)))}
    mechanism_nodes = {
        "Mp": Mechanism("shape", "Y1", ("Y1", "U"), _net("Y1", 1, 0)),
        "M": Mechanism("mask", None, ("Mp",), _sharpen),
        "F": Mechanism("texture", "Y2", ("Y2", "U"), _net("Y2", 2, 1)),
        "B": Mechanism("background", "Y3", ("Y3", "U"), _net("Y3", 2, 2)),
    }
    composer = Composer("X", ("M", "F", "B"))


def test_a_cgn_of_another_layout_runs_through_the_generic_code():
    toy = _ToyCGN()
    check_cgn(toy)
    g = cgn_graph(toy)
    assert g.parents("M") == ["Mp"] and g.roles["U"] == "noise" and g.roles["M"] == "mechanism"
    s = cgn_scm(toy).sample(6, seed=0)
    assert s["X"].shape == (6, 2, 5, 7)
    cf = cgn_scm(toy).counterfactual(s, do={"Y3": Do(1)})
    assert torch.equal(cf["M"], s["M"]) and torch.equal(cf["F"], s["F"])
    out = generate_counterfactuals(toy, 9, per_noise=3, seed=0, progress=False)
    assert out.images.shape == (9, 2, 5, 7) and out.images.dtype == np.uint8
    assert out.labels().max() < 4 and np.array_equal(out.shape, np.repeat(out.shape[::3], 3))
    assert sorted(redraw(toy, ["shape"])) == ["Y1"]


def test_check_cgn_names_what_is_wrong():
    class Bad(_ToyCGN):
        composer = Composer("X", ("M", "F", "Y3"))

    with pytest.raises(CausalKitError, match="three mechanism nodes"):
        check_cgn(Bad())

    class Late(_ToyCGN):
        mechanism_nodes = {"M": Mechanism("mask", None, ("Mp",), _sharpen),
                           **_ToyCGN.mechanism_nodes}

    with pytest.raises(CausalKitError, match="later parent"):
        check_cgn(Late())

    class Twice(_ToyCGN):
        noise_nodes = {"Y1": Exogenous((), lambda n, rng: rng.integers(0, 4, n))}

    with pytest.raises(CausalKitError, match="declared twice"):
        check_cgn(Twice())
    with pytest.raises(CausalKitError, match="does not implement"):
        check_cgn(object())
    with pytest.raises(CausalKitError, match="declared"):
        Exogenous((3,), lambda n, rng: np.zeros((n, 2))).sample(4, np.random.default_rng(0))


def test_the_generic_layer_imports_no_data_set_package():
    """protocol, composer, scm and counterfactuals serve every CGN: none of them may import
    a data set's package (generators.cgn.mnist), outside docstrings."""
    import ast
    from pathlib import Path

    import generators.cgn as pkg

    for path in sorted(Path(pkg.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n.startswith("generators.cgn.mnist")]
            assert not bad, f"{path.name} line {node.lineno} imports {bad}"
