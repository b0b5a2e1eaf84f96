"""Counterfactual data sets from any CGN: interventions on its nodes, its noise held fixed.

A counterfactual set starts from *base samples*: a noise draw ``u`` (every noise node the
CGN declares, :mod:`generators.cgn.protocol`) and one class ``y`` that every label node
shares, so that a base image is a plain, label-aligned CGN sample. Each base sample then
gets ``per_noise`` counterfactuals: the CGN's SCM (:func:`~generators.cgn.scm.cgn_scm`)
evaluated under a set of interventions on the graph's nodes, with the base noise held
fixed. The vocabulary is :mod:`causalkit.interventions`:

``Draw(prior)`` on a label node
    The label is redrawn for every counterfactual: ``randomise=("texture",
    "background")`` is ``{"Y2": Draw(...), "Y3": Draw(...)}`` with the labels' own
    priors (:func:`redraw`), the paper's setting; ``randomise=()`` gives the
    label-aligned samples themselves (the "Original + GAN" baseline).
``Do(value)`` on a label or noise node
    A fixed value, e.g. ``{"Y3": Do(4)}``: every background of class 4.
``Do(values, per_sample=True)`` on a mechanism node
    The node's value replaced by given values, one per base sample (their first axis is
    the number of base samples): an abducted mask is ``{"M": Do(masks)}``.
``Do(PerBatch(f))`` on a mechanism node
    Values computed for every batch of counterfactuals from a
    :class:`~causalkit.interventions.Batch` -- the node's parents, a stream of its own,
    the value its mechanism would have had: real backgrounds are ``{"B":
    Do(PerBatch(...))}`` reading the background label ``Y3``.

Counterfactuals of *observed* images start from an :class:`Abduction` instead (the
observed labels and the noise inferred from the images) -- Pearl's abduction, action,
prediction; :mod:`generators.cgn.mnist.abduction` makes one with the MNIST encoder.

Random streams (they define every set, so they are part of the interface). Base samples
come in chunks of ``chunk``; chunk ``c`` draws from ``default_rng(SeedSequence([seed,
c]))``: first every noise node in declaration order, then (prior noise only) the base
class from the first label node's prior; then, for each counterfactual, every ``Draw``
in declaration order (labels, noise, mechanisms). Each ``PerBatch`` value gets a stream
spawned from the chunk's seed sequence, one per node in declaration order, so that it
leaves the labels and the noise those of the same set without it.

Mechanisms whose inputs no ``Draw`` or ``PerBatch`` value changes are evaluated once per
chunk, not once per counterfactual, and a mechanism whose node is set by ``Do`` is not
evaluated at all.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError, DataError
from causalkit.interventions import Batch, Do, Draw, PerBatch, Shift, as_intervention
from causalkit.io import atomic_write_bytes
from causalkit.scm import broadcast
from generators.cgn.protocol import CGN, check_cgn, label_nodes_by_name
from generators.cgn.scm import cgn_scm
from generators.images import to_uint8

__all__ = ["CounterfactualSet", "Abduction", "generate_counterfactuals",
           "abducted_counterfactuals", "assemble_counterfactuals", "redraw", "LABELS"]

#: the mechanisms whose labels a :class:`CounterfactualSet` records (every CGN has them)
LABELS = ("shape", "texture", "background")


@dataclass
class CounterfactualSet:
    """Generated images (uint8, N x C x H x W) with their shape, texture, background labels."""

    images: np.ndarray
    shape: np.ndarray
    texture: np.ndarray
    background: np.ndarray
    group: np.ndarray  # index of the noise draw each image came from
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def labels(self) -> np.ndarray:
        """(N, 3) int64: shape, texture, background."""
        return np.stack([self.shape, self.texture, self.background], axis=1)

    def save(self, path: str | os.PathLike) -> Path:
        """Atomically write an ``.npz`` (uint8 images, int64 labels, JSON meta)."""
        import json

        buf = io.BytesIO()
        np.savez(buf, images=self.images, shape=self.shape, texture=self.texture,
                 background=self.background, group=self.group,
                 meta=np.frombuffer(json.dumps(self.meta).encode(), np.uint8))
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> CounterfactualSet:
        """Read a set written by :meth:`save`."""
        import json
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["images"], z["shape"], z["texture"], z["background"],
                           z["group"], json.loads(z["meta"].tobytes().decode()))
        except FileNotFoundError:
            raise DataError(f"counterfactual set {path} does not exist; check the path") \
                from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path} is not a counterfactual set written by causalkit "
                            f"({type(exc).__name__}: {exc}); pass the counterfactuals.npz "
                            "of a CGN run") from None


@dataclass(frozen=True)
class Abduction:
    """Observed samples with the exogenous noise inferred for them (the abduction step).

    Attributes
    ----------
    labels : int array (N,)
        The observed classes; every label node of a base sample takes its image's class.
    noise : mapping
        Noise node -> values inferred for the ``N`` samples (first axis ``N``), e.g. an
        encoder's posterior means. Noise nodes left out are drawn from the prior.
    """

    labels: np.ndarray
    noise: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.labels)
        bad = {v: len(a) for v, a in self.noise.items() if len(a) != n}
        if bad:
            raise CausalKitError(f"abducted noise {bad} has other lengths than the {n} labels; "
                                 "give one value per observed sample")


@dataclass(frozen=True)
class _Chunk:
    start: int  # index of the chunk's first base sample
    noise: dict[str, Any]  # noise node -> the chunk's values
    labels: np.ndarray  # the base class of each sample
    rng: np.random.Generator  # the chunk's stream


def redraw(cgn: CGN, names: Iterable[str]) -> dict[str, Draw]:
    """``Draw`` from their priors on the label nodes of the mechanisms ``names``.

    >>> from generators.cgn.mnist import MnistCGN
    >>> sorted(redraw(MnistCGN(ngf=8), ["texture", "background"]))
    ['Y2', 'Y3']
    """
    names = set(names)
    by_name = label_nodes_by_name(cgn)
    bad = sorted(names - set(by_name))
    if bad:
        raise CausalKitError(f"unknown mechanism(s) {bad} in randomise; choose from "
                             f"{sorted(by_name)}")
    return {y: Draw(cgn.label_nodes[y].sample) for name, y in by_name.items() if name in names}


def generate_counterfactuals(cgn: CGN, n: int, *, per_noise: int = 1,
                             randomise: tuple[str, ...] | list[str] = ("texture", "background"),
                             interventions: Mapping[str, Any] | None = None, seed: int = 0,
                             chunk: int = 1000, progress: bool = True,
                             meta: Mapping[str, Any] | None = None) -> CounterfactualSet:
    """Generate ``n`` counterfactual images from prior noise.

    Parameters
    ----------
    cgn : CGN
        A trained (or imported) CGN, e.g. :class:`~generators.cgn.mnist.model.MnistCGN`.
    n : int
        Number of images; ``ceil(n / per_noise)`` noise draws, trimmed to ``n``.
    per_noise : int
        Counterfactuals per noise draw ``u`` (the official ``no_cfs``).
    randomise : subset of the mechanism names ({"shape", "texture", "background"})
        Mechanisms whose labels are redrawn for each counterfactual (:func:`redraw`).
    interventions : mapping, optional
        Further interventions, node -> ``Do`` / ``Draw`` / ``Shift`` (module docstring);
        they replace a redraw on the same node.
    seed : int
        Same seed, same set.
    chunk : int
        Noise draws evaluated at a time (bounds memory).
    progress : bool
        Show a tqdm bar.
    meta : mapping, optional
        Entries added to the set's ``meta``, e.g. what ``interventions`` stand for (the
        set records ``n``, ``per_noise``, ``randomise``, ``seed`` and ``noise`` itself).
    """
    from causalkit.progress import progress as progress_bar

    if n < 1 or per_noise < 1 or chunk < 1:
        raise CausalKitError(f"n, per_noise and chunk must be >= 1, got {n}, {per_noise}, "
                             f"{chunk}")
    check_cgn(cgn)
    do = {**redraw(cgn, randomise), **(interventions or {})}
    n_noise = -(-n // per_noise)
    base_class = next(iter(cgn.label_nodes.values()))

    def chunks() -> Iterator[_Chunk]:
        for c, start in enumerate(progress_bar(range(0, n_noise, chunk), desc="counterfactuals",
                                               enabled=progress)):
            m = min(chunk, n_noise - start)
            rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
            noise = {v: e.sample(m, rng) for v, e in cgn.noise_nodes.items()}
            yield _Chunk(start, noise, base_class.sample(m, rng), rng)

    info = {"n": int(n), "per_noise": int(per_noise), "randomise": sorted(randomise),
            "seed": int(seed), "noise": "prior", **(meta or {})}
    return assemble_counterfactuals(cgn, chunks(), n_base=n_noise, per_noise=per_noise,
                                    interventions=do, n=n, meta=info)


def abducted_counterfactuals(cgn: CGN, abduction: Abduction, *, per_image: int = 1,
                             randomise: tuple[str, ...] | list[str] = ("texture", "background"),
                             interventions: Mapping[str, Any] | None = None, seed: int = 0,
                             chunk: int = 1000, progress: bool = True,
                             meta: Mapping[str, Any] | None = None) -> CounterfactualSet:
    """Counterfactuals of observed samples: abduction done, action and prediction here.

    Each observed sample is a base sample with its observed label and its abducted noise
    (the noise nodes ``abduction`` leaves out come from the prior, seeded); the action
    is ``randomise`` and ``interventions`` (as in :func:`generate_counterfactuals`), the
    prediction runs the CGN. Per-sample ``Do`` values have one value per observed sample.

    Parameters
    ----------
    cgn : CGN
        The generator.
    abduction : Abduction
        The observed labels and the noise inferred for them.
    per_image : int
        Counterfactuals per observed sample.
    randomise, interventions, seed, chunk, progress
        As in :func:`generate_counterfactuals`.
    meta : mapping, optional
        As in :func:`generate_counterfactuals`.
    """
    from causalkit.progress import progress as progress_bar

    y_all = np.asarray(abduction.labels, dtype=np.int64)
    if per_image < 1 or chunk < 1:
        raise CausalKitError(f"per_image and chunk must be >= 1, got {per_image}, {chunk}")
    check_cgn(cgn)
    unknown = sorted(set(abduction.noise) - set(cgn.noise_nodes))
    if unknown:
        raise CausalKitError(f"abducted noise for unknown node(s) {unknown}; the CGN's noise "
                             f"nodes are {list(cgn.noise_nodes)}")
    do = {**redraw(cgn, randomise), **(interventions or {})}

    def chunks() -> Iterator[_Chunk]:
        for c, start in enumerate(progress_bar(range(0, len(y_all), chunk), desc="abduction",
                                               enabled=progress)):
            sl = slice(start, start + chunk)
            rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
            y = y_all[sl]
            # abducted noise where it was inferred, the prior for the rest
            noise = {v: e.sample(len(y), rng) for v, e in cgn.noise_nodes.items()}
            noise.update({v: a[sl] for v, a in abduction.noise.items()})
            yield _Chunk(start, noise, y, rng)

    n = len(y_all) * per_image
    info = {"n": int(n), "per_noise": int(per_image), "randomise": sorted(randomise),
            "seed": int(seed), "noise": "abducted", **(meta or {})}
    return assemble_counterfactuals(cgn, chunks(), n_base=len(y_all), per_noise=per_image,
                                    interventions=do, n=n, meta=info)


class _Plan:
    """Which nodes a set of interventions touches, and which change per counterfactual."""

    def __init__(self, cgn: CGN, interventions: Mapping[str, Any], n_base: int) -> None:
        self.scm = cgn_scm(cgn)
        mech = cgn.mechanism_nodes
        self.image = cgn.composer.node
        self.labels = list(cgn.label_nodes)
        self.roots = [v for v in cgn.noise_nodes if v not in mech]
        self.order = self.labels + self.roots + list(mech) + [self.image]
        self.parents = {v: self.scm.graph.parents(v) for v in self.order}
        self.specs = {v: as_intervention(s) for v, s in interventions.items()}
        unknown = sorted(set(self.specs) - set(self.order))
        if unknown:
            raise CausalKitError(f"cannot intervene on unknown node(s) {unknown}; the CGN's "
                                 f"nodes are {self.order}")
        self.n_base = n_base
        self.dynamic: set[str] = set()  # nodes that change from one counterfactual to the next
        for v in self.order:
            spec = self.specs.get(v)
            if isinstance(spec, Draw) or _per_batch(spec):
                self.dynamic.add(v)
            elif not isinstance(spec, Do) and any(p in self.dynamic for p in self.parents[v]):
                self.dynamic.add(v)
        self.draws = [v for v in self.order if isinstance(self.specs.get(v), Draw)]
        self.per_batch = [v for v in self.order if _per_batch(self.specs.get(v))]

    def do_values(self, spec: Do, start: int, m: int) -> Any:
        # per-sample values are per base sample: the chunk takes its rows
        value = spec.value
        shape = getattr(value, "shape", None)
        whole = spec.per_sample or (spec.per_sample is None and shape is not None
                                    and len(shape) > 0 and shape[0] == self.n_base)
        if not whole:
            return broadcast(value, m, per_sample=False)
        if shape is None or len(shape) == 0 or shape[0] != self.n_base:
            raise CausalKitError(f"per-sample do() value has shape {shape}; its first axis must "
                                 f"be the number of base samples, {self.n_base}")
        return value[start:start + m]


def _per_batch(spec: Any) -> bool:
    return isinstance(spec, Do) and isinstance(spec.value, PerBatch)


class _ChunkEvaluation:
    """The nodes of one chunk's counterfactuals, each evaluated as rarely as it can be."""

    def __init__(self, plan: _Plan, chunk: _Chunk) -> None:
        self.plan, self.chunk = plan, chunk
        self.m = len(chunk.labels)
        self.rows = np.arange(chunk.start, chunk.start + self.m)
        seeds = chunk.rng.bit_generator.seed_seq
        self.streams = {v: np.random.default_rng(seeds.spawn(1)[0]) for v in plan.per_batch}
        self.static: dict[str, Any] = {}  # values shared by the chunk's counterfactuals
        self.values: dict[str, Any] = {}  # this counterfactual's own values

    def next(self) -> None:
        """Start the next counterfactual: draw its Draw nodes, in declaration order."""
        self.values = {v: self.plan.specs[v].sampler(self.m, self.chunk.rng)
                       for v in self.plan.draws}

    def __getitem__(self, v: str) -> Any:
        store = self.values if v in self.plan.dynamic else self.static
        if v not in store:
            store[v] = self._evaluate(v)
        return store[v]

    def _natural(self, v: str) -> Any:
        key = f"natural:{v}"
        store = (self.values if any(p in self.plan.dynamic for p in self.plan.parents[v])
                 else self.static)
        if key not in store:
            parents = {p: self[p] for p in self.plan.parents[v]}
            store[key] = self.plan.scm.mechanisms[v](parents, self.chunk.noise.get(v))
        return store[key]

    def _evaluate(self, v: str) -> Any:
        plan, spec = self.plan, self.plan.specs.get(v)
        if _per_batch(spec):
            parents = {p: self[p] for p in plan.parents[v]}
            return spec.value(Batch(n=self.m, parents=parents, rng=self.streams[v],
                                    natural=lambda: self._natural(v), rows=self.rows))
        if isinstance(spec, Do):
            return plan.do_values(spec, self.chunk.start, self.m)
        if v in plan.labels:
            out = self.chunk.labels
        elif v in plan.roots:
            out = self.chunk.noise[v]
        else:
            out = self._natural(v)
        return spec.apply(out) if isinstance(spec, Shift) else out


def assemble_counterfactuals(cgn: CGN, chunks: Iterable[_Chunk], *, n_base: int,
                             per_noise: int, interventions: Mapping[str, Any], n: int,
                             meta: dict[str, Any]) -> CounterfactualSet:
    """The counterfactual set of base-sample ``chunks`` under ``interventions``.

    The engine behind :func:`generate_counterfactuals` and
    :func:`abducted_counterfactuals` (which make the chunks); the module docstring says
    how the interventions and random streams act. ``n_base`` is the number of base
    samples (the length of per-sample ``Do`` values), ``n`` the set's size after
    trimming the last group.
    """
    names = label_nodes_by_name(cgn)
    missing = [name for name in LABELS if name not in names]
    if missing:
        raise CausalKitError(f"a counterfactual set records the labels of {list(LABELS)}; "
                             f"the CGN has no labelled mechanism named {missing}")
    plan = _Plan(cgn, interventions, n_base)
    out: dict[str, list[np.ndarray]] = {key: [] for key in ("images", *LABELS, "group")}
    for chunk in chunks:
        nodes = _ChunkEvaluation(plan, chunk)
        m = len(chunk.labels)
        for _ in range(per_noise):
            nodes.next()
            out["images"].append(to_uint8(nodes[plan.image]).numpy())
            for name in LABELS:
                out[name].append(np.asarray(nodes[names[name]], np.int64))
            out["group"].append(np.arange(chunk.start, chunk.start + m))
    arrays = {key: np.concatenate(v) for key, v in out.items()}
    # sort so the counterfactuals of one u sit together, then trim the last group
    order = np.argsort(arrays["group"], kind="stable")[:n]
    arrays = {key: v[order] for key, v in arrays.items()}
    return CounterfactualSet(**arrays, meta=meta)
