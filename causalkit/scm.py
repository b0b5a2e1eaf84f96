"""Structural causal models: sample, intervene, and ask counterfactual questions.

A structural causal model (SCM) assigns every node ``V`` of a causal graph a mechanism
``V := f_V(pa(V), U_V)`` driven by its parents and an exogenous noise ``U_V``. Three
operations make it causal:

* :meth:`StructuralCausalModel.sample` draws the noise and evaluates the mechanisms in
  topological order -- the observational distribution;
* :meth:`StructuralCausalModel.do` replaces mechanisms (``Do``, ``Draw``) or perturbs them
  (``Shift``) and returns a *new* model -- the interventional distribution;
* :meth:`StructuralCausalModel.counterfactual` re-evaluates recorded samples under an
  intervention with their noise held fixed -- "what would this image have looked like
  had its colour been red?".

Every node draws its noise from its own random stream, derived from ``(seed, node)``.
So ``scm.sample(n, seed=0)`` and ``scm.do({...}).sample(n, seed=0)`` share the noise of
every untouched node: the pair is a counterfactual pair, and an intervention never
perturbs the randomness of unrelated nodes.

Mechanisms are vectorised callables ``f(parents, u)`` over a batch; they may compute in
numpy or torch. The image datasets, the CGN and the GAN adapters are SCMs of this kind.

:class:`DiscreteSCM` is the exact counterpart for finite variables: it enumerates the
joint distribution, so ``P(.)`` and ``P(.|do(.))`` are computed without sampling error.
The tests use it as ground truth for the bounds.

Examples
--------
>>> import numpy as np
>>> from causalkit.scm import StructuralCausalModel
>>> from causalkit.interventions import Do
>>> scm = StructuralCausalModel(
...     [("C", "Z"), ("C", "Y")],
...     mechanisms={"C": lambda pa, u: u < 0.5,
...                 "Z": lambda pa, u: pa["C"] ^ (u < 0.1),
...                 "Y": lambda pa, u: pa["C"]},
...     noise={"C": lambda n, rng: rng.random(n), "Z": lambda n, rng: rng.random(n)})
>>> s = scm.sample(1000, seed=0)
>>> float(np.mean(s["Z"] == s["Y"])) > 0.85        # Z tracks Y through C
True
>>> t = scm.do({"Z": Do(True)}).sample(1000, seed=0)
>>> bool(np.all(t["Z"])) and bool(np.all(t["Y"] == s["Y"]))   # Y untouched
True
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from causalkit.graph import CausalGraph
from causalkit.interventions import Batch, Do, Draw, PerBatch, Shift, as_intervention

__all__ = ["StructuralCausalModel", "Samples", "DiscreteSCM", "node_rng", "broadcast"]

Mechanism = Callable[[dict[str, Any], Any], Any]
NoiseSampler = Callable[[int, np.random.Generator], Any]


def _as_graph(graph: CausalGraph | Iterable[tuple[str, str]]) -> CausalGraph:
    return graph if isinstance(graph, CausalGraph) else CausalGraph(list(graph))


def _base_entropy(seed: int | np.random.Generator | None) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    if seed is None:  # explicitly non-reproducible
        return int(np.random.SeedSequence().entropy % (2**63 - 1))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise CausalKitError(f"seed must be a non-negative int or numpy Generator, got {seed!r}")


def node_rng(entropy: int, node: str, stream: str = "noise") -> np.random.Generator:
    """The random stream of ``node``: a function of the seed and the node's name only."""
    key = zlib.crc32(f"{stream}:{node}".encode())
    return np.random.default_rng(np.random.SeedSequence([entropy, key]))


def broadcast(value: Any, n: int, per_sample: bool | None = None) -> Any:
    """Per-sample values for a hard intervention: scalars and vectors are tiled ``n`` times.

    With ``per_sample=None`` an array whose first axis has length ``n`` is taken as
    per-sample values.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        if per_sample or (per_sample is None and value.dim() > 0 and value.shape[0] == n):
            if value.dim() == 0 or value.shape[0] != n:
                raise CausalKitError(f"per-sample do() value has shape {tuple(value.shape)}; "
                                     f"its first axis must be the batch size {n}")
            return value
        return value.unsqueeze(0).expand(n, *value.shape).clone()
    arr = np.asarray(value)
    if per_sample or (per_sample is None and arr.ndim > 0 and arr.shape[0] == n):
        if arr.ndim == 0 or arr.shape[0] != n:
            raise CausalKitError(f"per-sample do() value has shape {arr.shape}; its first "
                                 f"axis must be the batch size {n}")
        return arr
    return np.broadcast_to(arr, (n, *arr.shape)).copy()


def _batch_len(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) > 0 else None


class Samples(Mapping[str, Any]):
    """A batch drawn from an SCM: node -> values (first axis = sample), plus the noise.

    ``samples.noise[node]`` is the exogenous noise that produced ``samples[node]``;
    :meth:`StructuralCausalModel.counterfactual` reuses it.
    """

    def __init__(self, values: dict[str, Any], noise: dict[str, Any], n: int) -> None:
        self._values = values
        self.noise = noise
        self.n = n

    def __getitem__(self, node: str) -> Any:
        try:
            return self._values[node]
        except KeyError:
            raise CausalKitError(f"no node {node!r} in these samples; nodes are "
                                 f"{sorted(self._values)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Samples(n={self.n}, nodes={list(self._values)})"


class StructuralCausalModel:
    """An SCM over a :class:`~causalkit.graph.CausalGraph` with vectorised mechanisms.

    Parameters
    ----------
    graph
        The causal graph, or an edge list for one.
    mechanisms
        ``node -> f(parents, u)``; ``parents`` maps each parent's name to its batch of
        values (empty for roots) and ``u`` is the node's noise (``None`` if it has none).
        Every node needs one.
    noise
        ``node -> sampler(n, rng)`` drawing ``n`` noise values from a
        :class:`numpy.random.Generator`. Nodes without an entry get ``u = None``.
    """

    def __init__(
        self,
        graph: CausalGraph | Iterable[tuple[str, str]],
        mechanisms: Mapping[str, Mechanism],
        noise: Mapping[str, NoiseSampler] | None = None,
        *,
        _interventions: Mapping[str, Do | Draw | Shift] | None = None,
        _base: CausalGraph | None = None,
    ) -> None:
        self.graph = _as_graph(graph)
        # The graph before surgery: re-intervening a node must see its original parents.
        self._base = _base if _base is not None else self.graph
        self.mechanisms = dict(mechanisms)
        self.noise = dict(noise or {})
        self.interventions = dict(_interventions or {})
        nodes = set(self.graph.nodes)
        for what, keys in (("mechanisms", self.mechanisms), ("noise", self.noise)):
            unknown = sorted(set(keys) - nodes)
            if unknown:
                raise CausalKitError(f"{what} given for unknown node(s) {unknown}; the graph's "
                                     f"nodes are {self.graph.nodes}")
        missing = [v for v in self.graph.nodes if v not in self.mechanisms
                   and not isinstance(self.interventions.get(v), (Do, Draw))]
        if missing:
            raise CausalKitError(f"no mechanism for node(s) {missing}; give each node a "
                                 "callable f(parents, u)")
        self._order = self.graph.topological_order()

    @property
    def nodes(self) -> list[str]:
        """The nodes, in topological order."""
        return list(self._order)

    def do(self, interventions: Mapping[str, Any]) -> StructuralCausalModel:
        """A new SCM with the given interventions applied.

        Values are :class:`~causalkit.interventions.Do` (hard), ``Draw`` (random),
        ``Shift`` (soft), a plain value (hard) or a callable ``f(n, rng)`` (random). Hard
        and random interventions cut the node's incoming edges; a shift keeps them, and so
        does ``Do(PerBatch(f))``, whose values may read the parents.
        Interventions compose: a later one on the same node replaces the earlier.
        """
        specs = {v: as_intervention(s) for v, s in interventions.items()}
        unknown = sorted(set(specs) - set(self.graph.nodes))
        if unknown:
            raise CausalKitError(f"cannot intervene on unknown node(s) {unknown}; the graph's "
                                 f"nodes are {self.graph.nodes}")
        merged = {**self.interventions, **specs}
        cut = [v for v, s in merged.items() if isinstance(s, (Do, Draw))
               and not (isinstance(s, Do) and isinstance(s.value, PerBatch))]
        return StructuralCausalModel(self._base.do(*cut) if cut else self._base,
                                     self.mechanisms, self.noise, _interventions=merged,
                                     _base=self._base)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Samples:
        """Draw ``n`` samples. Same ``seed``, same samples.

        Parameters
        ----------
        n
            Number of samples (>= 1).
        seed
            A non-negative int or a :class:`numpy.random.Generator`. ``None`` draws fresh
            entropy and is therefore not reproducible.
        """
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise CausalKitError(f"n must be a positive integer, got {n!r}")
        entropy = _base_entropy(seed)
        noise = {v: self.noise[v](int(n), node_rng(entropy, v)) for v in self._order
                 if v in self.noise}
        return self._evaluate(int(n), noise, entropy)

    def counterfactual(self, samples: Samples, do: Mapping[str, Any] | None = None,
                       *, seed: int | np.random.Generator | None = 0) -> Samples:
        """Re-evaluate ``samples`` under ``do`` with their exogenous noise held fixed.

        This is Pearl's abduction-action-prediction for SCMs whose noise was recorded at
        sampling time (abduction is exact). ``seed`` drives only ``Draw`` interventions.
        """
        model = self.do(do) if do else self
        missing = [v for v in model.noise if v not in samples.noise]
        if missing:
            raise CausalKitError(f"samples lack the noise of node(s) {missing}; draw them "
                                 "with this SCM's sample()")
        return model._evaluate(samples.n, dict(samples.noise), _base_entropy(seed))

    def _evaluate(self, n: int, noise: dict[str, Any], entropy: int) -> Samples:
        values: dict[str, Any] = {}
        for v in self._order:
            spec = self.interventions.get(v)
            if isinstance(spec, Do) and isinstance(spec.value, PerBatch):
                out = spec.value(self._batch(v, n, values, noise, entropy))
            elif isinstance(spec, Do):
                out = broadcast(spec.value, n, spec.per_sample)
            elif isinstance(spec, Draw):
                out = spec.sampler(n, node_rng(entropy, v, stream="do"))
            else:
                parents = {p: values[p] for p in self.graph.parents(v)}
                out = self.mechanisms[v](parents, noise.get(v))
                if isinstance(spec, Shift):
                    out = spec.apply(out)
            length = _batch_len(out)
            if length is not None and length != n:
                raise CausalKitError(f"mechanism of {v!r} returned {length} values for a batch "
                                     f"of {n}; mechanisms must be vectorised over the batch")
            values[v] = out
        return Samples(values, noise, n)

    def _batch(self, v: str, n: int, values: dict[str, Any], noise: dict[str, Any],
               entropy: int) -> Batch:
        # what Do(PerBatch(f)) sees of node v; its edges are kept, so its parents are known
        parents = {p: values[p] for p in self.graph.parents(v)}

        def natural() -> Any:
            if v not in self.mechanisms:
                raise CausalKitError(f"node {v!r} has no mechanism to fall back on; give it "
                                     "one or make its PerBatch value ignore batch.natural")
            return self.mechanisms[v](parents, noise.get(v))

        return Batch(n=n, parents=parents, rng=node_rng(entropy, v, stream="do"),
                     natural=natural, rows=np.arange(n))

    def __repr__(self) -> str:
        do = f", do={sorted(self.interventions)}" if self.interventions else ""
        return f"StructuralCausalModel(nodes={self.graph.nodes}{do})"


class DiscreteSCM:
    """A causal Bayesian network over finite variables, enumerated exactly.

    Parameters
    ----------
    graph
        The causal graph (latent nodes are allowed: they are marginalised).
    cardinality
        ``node -> number of values``; values are ``0 .. card-1``.
    cpts
        ``node -> array`` of shape ``(*[card of each parent, in graph.parents order],
        card(node))`` holding ``P(node | parents)``; the last axis sums to one.

    Examples
    --------
    >>> import numpy as np
    >>> from causalkit.scm import DiscreteSCM
    >>> m = DiscreteSCM([("C", "X"), ("C", "Y"), ("X", "Y")], {"C": 2, "X": 2, "Y": 2},
    ...     {"C": np.array([0.5, 0.5]),
    ...      "X": np.array([[0.9, 0.1], [0.1, 0.9]]),
    ...      "Y": np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.0, 1.0]]])})
    >>> round(m.prob({"Y": 1}, given={"X": 1}), 3), round(m.prob({"Y": 1}, do={"X": 1}), 3)
    (0.95, 0.75)
    """

    def __init__(self, graph: CausalGraph | Iterable[tuple[str, str]],
                 cardinality: Mapping[str, int], cpts: Mapping[str, Any]) -> None:
        self.graph = _as_graph(graph)
        self.cardinality = {v: int(cardinality[v]) for v in self.graph.nodes
                            if v in cardinality}
        missing = [v for v in self.graph.nodes if v not in self.cardinality or v not in cpts]
        if missing:
            raise CausalKitError(f"node(s) {missing} need a cardinality and a CPT")
        self.cpts: dict[str, np.ndarray] = {}
        for v in self.graph.nodes:
            table = np.asarray(cpts[v], dtype=float)
            shape = tuple(self.cardinality[p] for p in self.graph.parents(v)) + (
                self.cardinality[v],)
            if table.shape != shape:
                raise CausalKitError(f"CPT of {v!r} has shape {table.shape}, expected {shape} "
                                     f"(parents {self.graph.parents(v)} then {v!r})")
            if np.any(table < 0) or not np.allclose(table.sum(-1), 1.0, atol=1e-9):
                raise CausalKitError(f"CPT of {v!r} must be non-negative with rows summing to 1")
            self.cpts[v] = table
        self._joint: np.ndarray | None = None

    @property
    def nodes(self) -> list[str]:
        """The nodes; axis ``i`` of :meth:`joint` is ``nodes[i]``."""
        return list(self.graph.nodes)

    @classmethod
    def random(cls, graph: CausalGraph | Iterable[tuple[str, str]],
               cardinality: Mapping[str, int], seed: int | np.random.Generator,
               *, concentration: float = 1.0) -> DiscreteSCM:
        """Random CPTs, each row drawn from a symmetric Dirichlet(``concentration``)."""
        graph = _as_graph(graph)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        cpts = {}
        for v in graph.nodes:
            shape = tuple(int(cardinality[p]) for p in graph.parents(v))
            cpts[v] = rng.dirichlet([concentration] * int(cardinality[v]), size=shape)
        return cls(graph, cardinality, cpts)

    def joint(self) -> np.ndarray:
        """The full joint distribution, one axis per node (in :attr:`nodes` order)."""
        if self._joint is None:
            nodes = self.nodes
            joint = np.ones([self.cardinality[v] for v in nodes])
            for v in nodes:
                # Place the CPT's axes (parents..., v) at their nodes' positions; broadcast.
                axes = [nodes.index(p) for p in self.graph.parents(v)] + [nodes.index(v)]
                order = np.argsort(axes)
                shape = [1] * len(nodes)
                for a in axes:
                    shape[a] = self.cardinality[nodes[a]]
                joint = joint * np.transpose(self.cpts[v], order).reshape(shape)
            self._joint = joint
        return self._joint

    def do(self, interventions: Mapping[str, Any]) -> DiscreteSCM:
        """Intervene: an int sets the node (``do(V := v)``); a probability vector
        randomises it (``do(V ~ q)``). Incoming edges are cut."""
        cpts = dict(self.cpts)
        for v, spec in interventions.items():
            if v not in self.cardinality:
                raise CausalKitError(f"cannot intervene on unknown node {v!r}; nodes are "
                                     f"{self.nodes}")
            spec = spec.value if isinstance(spec, Do) else spec
            k = self.cardinality[v]
            q = np.asarray(spec, dtype=float)
            if q.ndim == 0:
                if not (float(spec) == int(spec) and 0 <= int(spec) < k):
                    raise CausalKitError(f"do({v}={spec!r}) is outside its values 0..{k - 1}")
                q = np.eye(k)[int(spec)]
            if q.shape != (k,) or np.any(q < 0) or not np.isclose(q.sum(), 1.0):
                raise CausalKitError(f"do({v}) needs a value in 0..{k - 1} or a probability "
                                     f"vector of length {k}")
            cpts[v] = q
        graph = self.graph.do(*interventions)
        return DiscreteSCM(graph, self.cardinality, cpts)

    def prob(self, event: Mapping[str, int], given: Mapping[str, int] | None = None,
             do: Mapping[str, Any] | None = None) -> float:
        """``P(event | given, do(...))`` computed exactly from the enumerated joint."""
        model = self.do(do) if do else self
        joint = model.joint()
        p_both = model._marginal(joint, {**(given or {}), **event})
        if not given:
            return p_both
        for v in set(event) & set(given):
            if event[v] != given[v]:
                return 0.0
        p_given = model._marginal(joint, given)
        if p_given == 0:
            raise CausalKitError(f"P({given}) = 0: the conditional is undefined")
        return p_both / p_given

    def _marginal(self, joint: np.ndarray, event: Mapping[str, int]) -> float:
        index: list[Any] = [slice(None)] * len(self.nodes)
        for v, value in event.items():
            if v not in self.cardinality:
                raise CausalKitError(f"unknown node {v!r}; nodes are {self.nodes}")
            index[self.nodes.index(v)] = int(value)
        return float(joint[tuple(index)].sum())

    def table(self, nodes: Iterable[str], do: Mapping[str, Any] | None = None) -> np.ndarray:
        """The exact marginal (interventional, with ``do``) distribution of ``nodes``."""
        model = self.do(do) if do else self
        nodes = list(nodes)
        keep = [model.nodes.index(v) for v in nodes]
        drop = tuple(i for i in range(len(model.nodes)) if i not in keep)
        marg = model.joint().sum(axis=drop)
        order = sorted(range(len(keep)), key=lambda i: keep[i])
        return np.moveaxis(marg, list(range(len(keep))), order)

    def to_scm(self) -> StructuralCausalModel:
        """The same model as a sampling :class:`StructuralCausalModel`.

        Each node draws ``u ~ U(0, 1)`` and takes the inverse CDF of its CPT row.
        """

        def mechanism(v: str) -> Mechanism:
            parents = self.graph.parents(v)
            cdf = np.cumsum(self.cpts[v], axis=-1)

            def f(pa: dict[str, Any], u: np.ndarray) -> np.ndarray:
                rows = cdf[tuple(np.asarray(pa[p], dtype=int) for p in parents)] if parents \
                    else np.broadcast_to(cdf, (len(u), cdf.shape[-1]))
                return np.minimum((u[:, None] > rows).sum(-1), cdf.shape[-1] - 1)

            return f

        return StructuralCausalModel(
            self.graph, {v: mechanism(v) for v in self.nodes},
            {v: (lambda n, rng: rng.random(n)) for v in self.nodes})

    def states(self) -> Iterator[dict[str, int]]:
        """Every joint assignment of the nodes (for brute-force checks)."""
        for combo in itertools.product(*(range(self.cardinality[v]) for v in self.nodes)):
            yield dict(zip(self.nodes, combo, strict=True))
