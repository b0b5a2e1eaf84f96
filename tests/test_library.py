"""The papers' graphs: structure, roles, latents and the causal facts the papers rely on."""

from __future__ import annotations

import pytest

from causalkit.errors import CausalKitError, GraphError
from causalkit.graph import CausalGraph
from causalkit.library import (
    GRAPHS,
    SCMS,
    get_graph,
    get_scm,
    list_graphs,
    list_scms,
    register_graph,
)


@pytest.mark.parametrize("name", list_graphs())
def test_every_graph_builds_and_round_trips(name):
    g = get_graph(name)
    assert isinstance(g, CausalGraph) and g == get_graph(name)
    assert GRAPHS[name].description and GRAPHS[name].source
    assert all(g.role(v) is not None for v in g.nodes), "library graphs give every role"
    assert CausalGraph.from_json(g.to_json()) == g
    assert CausalGraph.from_dagitty(g.to_dagitty()) == g


def test_unknown_names():
    with pytest.raises(GraphError, match="no built-in graph named 'gen-int'.*genint"):
        get_graph("gen-int")
    with pytest.raises(CausalKitError, match="genint-example"):
        get_scm("nope")
    with pytest.raises(GraphError, match="already registered"):
        register_graph("genint", "dup")(lambda: None)


def test_genint_observational():
    g = get_graph("genint")
    assert set(g.edges) == {("C", "Z"), ("C", "Y"), ("Z", "X"), ("F", "X"), ("X", "Y")}
    assert g.latent == {"C"}
    assert {v: g.role(v) for v in g.nodes} == {"C": "confounder", "Z": "nuisance",
                                               "Y": "label", "F": "object", "X": "image"}
    # The spurious route: the nuisance and the label are dependent through C.
    assert not g.d_separated("Z", "Y") and not g.d_separated("Z", "Y", "X")
    # The classifier's query P(Y | do(X)): the observed nuisance blocks X <- Z <- C -> Y.
    assert g.backdoor_sets("X", "Y") == [frozenset({"Z"})]
    assert g.identify("X", "Y").formula == "P(Y | do(X)) = sum_{Z} P(Y | X, Z) P(Z)"
    # With the nuisances unobserved (excluded), nothing identifies it: hence the bounds.
    assert not g.identify("X", "Y", exclude={"Z"}).identifiable
    # The nuisance's effect on the image: Z <- C -> Y <- X is closed at the collider Y.
    assert g.backdoor_sets("Z", "X") == [frozenset()]


def test_genint_intervened_and_partial():
    obs, full = get_graph("genint"), get_graph("genint-intervened")
    assert full == obs.do("Z") and full.parents("Z") == []
    # GenInt's point: after do(Z) the nuisance tells nothing about the label beyond
    # the image, and P(Y | do(X)) = P(Y | X).
    assert full.d_separated("Z", "Y", "X") and not obs.d_separated("Z", "Y", "X")
    assert full.backdoor_sets("X", "Y") == [frozenset()]
    split, part = get_graph("genint-split"), get_graph("genint-partial")
    assert set(split.nodes_with_role("nuisance")) == {"Z1", "Z2"}
    assert split.parents("Z1") == ["C"] and split.parents("Z2") == ["C"]
    assert part == split.do("Z1")
    assert part.parents("Z1") == [] and part.parents("Z2") == ["C"]
    # Partial intervention: Z1 is freed from the confounder, Z2 still is not.
    assert part.d_separated("Z1", "Y", {"X", "Z2"})
    assert not part.d_separated("Z2", "Y", {"X", "Z1"})
    assert part.backdoor_sets("X", "Y") == [frozenset({"Z2"})]


def test_cgn_mnist():
    g = get_graph("cgn-mnist")
    assert g.nodes_with_role("label") == ["Y1", "Y2", "Y3"]
    assert g.nodes_with_role("noise") == ["U1", "U2", "U3"]
    assert g.nodes_with_role("mechanism") == ["M", "F", "B"]
    assert g.parents("M") == ["Y1", "U1"] and g.parents("F") == ["Y2", "U2"]
    assert g.parents("B") == ["Y3", "U3"] and g.parents("X") == ["M", "F", "B"]
    assert not g.latent
    # Independent mechanisms: with separate noises the three mechanisms are independent.
    assert g.d_separated("M", {"F", "B"}) and g.d_separated("F", "B")


def test_cgn_imagenet():
    g = get_graph("cgn-imagenet")
    assert g.nodes_with_role("noise") == ["U"]
    assert g.children("U") == ["Mp", "F", "B"]
    assert g.parents("Mp") == ["Y1", "U"] and g.parents("M") == ["Mp"]
    assert g.parents("X") == ["M", "F", "B"]
    # The shared noise couples the mechanisms; holding it fixed (conditioning) decouples
    # them, which is why a counterfactual keeps U and changes only the labels.
    assert not g.d_separated("F", "B") and g.d_separated("F", "B", given={"U"})
    # Effect of the texture label Y2 on the image needs no adjustment (labels are roots).
    assert g.identify("Y2", "X").formula == "P(X | do(Y2)) = P(X | Y2)"


def test_textbook_graphs():
    assert get_graph("frontdoor").backdoor_sets("X", "Y") == []
    assert get_graph("mediator").backdoor_sets("X", "Y") == [frozenset({"C"})]
    mb = get_graph("m-bias")
    assert mb.backdoor_sets("X", "Y") == [frozenset()] and not mb.is_backdoor_set("X", "Y", "M")
    col = get_graph("collider")
    assert col.d_separated("X", "Y") and not col.d_separated("X", "Y", "K")


def test_genint_example_scm():
    assert list_scms() == sorted(SCMS) and "genint-example" in list_scms()
    m = get_scm("genint-example")
    assert m.graph == get_graph("genint-split")
    truth = m.prob({"Y": 1}, do={"X": 1})
    # Adjusting for the observed nuisances recovers it; plain conditioning is confounded.
    from causalkit.adjustment import backdoor_adjustment
    assert backdoor_adjustment(m, {"X": 1}, {"Y": 1}, ["Z1", "Z2"]) == pytest.approx(truth)
    assert abs(m.prob({"Y": 1}, given={"X": 1}) - truth) > 0.05
    # Intervening on Z1 uniformly makes X = 1 likelier, which is what tightens the bound.
    uniform = m.do({"Z1": [0.5, 0.5]})
    assert uniform.prob({"X": 1}) > m.prob({"X": 1})
