"""One table of training methods: what each trains on and with which objective.

A *method* is what a user asks for (``causalkit train --method genint``, a row of the
CGN paper's Table 2); an *objective* is the loss that trains it
(:mod:`robust_training.objectives`). A method names

- its **objective**;
- its **streams**, the kinds of data it sees, in order: ``real`` images, GenInt's
  interventional samples ``int``, observational GAN samples ``obs``, transferred
  images ``transfer``, CGN counterfactuals ``cf``, label-aligned CGN samples ``gan``,
  or ``envs``, the run's IRM environments;
- its **hyper-parameters**, as the run setting each one takes its value from (GenInt's
  ``lambda1`` is the run's ``lambda1``; GAN augmentation's ``lambda_gen`` is the same
  setting, the weight of the generated stream); a setting the run does not give falls
  back to the objective's default.

Pipelines decide how streams become batches: GenInt draws a batch from each stream
(per-stream batch sizes), the CGN pipeline pools them; a method with ``pooled_batch``
feeds its single stream at the size of all of GenInt's streams together (the
generated-only rows of GenInt's Table 4).

>>> m = get_method("genint-transfer")
>>> m.objective, m.streams
('genint-transfer', ('real', 'int', 'transfer'))
>>> m.hparams_from({"lambda1": 0.5, "lambda2": 2.0})
{'lambda1': 0.5, 'lambda2': 2.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from causalkit.errors import CausalKitError

__all__ = ["Method", "METHODS", "get_method", "method_streams"]


@dataclass(frozen=True)
class Method:
    """A training method: objective, streams, and where its hyper-parameters come from."""

    objective: str
    streams: tuple[str, ...]
    #: objective hyper-parameter -> the run setting that gives its value
    hparams: Mapping[str, str] = field(default_factory=dict)
    #: a single stream batched at the size of real plus generated streams together
    pooled_batch: bool = False

    def hparams_from(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The objective's hyper-parameters from a run's ``settings`` (those it gives)."""
        return {hp: settings[name] for hp, name in self.hparams.items() if name in settings}


#: pipeline -> method name -> method. "genint": causalkit train and the GenInt
#: benchmarks; "cgn": the rows of the CGN paper's Table 2 (the CGN-MNIST pipeline).
METHODS: Mapping[str, Mapping[str, Method]] = MappingProxyType({
    "genint": MappingProxyType({
        "erm": Method("erm", ("real",)),
        "gan-aug": Method("gan-aug", ("real", "obs"), {"lambda_gen": "lambda1"}),
        "genint": Method("genint", ("real", "int"), {"lambda1": "lambda1"}),
        "genint-transfer": Method("genint-transfer", ("real", "int", "transfer"),
                                  {"lambda1": "lambda1", "lambda2": "lambda2"}),
        "mixup": Method("mixup", ("real",)),
        "irm": Method("irm", ("real", "int")),
        "cgn": Method("cgn-heads", ("real", "cf")),
        "gen-only-int": Method("erm", ("int",), pooled_batch=True),
        "gen-only-obs": Method("erm", ("obs",), pooled_batch=True),
    }),
    "cgn": MappingProxyType({
        "original": Method("erm", ("real",)),
        "irm-2": Method("irm", ("envs",), {"penalty_weight": "irm_penalty"}),
        "irm-5": Method("irm", ("envs",), {"penalty_weight": "irm_penalty"}),
        "original+gan": Method("erm", ("real", "gan")),
        "original+cgn": Method("cgn-heads", ("real", "cf"), {"aux_weight": "cgn_aux_weight"}),
        "cgn": Method("cgn-heads", ("cf",), {"aux_weight": "cgn_aux_weight"}),
    }),
})


def get_method(name: str, *, pipeline: str = "genint") -> Method:
    """The method ``name`` of ``pipeline`` ("genint" or "cgn")."""
    if pipeline not in METHODS:
        raise CausalKitError(f"unknown pipeline {pipeline!r}; choose one of {list(METHODS)}")
    if name not in METHODS[pipeline]:
        raise CausalKitError(f"unknown method {name!r}; choose one of "
                             f"{list(METHODS[pipeline])}")
    return METHODS[pipeline][name]


#: stream kind -> which of a run's batch sizes it takes (GenInt's per-stream batches)
_BATCH = {"real": "batch_size", "int": "gen_batch_size", "obs": "gen_batch_size",
          "cf": "gen_batch_size", "transfer": "transfer_batch_size"}


def method_streams(method: Method, data: Mapping[str, tuple[Any, Any]], *, batch_size: int,
                   gen_batch_size: int, transfer_batch_size: int) -> list[Any]:
    """The :class:`~robust_training.streams.Stream` list of ``method``: one stream per
    kind it names, from ``data`` (kind -> (images, labels)), each with its batch size.

    Raises :class:`CausalKitError` naming the missing data when a kind is absent.
    """
    from robust_training.streams import Stream

    sizes = {"batch_size": batch_size, "gen_batch_size": gen_batch_size,
             "transfer_batch_size": transfer_batch_size}
    missing = [k for k in method.streams if k not in data]
    if missing:
        raise CausalKitError(f"objective {method.objective!r} needs the {missing} stream(s); "
                             "give their data")
    if method.pooled_batch:
        return [Stream(k, *data[k], batch_size + gen_batch_size) for k in method.streams]
    return [Stream(k, *data[k], sizes[_BATCH[k]]) for k in method.streams]
