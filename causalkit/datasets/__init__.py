"""Biased image datasets as structural causal models.

Colored, double-colored and Wildlife MNIST are :class:`~causalkit.scm.StructuralCausalModel`
instances whose nuisances (colours, textures) are nodes tied to the label with strength
``rho``; their OOD test split is the same SCM under ``do(nuisance := uniform)``.

Examples
--------
>>> from causalkit.datasets import get_dataset                     # doctest: +SKIP
>>> train = get_dataset("colored-mnist", "train", rho=1.0, seed=0)  # doctest: +SKIP
>>> image, label, nuisances = train[0]                              # doctest: +SKIP
>>> ood = get_dataset("colored-mnist", "ood", seed=0)               # doctest: +SKIP

Names also accept the split after a colon: ``get_dataset("wildlife-mnist:ood")``.
"""

from __future__ import annotations

from typing import Any

from causalkit.datasets.build import (
    SPLITS,
    BiasedSplit,
    build_split,
    get_scm,
    get_variant,
    split_seed,
)
from causalkit.datasets.mnist import (
    DigitPool,
    EmbeddedSourceWarning,
    MnistSource,
    download_mnist,
    load_embedded,
    load_mnist_dir,
    read_idx,
    resolve_source,
)
from causalkit.datasets.variants import (
    VARIANTS,
    ColoredMNIST,
    DoubleColoredMNIST,
    Variant,
    WildlifeMNIST,
)
from causalkit.errors import DataError

__all__ = [
    "DATASETS", "SPLITS", "get_dataset", "build_split", "get_scm", "get_variant",
    "split_seed", "BiasedSplit",
    "Variant", "ColoredMNIST", "DoubleColoredMNIST", "WildlifeMNIST", "DigitPool",
    "MnistSource", "EmbeddedSourceWarning", "read_idx", "load_mnist_dir", "load_embedded",
    "download_mnist", "resolve_source",
]

#: The registry: dataset name -> its :class:`Variant` (graph, SCM, OOD intervention).
DATASETS: dict[str, Variant] = VARIANTS


def get_dataset(name: str, split: str | None = None, **kwargs: Any):
    """A split of a registered dataset as a torch Dataset
    (:class:`~causalkit.datasets.torch_dataset.BiasedMNIST`).

    Parameters
    ----------
    name
        A key of :data:`DATASETS`, optionally with the split: ``"colored-mnist:ood"``.
    split
        ``"train"`` (default), ``"test"`` or ``"ood"``.
    **kwargs
        Passed to :func:`build_split` (``rho``, ``sigma``, ``seed``, ``source``,
        ``textures``, ``n``, ``cache``, ``cache_dir``) plus ``transform`` for the Dataset.
    """
    from causalkit.datasets.torch_dataset import BiasedMNIST

    base, _, suffix = name.partition(":")
    if suffix and split is not None and suffix != split:
        raise DataError(f"{name!r} names split {suffix!r} but split={split!r} was passed")
    transform = kwargs.pop("transform", None)
    return BiasedMNIST(build_split(base, suffix or split or "train", **kwargs), transform)
