"""GenInt on biased MNIST: ERM, GAN augmentation, GenInt and GenInt + transfer.

Setting. Double-colored MNIST (the default) or colored MNIST with rho = 0.9: the colour
classes each equal the digit with probability 0.9 (training and in-distribution test);
the OOD test split is the same SCM under do(colour classes := uniform). A small GAN
(:mod:`generators.small_gan`, ``python -m generators.small_gan_train``) trained on the
biased training data generates the interventional data.

Streams (:mod:`robust_training.methods`). ``real``: ``data.n_train`` biased training
images. ``int``: GenInt samples, ``interventions.strategy`` on the GAN's SVD-shortcut
directions or on GANSpace directions of ``interventions.layer`` (several layers joined
by ``+``). ``obs``: observational samples, the same truncation and no intervention (GAN
augmentation). ``transfer``: ``T(I, X_int)``, Gram matching of random features,
labelled with the real image's label. The pools are generated once per configuration
and cached in the work folder.

Runs. Each (method, seed) trains the MNIST CNN for ``classifier.steps`` steps and gives
one record; the generated-only methods (``gen-only-int``, ``gen-only-obs``) are the
analogue of the paper's Table 4: trained on generated data only, tested on real data.

One pipeline. This benchmark is the GenInt pipeline of
:mod:`robust_training.experiments.genint_pipeline` at MNIST scale: its pools are the
in-memory outputs of the pipeline's generate and transfer stages, held as
:class:`~robust_training.experiments.genint_pipeline.Memory` sources, and every run goes
through the same :func:`~robust_training.experiments.genint_pipeline.method_parts`,
:func:`~robust_training.experiments.genint_pipeline.batch_source` and
:func:`~robust_training.experiments.genint_pipeline.train_run` as the ImageNet
experiment (:mod:`robust_training.experiments.genint_imagenet`), whose streams are
folders on disk or a generator on the training device.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.io import load_torch, save_torch
from robust_training.experiments.config import ExperimentConfig, Section
from robust_training.methods import get_method

__all__ = ["GenIntMnistConfig", "METHODS", "NUISANCE", "FLAGS", "splits", "build_pools",
           "nuisance_alignment", "train_method", "transfer_figure", "summarize",
           "run_genint_mnist"]

METHODS = ("erm", "gan-aug", "genint", "genint-transfer", "gen-only-int", "gen-only-obs")
#: the nuisance whose tie to the label the alignment statistic measures, per variant
NUISANCE = {"double-colored-mnist": "background colour", "colored-mnist": "digit colour"}


@dataclass
class DataSection(Section):
    """The biased real data (the GAN must be trained on the same)."""

    variant: str = "double-colored-mnist"
    rho: float = 0.9
    source: str | None = None  # MNIST source; null = resolve_source's default
    n_train: int = 10000

    def validate(self) -> None:
        if self.variant not in NUISANCE:
            raise CausalKitError(f"unknown variant {self.variant!r}; choose one of "
                                 f"{sorted(NUISANCE)}")
        if not 0 <= self.rho <= 1:
            raise CausalKitError(f"data.rho must be in [0, 1], got {self.rho}")


@dataclass
class GeneratorSection(Section):
    """The small GAN that generates the interventional and observational pools."""

    path: str | None = None  # a small-GAN folder (generator.pt)

    def validate(self) -> None:
        if self.path is None:
            raise CausalKitError("no generator: pass --generator DIR (a small-GAN folder "
                                 "from python -m generators.small_gan_train)")
        if not (Path(self.path) / "generator.pt").is_file():
            raise CausalKitError(f"{self.path} holds no generator.pt; pass a small-GAN "
                                 "folder written by python -m generators.small_gan_train")


@dataclass
class InterventionSection(Section):
    """GenInt's intervention, identical for every class, and the observational baseline."""

    strategy: str = "t=1,k=8,s=1"
    layer: str | None = None  # GANSpace layer(s); null = the affine first layer's shortcut
    obs_strategy: str = "observational:t=1"
    per_class: int = 1000
    pool_seed: int = 0

    def validate(self) -> None:
        from generators.strategies import parse_strategy

        parse_strategy(self.strategy)
        parse_strategy(self.obs_strategy)
        if self.per_class < 1:
            raise CausalKitError(f"interventions.per_class must be >= 1, got "
                                 f"{self.per_class}")


@dataclass
class TransferSection(Section):
    """Style transfer of interventional samples onto real images."""

    n: int = 5000
    steps: int = 20


@dataclass
class ClassifierSection(Section):
    """One MNIST CNN per (method, seed)."""

    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 1200
    batch_size: int = 64
    gen_batch_size: int = 64
    transfer_batch_size: int = 32
    lambda1: float = 1.0
    lambda2: float = 1.0
    lr: float = 2e-3

    def validate(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise CausalKitError(f"unknown method(s) {unknown} in classifier.methods; "
                                 f"choose from {list(METHODS)}")


#: flat option names (the benchmark's flags and its records' settings) -> nested paths
FLAGS = {
    "generator": "generator.path", "source": "data.source", "variant": "data.variant",
    "rho": "data.rho", "n_train": "data.n_train", "strategy": "interventions.strategy",
    "layer": "interventions.layer", "obs_strategy": "interventions.obs_strategy",
    "per_class": "interventions.per_class", "transfer_n": "transfer.n",
    "transfer_steps": "transfer.steps", "pool_seed": "interventions.pool_seed",
    "steps": "classifier.steps", "batch_size": "classifier.batch_size",
    "gen_batch_size": "classifier.gen_batch_size",
    "transfer_batch_size": "classifier.transfer_batch_size",
    "lambda1": "classifier.lambda1", "lambda2": "classifier.lambda2", "lr": "classifier.lr",
    "methods": "classifier.methods", "seeds": "classifier.seeds",
}


@dataclass
class GenIntMnistConfig(ExperimentConfig):
    """GenInt against its baselines on a biased MNIST variant."""

    EXPERIMENT: ClassVar[str] = "genint-mnist"
    FLAGS: ClassVar[dict[str, str]] = FLAGS

    data: DataSection = field(default_factory=DataSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    interventions: InterventionSection = field(default_factory=InterventionSection)
    transfer: TransferSection = field(default_factory=TransferSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)

    def settings(self) -> dict[str, Any]:
        """The flat settings a record stores (all but the methods and seeds), with the
        generator's digest, so a GAN retrained in the same folder matches no old record."""
        from causalkit.records import file_digest

        out = {k: v for k, v in self.flat().items() if k not in ("methods", "seeds")}
        out["generator_sha256"] = file_digest(Path(self.generator.path) / "generator.pt")
        return out


def splits(config: GenIntMnistConfig) -> dict[str, Any]:
    """The ``train`` (``data.n_train`` images), ``test`` and ``ood`` splits (data seed 0)."""
    from causalkit.datasets import build_split

    d = config.data
    return {name: build_split(d.variant, name, rho=d.rho, seed=0, source=d.source, n=n,
                              cache=False)
            for name, n in (("train", d.n_train), ("test", None), ("ood", None))}


def build_pools(config: GenIntMnistConfig, train: Any, work: str | Path, *,
                digest: str, progress: bool = True
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The generated ``int`` and ``obs`` pools and the ``transfer`` pool, cached in
    ``work`` under a key of everything they depend on."""
    from generators.small_gan import load_small_gan
    from robust_training.sources import generated_pool, transfer_stream

    iv, tr = config.interventions, config.transfer
    key = json.dumps([config.generator.path, digest, iv.layer, iv.strategy, iv.obs_strategy,
                      iv.per_class, iv.pool_seed, config.data.n_train, tr.n, tr.steps,
                      config.data.rho, config.data.variant])
    key = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(work) / f"pools-{key}.pt"
    kinds = ("int", "obs", "transfer")
    if path.is_file():
        st = load_torch(path)
        return {k: (st[f"{k}_x"], st[f"{k}_y"]) for k in kinds}
    t0 = time.perf_counter()
    gen = load_small_gan(config.generator.path, device="cpu")  # once for both pools
    xi, yi = generated_pool(gen, iv.strategy, iv.per_class, seed=iv.pool_seed, layer=iv.layer)
    xo, yo = generated_pool(gen, iv.obs_strategy, iv.per_class, seed=iv.pool_seed)
    xt, yt = transfer_stream(train.images, train.labels, xi, tr.n, seed=iv.pool_seed,
                             steps=tr.steps, progress=progress)
    st = {"int_x": xi, "int_y": yi, "obs_x": xo, "obs_y": yo, "transfer_x": xt,
          "transfer_y": yt}
    save_torch(path, st)
    if progress:
        print(f"pools built in {time.perf_counter() - t0:.0f}s -> {path}")
    return {k: (st[f"{k}_x"], st[f"{k}_y"]) for k in kinds}


def nuisance_alignment(pools: Mapping[str, tuple[torch.Tensor, torch.Tensor]], train: Any,
                       variant: str) -> dict[str, float]:
    """How often each stream's nuisance colour class equals the label, and their mutual
    information in bits (:func:`analysis.nuisance_tie.colour_tie`): the background (border)
    colour on double-colored MNIST, the digit colour on colored MNIST."""
    from analysis.nuisance_tie import colour_tie

    tag = "fg" if variant == "colored-mnist" else "bg"
    streams = {"real_train": (torch.as_tensor(train.images), torch.as_tensor(train.labels)),
               **{k: pools[k] for k in ("int", "obs", "transfer")}}
    out = {}
    for name, (x, y) in streams.items():
        t = colour_tie(x, y, variant)
        out[f"{name}_{tag}_aligned"] = t["aligned"]
        out[f"{name}_mi_bits"] = t["mi_bits"]
    return out


def train_method(config: GenIntMnistConfig, method: str, seed: int, data: Mapping[str, Any],
                 pools: Mapping[str, tuple[torch.Tensor, torch.Tensor]], out: str | Path, *,
                 device: str | torch.device = "cpu") -> dict[str, Any]:
    """Train ``method`` with ``seed`` through the GenInt pipeline's train stage (its
    in-memory streams; checkpoints in ``out``, so a killed run resumes) and score it on
    the test and OOD splits."""
    from robust_training.engine import evaluate
    from robust_training.experiments import genint_pipeline as pipe

    clf = config.classifier
    spec = get_method(method)
    train = data["train"]
    sources = {"real": pipe.Memory(train.images, train.labels),
               **{kind: pipe.Memory(x, y) for kind, (x, y) in pools.items()}}
    parts = pipe.method_parts(method, sources, batch_size=clf.batch_size,
                              gen_batch_size=clf.gen_batch_size,
                              transfer_batch_size=clf.transfer_batch_size)
    batches = pipe.batch_source(parts, steps=clf.steps, seed=seed)
    hp = spec.hparams_from({"lambda1": clf.lambda1, "lambda2": clf.lambda2})
    cfg = pipe.fit_config(objective=spec.objective, steps=batches.steps, lr=clf.lr,
                          seed=seed, hparams=hp)
    t0 = time.perf_counter()
    model, _ = pipe.train_run(batches.source, cfg, out, device=device)
    return {"method": method, "seed": seed, "objective": spec.objective, "hparams": hp,
            "test_accuracy": evaluate(model, data["test"].images,
                                      data["test"].labels)["accuracy"],
            "ood_accuracy": evaluate(model, data["ood"].images, data["ood"].labels)["accuracy"],
            "train_seconds": round(time.perf_counter() - t0, 1),
            "streams": {kind: {"n": len(src.labels), "batch_size": b}
                        for kind, src, b in parts}}


def transfer_figure(config: GenIntMnistConfig, train: Any,
                    pools: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                    path: str | Path, *, n: int = 10) -> Path:
    """A PNG whose rows are real images I, interventional samples X, T(I, X) and
    observational samples, ``n`` of each, picked with ``interventions.pool_seed``."""
    from generators.images import save_strip, to_float
    from robust_training.transfer import random_features, style_transfer

    g = torch.Generator().manual_seed(config.interventions.pool_seed)
    ri = torch.randperm(len(train.labels), generator=g)[:n]
    ii = torch.randperm(len(pools["int"][1]), generator=g)[:n]
    real = to_float(torch.as_tensor(train.images)[ri])
    xint = to_float(pools["int"][0][ii])
    tr = style_transfer(real, xint, random_features(0), steps=config.transfer.steps)
    return save_strip([real, xint, tr, to_float(pools["obs"][0][ii])], Path(path))


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, min and max of test and OOD accuracy per method, in table order."""
    recs = list(records)
    table = {}
    for m in METHODS:
        rs = [r for r in recs if r["method"] == m]
        if not rs:
            continue
        t = np.array([r["test_accuracy"] for r in rs])
        o = np.array([r["ood_accuracy"] for r in rs])
        table[m] = {"n_seeds": len(rs), "test_median": float(np.median(t)),
                    "ood_median": float(np.median(o)), "ood_min": float(o.min()),
                    "ood_max": float(o.max()), "test_min": float(t.min()),
                    "test_max": float(t.max())}
    return table


def run_genint_mnist(config: GenIntMnistConfig, work: str | Path, *,
                     done: Iterable[tuple[str, int]] = (), device: str = "cpu",
                     on_record: Callable[[dict[str, Any]], None] | None = None,
                     figure: str | Path | None = None,
                     progress: bool = True) -> list[dict[str, Any]]:
    """Every (method, seed) of ``config`` not in ``done``: one record each (passed to
    ``on_record`` as soon as it exists, so a long run keeps what it finished). With
    ``figure``, the pools' :func:`transfer_figure` is written there first."""
    config.validate()
    settings = config.settings()
    data = splits(config)
    pools = build_pools(config, data["train"], work, digest=settings["generator_sha256"],
                        progress=progress)
    if figure is not None:
        transfer_figure(config, data["train"], pools, figure)
    stats = nuisance_alignment(pools, data["train"], config.data.variant)
    if progress:
        print(f"{NUISANCE[config.data.variant]} = label (fraction):", stats)
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    skip = set(done)
    records = []
    for method in config.classifier.methods:
        for seed in config.classifier.seeds:
            if (method, seed) in skip:
                if progress:
                    print(f"skip {method} seed {seed}: already recorded")
                continue
            rec = {"benchmark": "genint_mnist",
                   **train_method(config, method, seed, data, pools,
                                  Path(work) / f"{method}-s{seed}-{tag}", device=device),
                   "nuisance_alignment": stats, "settings": settings}
            records.append(rec)
            if on_record is not None:
                on_record(rec)
            if progress:
                print(f"{method:16s} seed {seed}: test {rec['test_accuracy']:.4f} "
                      f"OOD {rec['ood_accuracy']:.4f}")
    return records
