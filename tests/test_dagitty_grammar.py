"""dagitty text as dagitty reads it: the grammar, the aliases, refusals with line and column,
collision-free latents, positions on a round trip, and a corpus of real texts."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from causalkit.errors import DataError, GraphError
from causalkit.graph import CausalGraph, load

CORPUS = Path(__file__).parent / "data" / "dagitty"
ACCEPTED = sorted(CORPUS.glob("*.dagitty"))
REFUSED = sorted((CORPUS / "refused").glob("*.dagitty"))
parse = CausalGraph.from_dagitty


# ---------------------------------------------------------------- aliases
@pytest.mark.parametrize("mark", ["latent", "l", "u", "unobserved"])
def test_latent_aliases(mark):
    g = parse(f"dag {{ C [{mark}] C -> X C -> Y X -> Y }}")
    assert g.latent == {"C"}
    # The confounder is latent, so it is no backdoor set (it was before the aliases).
    assert g.backdoor_sets("X", "Y") == []


@pytest.mark.parametrize(("alias", "role"), [("e", "exposure"), ("exposure", "exposure"),
                                             ("source", "exposure"), ("o", "outcome"),
                                             ("outcome", "outcome"), ("target", "outcome"),
                                             ("a", "adjusted"), ("s", "selected")])
def test_role_aliases(alias, role):
    assert parse(f"dag {{ X [{alias}] X -> Y }}").role("X") == role


def test_role_attribute_wins_and_attributes_merge():
    g = parse('dag { Z [e] Z [role="nuisance", pos="1,2"] Z -> X }')
    assert g.role("Z") == "nuisance" and g.positions == {"Z": (1.0, 2.0)}


# ---------------------------------------------------------------- grammar
@pytest.mark.parametrize("text", [
    "dag G { X -> Y }", "digraph G { X -> Y }", "strict dag { X -> Y }",
    "STRICT Dag name { X -> Y }", 'dag "my graph" { X -> Y }', "X -> Y",
    "dag { X -> Y; }", "dag{X->Y}", "pdag { X -> Y }", "graph { X -> Y }",
])
def test_headers(text):
    assert parse(text).edges == [("X", "Y")]


def test_nested_groups_and_groups_at_both_ends():
    g = parse("dag { x -> {a -> b} }")
    assert set(g.edges) == {("x", "a"), ("x", "b"), ("a", "b")}
    g = parse("dag { {a b} -> {c {d e}} }")
    assert set(g.edges) == {(u, v) for u in "ab" for v in "cde"}
    g = parse("dag { {a [latent] b} -> c }")
    assert g.latent == {"a"} and set(g.edges) == {("a", "c"), ("b", "c")}


def test_several_statements_on_a_line_and_chains():
    g = parse("dag { a -> b b -> c; c <- d  e }")
    assert g.nodes == ["a", "b", "c", "d", "e"]
    assert set(g.edges) == {("a", "b"), ("b", "c"), ("d", "c")}
    g = parse("dag { x -> m -> a b }")  # a chain, then the node b
    assert set(g.edges) == {("x", "m"), ("m", "a")} and "b" in g


def test_quoted_names_concatenation_and_edge_attributes():
    g = parse('dag { "my node" -> "a" + "b" [beta=0.3] "q\\"x" -> Y }')
    assert set(g.edges) == {("my node", "ab"), ('q"x', "Y")}


def test_graph_options_and_dot_defaults_are_ignored():
    g = parse('dag { bb="0,0,1,1" graph [rankdir=LR] edge [color=red] X -> Y }')
    assert g.edges == [("X", "Y")]


def test_a_name_before_a_brace_is_a_node():
    g = parse("dag { x {a b} }")  # as dagitty's grammar reads it: node x, then a group
    assert g.nodes == ["x", "a", "b"] and g.edges == []


# ---------------------------------------------------------------- bidirected
def test_bidirected_latents_never_collide():
    g = parse("dag { U_A_B -> A  A <-> B }")
    assert "U_A_B" not in g.latent and len(g) == 4
    (u,) = g.latent
    assert u == "U_A_B_2" and set(g.children(u)) == {"A", "B"}
    assert g.children("U_A_B") == ["A"]
    g = parse("dag { A <-> B  B <-> A  X -> Y }")
    assert len(g.latent) == 2 and g.latent == {"U_A_B", "U_A_B_2"}


def test_bidirected_is_a_latent_confounder():
    g = parse("dag { X <-> Y  X -> Y }")
    assert g.latent == {"U_X_Y"} and g.role("U_X_Y") == "confounder"
    assert not g.identify("X", "Y").identifiable


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(("text", "where", "what"), [
    ("", "line 1, column 1", "holds no graph"),
    ("   \n\n  ", "line 3, column 3", "holds no graph"),
    ("dag { }", "line 1, column 1", "no nodes"),
    ("dag {\n  X -- Y\n}", "line 2, column 5", "undirected edge '--'"),
    ("dag { X @-> Y }", "line 1, column 9", "partially directed edge '@->'"),
    ("dag { X @-@ Y }", "line 1, column 9", "unspecified edge"),
    ("dag { X --@ Y }", "line 1, column 9", "partially undirected"),
    ("mag { X -> Y }", "line 1, column 1", "MAG"),
    ("pag { X -> Y }", "line 1, column 1", "PAG"),
    ("dag { X -> Y", "line 1, column 5", "never closed"),
    ("dag { X -> Y }}", "line 1, column 15", "after the graph's closing"),
    ("dag { X -> }", "line 1, column 12", "needs a node or a group"),
    ("dag { X [latent }", "line 1, column 17", "unexpected '}' in an attribute list"),
    ("dag { X [latent", "line 1, column 9", "never closed"),
    ("dag {\n {a b} [latent] }", "line 2, column 8", "no attributes for a group"),
    ("dag { X [pos=\"a,b\"] }", "line 1, column 14", "not \"x,y\""),
    ("dag { X -> X }", "line 1, column 9", "self-loop"),
    ("dag { graph -> Y }", "line 1, column 7", "cannot be named 'graph'"),
    ("dag { X => Y }", "line 1, column 10", "unexpected '> Y }'"),
    ("dag { X -> Y } dag { }", "line 1, column 16", "one graph"),
])
def test_refusals_name_line_and_column(text, where, what):
    with pytest.raises(GraphError) as info:
        parse(text)
    msg = str(info.value)
    assert msg.startswith(f"dagitty, {where}: ") and what in msg, msg
    assert "\n" not in msg


def test_cycle_is_refused():
    with pytest.raises(GraphError, match="cycle"):
        parse("dag { X -> Y -> X }")


def test_empty_and_binary_files(tmp_path):
    empty = tmp_path / "empty.dagitty"
    empty.write_text("")
    with pytest.raises(GraphError, match="line 1, column 1: the text holds no graph"):
        load(empty)
    binary = tmp_path / "b.dagitty"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DataError, match="not text"):
        load(binary)


# ---------------------------------------------------------------- round trip
def test_positions_survive_a_round_trip(tmp_path):
    text = ('dag {\nbb="-3,-3,3,3"\nX [exposure,pos="-1.5,0.25"]\nY [outcome,pos="1,0"]\n'
            'U [latent,pos="0,-1"]\nU -> X\nU -> Y\nX -> Y\n}\n')
    g = parse(text)
    assert g.positions == {"X": (-1.5, 0.25), "Y": (1.0, 0.0), "U": (0.0, -1.0)}
    again = parse(g.to_dagitty())
    assert again == g and again.positions == g.positions
    assert 'X [exposure,pos="-1.5,0.25"]' in g.to_dagitty()
    path = g.save(tmp_path / "g.json")
    assert load(path).positions == g.positions
    # Positions never change an analysis, and equality ignores them.
    assert g == CausalGraph(g.edges, roles=g.roles, latent=g.latent)
    assert g.do("X").positions == g.positions


# ---------------------------------------------------------------- corpus
def test_corpus_is_there():
    assert len(ACCEPTED) >= 15 and len(REFUSED) >= 5
    readme = (CORPUS / "README.md").read_text()
    for f in ACCEPTED + REFUSED:
        stem = f.name.split(".")[0]
        assert stem.rsplit("_", 1)[0] in readme or f.name in readme, f.name


@pytest.mark.parametrize("path", ACCEPTED, ids=[p.name for p in ACCEPTED])
def test_corpus_reads_and_round_trips(path):
    g = load(path)
    assert len(g) > 0
    assert parse(g.to_dagitty()) == g


@pytest.mark.parametrize("path", REFUSED, ids=[p.name for p in REFUSED])
def test_corpus_refusals_name_the_place(path):
    with pytest.raises(GraphError, match=r"^dagitty, line \d+, column \d+: "):
        load(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("path", ACCEPTED, ids=[p.name for p in ACCEPTED])
def test_corpus_agrees_with_pgmpy(path):
    # pgmpy's independent dagitty reader agrees wherever it reads the text at all.
    pytest.importorskip("pgmpy")
    from pgmpy.base import DAG

    text = path.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dag = DAG.from_dagitty(text)
        except Exception as exc:  # pgmpy's parser covers less of the grammar
            pytest.skip(f"pgmpy cannot read it: {type(exc).__name__}")
    g = load(path)
    if g.latent - set(dag.latents):  # bidirected edges: pgmpy has no latent node for them
        pytest.skip("bidirected edges are represented differently")
    assert set(map(tuple, dag.edges())) == set(g.edges)
    assert set(dag.latents) == set(g.latent)


def test_corpus_one_graph_four_spellings():
    a, b, c, d = (load(CORPUS / f"scm_jl_fig26_{k}.dagitty") for k in "abcd")
    assert a == b == c == d


def test_corpus_known_answers():
    g = load(CORPUS / "pgmpy_latent_alias.dagitty")
    assert g.latent == {"X"} and g.positions == {"X": (-1.228, -1.145)}
    g = load(CORPUS / "dagitty_graphparser_doc.dagitty")
    assert g.role("X") == "exposure" and g.latent == {"U_A_B"}
    r = load(CORPUS / "r_exposure_outcome.dagitty").identify("Remittances", "Results")
    assert r.adjustment_set == ("Wealth",)
    assert load(CORPUS / "r_unobserved_alias.dagitty").latent == {"Q"}
    assert load(CORPUS / "dagitty_strict_isolated.dagitty").nodes == ["x", "y", "z", "q"]
