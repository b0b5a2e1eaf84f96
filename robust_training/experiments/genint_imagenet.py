"""GenInt on ImageNet (Mao et al., CVPR 2021): one config, five resumable stages.

A ResNet-152 trains on ImageNet and on BigGAN-deep-256 images under GenInt's
intervention -- ``do(Z := z)`` along the top 60 GANSpace directions of ``gen_z``, each
with its own range, identical for every class -- and on the style of those images
transferred onto real ones; it is scored on ObjectNet, ImageNet-C, ImageNet-V2 and
ImageNet val. The stages are those of :mod:`robust_training.experiments.genint_pipeline`,
each in its own subfolder of the run's folder ``out``:

``directions`` -> ``out/directions/``
    The generator's latent directions for the strategy (BigGAN's ``gen_z`` is affine, so
    the GANSpace directions are its exact SVD shortcut), saved with their key.
``generate`` -> ``out/generate/int/`` (and ``obs/`` when GAN augmentation reads shards)
    The interventional images, ``generate.per_class`` per class (the paper: 1,000 seeds
    x 5 components = 5,000), sharded over ranks or array jobs (``RANK`` /
    ``WORLD_SIZE``, or ``SLURM_ARRAY_TASK_ID`` / ``SLURM_ARRAY_TASK_COUNT``), resumable,
    with a manifest; a training run can instead make them on the fly
    (``interventions.source: on-the-fly``), in bf16 on the training GPU.
``transfer`` -> ``out/transfer/``
    ``transfer.n`` real images in the style of interventional ones (feature-statistics
    matching with VGG19 features from a user-given state dict, or random features).
``train`` -> ``out/train/<method>/``
    One classifier per method of ``train.methods`` (``erm``, ``gan-aug``, ``mixup``,
    ``genint``, ``genint-transfer``), each with its own recipe (``train.per_method``),
    on the engine (:func:`robust_training.engine.fit`: torchrun DDP on one or many nodes,
    AMP, checkpoints; a killed run resumes with the same bytes).
``evaluate`` -> ``out/evaluate/<method>.json`` and ``out/evaluation.json``
    :func:`analysis.benchmarks.registry.run_benchmark` for every benchmark with a folder
    in ``evaluation.roots`` (objectnet, imagenet-c, imagenet-v2), and top-1 / top-5 on
    ``data.val``; ``train.eval_every_epoch`` also runs them after every epoch.

Settings are a :class:`GenIntImageNetConfig`: presets in ``presets/genint-imagenet/``
(``paper``: the official code's values, data paths to fill in; ``tiny``: a CPU stand-in,
a biased MNIST variant written as ImageNet-shaped PNG folders and a 32 x 32 random
BigGAN-deep), under a YAML file, under flags (:data:`FLAGS`). Each stage folder records
the settings it was made with, and a rerun with other settings is refused.

>>> cfg = GenIntImageNetConfig.resolve("paper", validate=False)
>>> cfg.generator.spec, cfg.interventions.strategy, cfg.train.arch
('biggan:biggan-deep-256', 'genint:t=1,k=60', 'resnet152')
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_text
from causalkit.precision import check_precision
from robust_training.experiments import genint_pipeline as pipe
from robust_training.experiments.config import ExperimentConfig, Section
from robust_training.folder_training import val_accuracy

__all__ = ["GenIntImageNetConfig", "DataSection", "GeneratorSection",
           "InterventionSection", "GenerateSection", "TransferSection", "TrainSection",
           "EvaluationSection", "STAGES", "FLAGS", "SOURCES", "run_stage", "format_stage",
           "stage_costs", "IMAGENET_TRAIN_IMAGES"]

STAGES = pipe.STAGES
#: where the training run's interventional (and observational) images come from
SOURCES = ("shards", "on-the-fly")
#: the OOD benchmarks the evaluate stage runs (a folder each in evaluation.roots)
BENCHMARKS = ("objectnet", "imagenet-c", "imagenet-v2")
#: the methods of the experiment (robust_training.methods' GenInt table)
METHODS = ("erm", "gan-aug", "mixup", "genint", "genint-transfer")
#: images in ImageNet-1k's training set (the cost estimate's default for data.train)
IMAGENET_TRAIN_IMAGES = 1_281_167


def _positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CausalKitError(f"{name} must be a positive number, got {value!r}")


def _count(name: str, value: Any, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CausalKitError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass
class DataSection(Section):
    """The real images: ImageNet's train and val folders (or the CPU stand-in)."""

    #: training images: imagefolder:DIR (ImageNet's train/) or webdataset:PATTERN
    train: str | None = None
    #: validation images: imagefolder:DIR (ImageNet's val/ in class folders)
    val: str | None = None
    #: class folders (WordNet ids) to train on; null: every class of data.train
    classes: tuple[str, ...] | None = None
    size: int = 224  # training crop
    workers: int = 8  # DataLoader processes decoding images
    augment: str = "cpu"  # cpu | gpu: the batched augmentation on the training device
    #: the CPU stand-in (genint_pipeline.standin_folders' options); used when train is null
    standin: dict[str, Any] | None = None

    def validate(self) -> None:
        from robust_training.imagenet_data import parse_spec

        for name in ("train", "val"):
            spec = getattr(self, name)
            if spec is not None:
                parse_spec(spec)
        _count("data.size", self.size, 1)
        _count("data.workers", self.workers)
        if self.augment not in ("cpu", "gpu"):
            raise CausalKitError(f"data.augment must be cpu or gpu, got {self.augment!r}")
        if self.standin is not None:
            import inspect

            known = set(inspect.signature(pipe.standin_folders).parameters) - {"out"}
            bad = sorted(set(self.standin) - known)
            if bad:
                raise CausalKitError(f"unknown data.standin setting(s) {bad}; it takes "
                                     f"{sorted(known)}")


@dataclass
class GeneratorSection(Section):
    """The generator: a :func:`generators.registry.load_generator` spec."""

    #: biggan:biggan-deep-256 | biggan:DIR (config.json + pytorch_model.bin) | tiny:SEED |
    #: small:DIR
    spec: str = "biggan:biggan-deep-256"
    batch_size: int = 32  # images per forward pass when pre-generating

    def validate(self) -> None:
        from generators.registry import generator_schemes

        scheme = self.spec.partition(":")[0]
        if scheme not in generator_schemes():
            raise CausalKitError(f"unknown generator {self.spec!r}; use one of "
                                 f"{', '.join(s + ':...' for s in generator_schemes())}")
        _count("generator.batch_size", self.batch_size, 1)


@dataclass
class InterventionSection(Section):
    """GenInt's intervention, identical for every class, and the observational baseline."""

    strategy: str = "genint:t=1,k=60"
    #: GANSpace layer; null: the exact SVD shortcut of the affine first layer (gen_z)
    layer: str | None = None
    obs_strategy: str = "observational:t=1"
    source: str = "shards"  # shards (the generate stage's) | on-the-fly
    precision: str = "bf16"  # of the on-the-fly generation

    def validate(self) -> None:
        from generators.strategies import parse_strategy

        parse_strategy(self.strategy)
        parse_strategy(self.obs_strategy)
        if self.source not in SOURCES:
            raise CausalKitError(f"interventions.source must be one of {list(SOURCES)}, "
                                 f"got {self.source!r}")
        check_precision(self.precision)


@dataclass
class GenerateSection(Section):
    """The pre-generated interventional (and observational) images."""

    per_class: int = 1000  # noise seeds per class
    edits_per_seed: int = 5  # interventional images per seed, each along its own component
    #: observational images (one per seed) per class for gan-aug from shards; null:
    #: per_class
    obs_per_class: int | None = None
    shard_size: int = 1000
    precision: str = "fp32"  # of the generator (bf16: autocast)

    def validate(self) -> None:
        _count("generate.per_class", self.per_class, 1)
        _count("generate.edits_per_seed", self.edits_per_seed, 1)
        if self.obs_per_class is not None:
            _count("generate.obs_per_class", self.obs_per_class, 1)
        _count("generate.shard_size", self.shard_size, 1)
        check_precision(self.precision)


@dataclass
class TransferSection(Section):
    """Interventional styles transferred onto real images."""

    n: int | None = None  # transferred images; null: each real image once (official)
    #: vgg19:PATH (torchvision-layout state dict) | random[:SEED] (offline, with a warning)
    features: str = "random"
    batch_size: int = 8
    size: int = 256  # the transferred images' side
    #: further options of robust_training.transfer_stage.write_transfer (steps, shard_size)
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        import inspect

        from robust_training.transfer_stage import write_transfer

        if self.n is not None:
            _count("transfer.n", self.n, 1)
        _count("transfer.batch_size", self.batch_size, 1)
        _count("transfer.size", self.size, 1)
        known = set(inspect.signature(write_transfer).parameters) - {
            "real_spec", "int_root", "out", "n", "features", "batch_size", "seed", "device",
            "worker", "workers", "size", "progress"}
        bad = sorted(set(self.options) - known)
        if bad:
            raise CausalKitError(f"unknown transfer.options {bad}; the transfer takes "
                                 f"{sorted(known)}")
        name = self.features.partition(":")[0]
        if name not in ("random", "vgg19"):
            raise CausalKitError(f"transfer.features {self.features!r} is neither vgg19:PATH "
                                 "nor random[:SEED]")
        if name == "vgg19" and not Path(self.features.partition(":")[2]).is_file():
            raise CausalKitError(f"transfer.features {self.features!r}: no such file; pass "
                                 "vgg19:PATH of a torchvision VGG19 state dict")


#: TrainSection fields a method's entry in train.per_method may set
_PER_METHOD = ("arch", "stem", "width", "pretrained", "epochs", "steps", "batch_size",
               "gen_batch_size", "transfer_batch_size", "lambda1", "lambda2", "lr",
               "optimizer", "fit")


@dataclass
class TrainSection(Section):
    """The classifiers: one per method, each with the official recipe of its row."""

    methods: tuple[str, ...] = ("genint",)
    arch: str = "resnet152"
    stem: str = "imagenet"  # imagenet (torchvision's stem) | small (32 x 32 inputs)
    width: int = 64
    #: a torchvision-format ResNet checkpoint to fine-tune from (null: from scratch)
    pretrained: str | None = None
    #: the recipe fine-tunes: refuse to start without train.pretrained
    finetune: bool = False
    epochs: float = 90.0  # passes over the real images
    steps: int | None = None  # overrides epochs
    batch_size: int = 256  # real images per step (the global batch)
    gen_batch_size: int = 64  # interventional (or observational) images per step
    transfer_batch_size: int = 64
    lambda1: float = 1.0  # weight of the interventional (or observational) term
    lambda2: float = 1.0  # weight of the transfer term
    lr: float = 0.1
    optimizer: str = "sgd"
    #: further FitConfig settings (momentum, weight_decay, schedule, milestones, ...)
    fit: dict[str, Any] = field(default_factory=dict)
    #: method -> settings of this section that differ for it
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    amp: bool = True
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every_epoch: bool = False

    def for_method(self, method: str) -> TrainSection:
        """This section with ``per_method[method]`` applied."""
        over = dict(self.per_method.get(method, {}))
        bad = sorted(set(over) - set(_PER_METHOD))
        if bad:
            raise CausalKitError(f"train.per_method.{method} sets {bad}, which a method "
                                 f"cannot set; it may set {list(_PER_METHOD)}")
        if "fit" in over:
            over["fit"] = {**self.fit, **dict(over["fit"])}
        return dataclasses.replace(self, **over)

    def validate(self) -> None:
        from robust_training.engine import check_optimizer

        bad = sorted(set(self.methods) - set(METHODS))
        if bad or not self.methods:
            raise CausalKitError(f"train.methods {list(self.methods)} must name methods of "
                                 f"{list(METHODS)}")
        bad = sorted(set(self.per_method) - set(METHODS))
        if bad:
            raise CausalKitError(f"train.per_method names unknown methods {bad}; choose "
                                 f"from {list(METHODS)}")
        for method in self.methods:
            t = self.for_method(method)
            where = f"train (method {method})"
            from robust_training.resnet import RESNETS

            if t.arch not in RESNETS:
                raise CausalKitError(f"{where}: unknown arch {t.arch!r}; choose one of "
                                     f"{sorted(RESNETS)}")
            check_optimizer(t.optimizer)
            for name in ("width", "epochs", "batch_size", "gen_batch_size",
                         "transfer_batch_size", "lr"):
                _positive(f"{where}.{name}", getattr(t, name))
            _positive(f"{where}.steps", t.steps, allow_none=True)
            for name in ("lambda1", "lambda2"):
                value = getattr(t, name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or value < 0:
                    raise CausalKitError(f"{where}.{name} must be >= 0, got {value!r}")
            if t.pretrained is not None and not Path(t.pretrained).is_file():
                raise CausalKitError(f"{where}.pretrained {t.pretrained!r} is no file; pass a "
                                     "torchvision ResNet state-dict file")
        _count("train.log_every", self.log_every, 1)
        _count("train.checkpoint_every", self.checkpoint_every, 1)


@dataclass
class EvaluationSection(Section):
    """The OOD benchmarks (a folder each) and ImageNet val."""

    #: benchmark -> its folder: objectnet (``objectnet-1.0/``), imagenet-c (the corruption
    #: folders), imagenet-v2 (the ``imagenetv2-<variant>-format-val`` folders)
    roots: dict[str, str] = field(default_factory=dict)
    #: benchmark -> options of its evaluator (e.g. imagenet-c: {severities: [1, 3, 5]})
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    val: bool = True  # top-1 / top-5 on data.val
    #: the trained methods to score; null: every method of train.methods
    methods: tuple[str, ...] | None = None
    batch_size: int = 64
    workers: int = 8

    def validate(self) -> None:
        bad = sorted(set(self.methods or ()) - set(METHODS))
        if bad:
            raise CausalKitError(f"evaluation.methods names unknown methods {bad}; choose "
                                 f"from {list(METHODS)}")
        for name in (*self.roots, *self.options):
            if name not in BENCHMARKS:
                raise CausalKitError(f"unknown benchmark {name!r} in evaluation; choose from "
                                     f"{list(BENCHMARKS)}")
        _count("evaluation.batch_size", self.batch_size, 1)
        _count("evaluation.workers", self.workers)


#: flat option names (the CLI's flags) -> nested paths
FLAGS = {
    "train_data": "data.train", "val_data": "data.val", "classes": "data.classes",
    "size": "data.size", "workers": "data.workers", "augment": "data.augment",
    "generator": "generator.spec", "strategy": "interventions.strategy",
    "layer": "interventions.layer", "source": "interventions.source",
    "per_class": "generate.per_class", "edits_per_seed": "generate.edits_per_seed",
    "shard_size": "generate.shard_size",
    "transfer_n": "transfer.n", "features": "transfer.features",
    "methods": "train.methods", "arch": "train.arch", "pretrained": "train.pretrained",
    "epochs": "train.epochs", "steps": "train.steps", "batch_size": "train.batch_size",
    "gen_batch_size": "train.gen_batch_size",
    "transfer_batch_size": "train.transfer_batch_size", "lambda1": "train.lambda1",
    "lambda2": "train.lambda2", "lr": "train.lr", "eval_every_epoch": "train.eval_every_epoch",
    "roots": "evaluation.roots", "evaluate_methods": "evaluation.methods",
    "seed": "seed", "precision": "precision",
}


@dataclass
class GenIntImageNetConfig(ExperimentConfig):
    """GenInt on ImageNet; presets in ``presets/genint-imagenet/``."""

    EXPERIMENT: ClassVar[str] = "genint-imagenet"
    FLAGS: ClassVar[dict[str, str]] = FLAGS

    data: DataSection = field(default_factory=DataSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    interventions: InterventionSection = field(default_factory=InterventionSection)
    generate: GenerateSection = field(default_factory=GenerateSection)
    transfer: TransferSection = field(default_factory=TransferSection)
    train: TrainSection = field(default_factory=TrainSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    seed: int = 0
    precision: str = "fp32"

    def check(self) -> None:
        check_precision(self.precision)
        _count("seed", self.seed)

    def needs_obs(self) -> bool:
        """Whether GAN augmentation trains from pre-generated observational images."""
        return "gan-aug" in self.train.methods and self.interventions.source == "shards"

    def check_stage(self, stage: str) -> None:
        """What ``stage`` needs beyond the sections' own checks (before it writes)."""
        if stage not in (*STAGES, "all"):
            raise CausalKitError(f"unknown stage {stage!r}; choose one of "
                                 f"{[*STAGES, 'all']}")
        real = stage in ("transfer", "train", "evaluate", "all")
        if real and self.data.train is None and self.data.standin is None:
            raise CausalKitError(f"--stage {stage} needs real images: set data.train "
                                 "(--train-data imagefolder:DIR, ImageNet's train folder)")
        if real and self.data.train is not None:
            form, target = self.data.train.split(":", 1)
            if form == "imagefolder" and not Path(target).is_dir():
                raise CausalKitError(f"data.train {self.data.train!r}: no such folder; pass "
                                     "imagefolder:DIR of ImageNet's train folder")
        if stage in ("evaluate", "all"):
            for name, root in self.evaluation.roots.items():
                if not Path(root).is_dir():
                    raise CausalKitError(f"evaluation.roots.{name} {root!r} is no folder; "
                                         f"pass the {name} data folder")
            if self.evaluation.val and self.data.val is None and self.data.standin is None:
                raise CausalKitError("evaluation.val needs data.val (--val-data "
                                     "imagefolder:DIR, ImageNet's val folder), or set "
                                     "evaluation.val to false")
        if stage in ("train", "all"):
            for method in self.train.methods:
                t = self.train.for_method(method)
                if t.finetune and t.pretrained is None:
                    raise CausalKitError(f"the {method} recipe fine-tunes an ImageNet model: "
                                         "set train.pretrained (--pretrained PATH, a "
                                         f"torchvision {t.arch} state dict) or set "
                                         "train.finetune to false")


# -- run folders, data and the settings each stage depends on --------------------------------
@dataclass
class _Run:
    config: GenIntImageNetConfig
    out: Path
    device: Any
    progress: bool
    worker: int | None
    workers: int | None
    real: str | None = None
    val: str | None = None
    roots: dict[str, str] = field(default_factory=dict)

    @property
    def folders(self) -> dict[str, Path]:
        o = self.out
        return {"directions": o / "directions", "int": o / "generate" / "int",
                "obs": o / "generate" / "obs", "transfer": o / "transfer",
                "train": o / "train", "evaluate": o / "evaluate"}

    def keys(self) -> dict[str, dict[str, Any]]:
        c = self.config
        iv = c.interventions
        directions = {"generator": c.generator.spec, "strategy": iv.strategy,
                      "layer": iv.layer, "obs_strategy": iv.obs_strategy}
        g = c.generate
        common = {"generator": c.generator.spec, "layer": iv.layer, "seed": c.seed,
                  "shard_size": g.shard_size, "precision": g.precision,
                  "classes": list(c.data.classes) if c.data.classes else None,
                  "train_data": self.real}
        generate = {"int": {**common, "strategy": iv.strategy, "per_class": g.per_class,
                            "edits_per_seed": g.edits_per_seed},
                    "obs": {**common, "strategy": iv.obs_strategy,
                            "per_class": g.obs_per_class or g.per_class, "edits_per_seed": 1}}
        transfer = {"int": generate["int"], **dataclasses.asdict(c.transfer),
                    "train_data": self.real}
        return {"directions": directions, "generate": generate, "transfer": transfer}

    def generated_kinds(self) -> list[str]:
        """The folders the generate stage writes: ``int``, and ``obs`` for gan-aug."""
        return ["int", "obs"] if self.config.needs_obs() else ["int"]


def _prepare(config: GenIntImageNetConfig, out: Path, device: Any, progress: bool,
             worker: int | None, workers: int | None, *, data: bool) -> _Run:
    run = _Run(config, out, device, progress, worker, workers)
    d = config.data
    run.real, run.val, run.roots = d.train, d.val, dict(config.evaluation.roots)
    if d.train is None and d.standin is not None:
        folders = pipe.standin_folders(out / "data", **d.standin) if data else {
            "train": out / "data" / "train", "val": out / "data" / "val",
            "imagenet-v2": out / "data" / "imagenet-v2",
            "imagenet-c": out / "data" / "imagenet-c"}
        run.real = f"imagefolder:{folders['train']}"
        run.val = d.val or f"imagefolder:{folders['val']}"
        for name in ("imagenet-v2", "imagenet-c"):
            run.roots.setdefault(name, str(folders[name]))
    return run


def _class_names(run: _Run) -> list[str]:
    # the training classes: data.classes, else the class folders of an ImageFolder
    if run.config.data.classes:
        return list(run.config.data.classes)
    form, target = run.real.split(":", 1)
    if form != "imagefolder":
        raise CausalKitError(f"the classes of {run.real} are not known from folders; set "
                             "data.classes to the WordNet ids the shards' labels index")
    root = Path(target)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not names:
        raise CausalKitError(f"{root} holds no class folders; pass ImageNet's train folder")
    return names


def _generator_classes(run: _Run, generator: Any) -> list[int]:
    # the generator's class (ImageNet index) of every training class, in training order
    idx = pipe.class_indices(_class_names(run))
    bad = [i for i in idx if i >= generator.num_classes]
    if bad:
        raise CausalKitError(f"the generator {run.config.generator.spec} has "
                             f"{generator.num_classes} classes, but the training classes "
                             f"include ImageNet class {bad[0]}; train on its classes "
                             "(data.classes) or use another generator")
    return idx


def _device(device: Any) -> Any:
    import torch

    if device is None and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per rank
    return device


def _setup(run: _Run, generator: Any, strategy: str) -> Any:
    layer = run.config.interventions.layer if strategy == run.config.interventions.strategy \
        else None
    return pipe.settle_directions(generator, strategy, layer=layer,
                                  folder=run.folders["directions"])


# -- the stages ----------------------------------------------------------------------------
def _directions(run: _Run) -> dict[str, Any]:
    key = run.keys()["directions"]
    pipe.claim_stage(run.folders["directions"], key, "directions")
    generator = pipe.load_generator(run.config.generator.spec, device=_device(run.device))
    setup = _setup(run, generator, run.config.interventions.strategy)
    d = setup.directions
    return {"source": setup.source, "method": getattr(d, "method", None),
            "components": int(d.components.shape[0]) if d is not None else 0,
            "key": getattr(d, "key", None), "layer": getattr(d, "layer", None)}


def _generate(run: _Run) -> dict[str, Any]:
    c = run.config
    keys = run.keys()["generate"]
    for kind in run.generated_kinds():
        pipe.claim_stage(run.out / "generate", keys[kind], f"generate ({kind})",
                         file=f"{kind}.stage.json")
    generator = pipe.load_generator(c.generator.spec, device=_device(run.device))
    classes = _generator_classes(run, generator)
    results = {}
    for kind in run.generated_kinds():
        key = keys[kind]
        setup = _setup(run, generator, key["strategy"])
        results[kind] = pipe.generate_folder(
            generator, setup, run.folders[kind], per_class=key["per_class"], seed=c.seed,
            shard_size=c.generate.shard_size, batch_size=c.generator.batch_size,
            edits_per_seed=key["edits_per_seed"], precision=c.generate.precision,
            classes=classes, worker=run.worker, workers=run.workers, progress=run.progress,
            settings={"generator": c.generator.spec, "kind": kind})
    return results


def _transfer(run: _Run) -> dict[str, Any]:
    c = run.config
    int_root = run.folders["int"]
    if not (int_root / "labels.csv").is_file():
        raise CausalKitError(f"--stage transfer needs {int_root}/labels.csv, which does not "
                             "exist; run --stage generate to the end first")
    key = run.keys()["transfer"]
    pipe.claim_stage(run.folders["transfer"], key, "transfer")
    if c.data.classes:
        raise CausalKitError("the transfer stage restyles every class of data.train; unset "
                             "data.classes, or give data.train a folder of those classes only")
    return pipe.transfer_folder(
        run.real, int_root, run.folders["transfer"] / "images", n=c.transfer.n,
        features=c.transfer.features, batch_size=c.transfer.batch_size, seed=c.seed,
        device=_device(run.device), size=c.transfer.size, worker=run.worker,
        workers=run.workers, progress=run.progress, options=c.transfer.options)


def _sources(run: _Run, method: str, classes: list[int]) -> dict[str, pipe.Source]:
    # the streams this run offers, by kind (only those the method reads are built)
    from robust_training.methods import get_method

    c = run.config
    kinds = get_method(method).streams
    names = tuple(_class_names(run))
    sources: dict[str, pipe.Source] = {"real": pipe.Folder(run.real, names)}
    live = c.interventions.source == "on-the-fly"
    generator = None
    for kind, strategy in (("int", c.interventions.strategy),
                           ("obs", c.interventions.obs_strategy)):
        if kind not in kinds:
            continue
        if live:
            if generator is None:
                generator = pipe.load_generator(c.generator.spec, device=_device(run.device))
            sources[kind] = pipe.OnTheFly(_setup(run, generator, strategy).sampler,
                                          tuple(classes), precision=c.interventions.precision)
        else:
            folder = run.folders[kind]
            if not (folder / "labels.csv").is_file():
                raise CausalKitError(f"method {method} reads {folder}/labels.csv, which does "
                                     "not exist; run --stage generate to the end first (or "
                                     "set interventions.source to on-the-fly)")
            sources[kind] = pipe.Folder(f"generated:{folder}", tuple(classes))
    if "transfer" in kinds:
        folder = run.folders["transfer"] / "images"
        if not (folder / "labels.csv").is_file():
            raise CausalKitError(f"method {method} reads {folder}/labels.csv, which does not "
                                 "exist; run --stage transfer to the end first")
        sources["transfer"] = pipe.Folder(f"generated:{folder}")
    return sources


def _fit_config(run: _Run, t: TrainSection, method: str, steps: int, n_classes: int) -> Any:
    from robust_training.methods import get_method

    spec = get_method(method)
    hp = spec.hparams_from({"lambda1": t.lambda1, "lambda2": t.lambda2})
    fields = dict(objective=spec.objective, steps=steps, lr=t.lr, optimizer=t.optimizer,
                  seed=run.config.seed, model=t.arch, width=t.width, hparams=hp, amp=t.amp,
                  precision=run.config.precision, log_every=min(t.log_every, steps),
                  checkpoint_every=min(t.checkpoint_every, steps), n_classes=n_classes,
                  stem=t.stem, pretrained=t.pretrained)
    fields.update(t.fit)
    return pipe.fit_config(**fields)


def _train_key(run: _Run, t: TrainSection, method: str) -> dict[str, Any]:
    # what the method's classifier depends on: its recipe, the real data, and the
    # generated streams it reads (their stage's settings, or the on-the-fly sampler's)
    from robust_training.methods import get_method

    c = run.config
    keys = run.keys()
    kinds = set(get_method(method).streams)
    generated = bool(kinds & {"int", "obs"})
    live = c.interventions.source == "on-the-fly"
    return {"method": method,
            "train": dataclasses.asdict(t) | {"per_method": None, "methods": None},
            "data": {"train": run.real, "classes": c.data.classes, "size": c.data.size,
                     "augment": c.data.augment},
            "source": c.interventions.source if generated else None,
            "generate": {k: keys["generate"][k] for k in ("int", "obs") if k in kinds}
            if generated and not live else None,
            "directions": keys["directions"] if generated and live else None,
            "live_precision": c.interventions.precision if generated and live else None,
            "transfer": keys["transfer"] if "transfer" in kinds else None,
            "seed": c.seed, "precision": c.precision}


def _evaluator(run: _Run, n_names: list[str]) -> Any:
    # the per-epoch evaluation (rank 0): the benchmarks and val, as one flat dict
    def on_epoch(epoch: int, model: Any) -> dict[str, Any]:
        was = model.training
        model.eval()
        try:
            res = _score(run, model, n_names, progress=False)
        finally:
            model.train(was)
        return {"eval": _headline(res)}

    return on_epoch


def _train(run: _Run) -> dict[str, Any]:
    from robust_training.engine import dist_info

    c = run.config
    names = _class_names(run)
    generator_classes = pipe.class_indices(names)
    results = {}
    for method in c.train.methods:
        t = c.train.for_method(method)
        folder = run.folders["train"] / method
        pipe.claim_stage(folder, _train_key(run, t, method), f"train ({method})")
        sources = _sources(run, method, generator_classes)
        parts = pipe.method_parts(method, sources, batch_size=t.batch_size,
                                  gen_batch_size=t.gen_batch_size,
                                  transfer_batch_size=t.transfer_batch_size)
        batches = pipe.batch_source(parts, steps=t.steps, epochs=t.epochs, seed=c.seed,
                                    size=c.data.size, workers=c.data.workers,
                                    augment=c.data.augment)
        on_epoch = _evaluator(run, names) if c.train.eval_every_epoch else None
        config = _fit_config(run, t, method, batches.steps, len(names))
        _, info = pipe.train_run(batches.source, config, folder, device=run.device,
                                 progress=run.progress, on_epoch=on_epoch,
                                 steps_per_epoch=batches.steps_per_epoch)
        rank, _ = dist_info()
        if rank == 0:
            atomic_write_text(folder / "classifier.json", json.dumps(
                {"method": method, "classes": names, "size": c.data.size,
                 "steps": info["steps"], "streams": {k: b for k, _, b in parts}},
                indent=2) + "\n")
        results[method] = {"steps": info["steps"], "seconds": info["seconds"],
                           "last": info["last"],
                           "steps_per_epoch": batches.steps_per_epoch,
                           "streams": {k: b for k, _, b in parts}}
    return results


def _score(run: _Run, model: Any, names: list[str], *, progress: bool) -> dict[str, Any]:
    c = run.config
    e = c.evaluation
    out: dict[str, Any] = {}
    if run.roots:
        wrapped = pipe.ImageNetLogits(model, pipe.class_indices(names), size=c.data.size)
        out.update(pipe.evaluate_benchmarks(wrapped, run.roots, options=e.options,
                                            batch_size=e.batch_size, device=run.device,
                                            workers=e.workers, progress=progress))
    if e.val and run.val is not None:
        out["imagenet-val"] = val_accuracy(model, run.val, batch_size=e.batch_size,
                                           device=run.device, size=c.data.size,
                                           classes=names)
    return out


def _headline(results: dict[str, Any]) -> dict[str, float]:
    # one number per benchmark and metric, for logs and the printed summary
    flat: dict[str, float] = {}
    for name, res in results.items():
        metrics = res.get("metrics", res)
        if name != "imagenet-val":
            metrics = next(iter(metrics.values()), {}) if metrics else {}
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    key in ("top1", "top5", "mce", "clean_error") or key.endswith("/top1")
                    or key.startswith("error/")):
                flat[f"{name}/{key}"] = float(value)
    return flat


def _evaluate(run: _Run) -> dict[str, Any]:
    from robust_training.engine import load_model

    c = run.config
    names = _class_names(run)
    results = {}
    for method in c.evaluation.methods or c.train.methods:
        folder = run.folders["train"] / method
        if not (folder / "model.json").is_file():
            raise CausalKitError(f"--stage evaluate needs the trained {method} classifier in "
                                 f"{folder}; run --stage train to the end first")
        model = load_model(folder, device=run.device or "cpu")
        results[method] = _score(run, model, names, progress=run.progress)
        run.folders["evaluate"].mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.folders["evaluate"] / f"{method}.json",
                          json.dumps(results[method], indent=2, default=str) + "\n")
    summary = {m: _headline(r) for m, r in results.items()}
    atomic_write_text(run.out / "evaluation.json", json.dumps(
        {"summary": summary, "results": results}, indent=2, default=str) + "\n")
    return {"summary": summary}


def _precheck(run: _Run, stage: str) -> None:
    keys = run.keys()
    if stage in ("directions", "transfer"):
        pipe.check_stage(run.folders[stage], keys[stage], stage)
    if stage == "generate":
        for kind in run.generated_kinds():
            pipe.check_stage(run.out / "generate", keys["generate"][kind],
                             f"generate ({kind})", file=f"{kind}.stage.json")
    if stage == "train":
        for method in run.config.train.methods:
            t = run.config.train.for_method(method)
            pipe.check_stage(run.folders["train"] / method, _train_key(run, t, method),
                             f"train ({method})")


_RUNNERS = {"directions": _directions, "generate": _generate, "transfer": _transfer,
            "train": _train, "evaluate": _evaluate}


def run_stage(config: GenIntImageNetConfig, stage: str, out: str | os.PathLike, *,
              device: Any = None, progress: bool = True, worker: int | None = None,
              workers: int | None = None) -> dict[str, Any]:
    """Run ``stage`` (or ``"all"``, the five in order) under ``out``, resuming it; record
    it in ``out/stages.jsonl`` and return ``{"stage", "seconds", "result", "config"}``.

    ``worker`` / ``workers`` pick this process's share of the generate and transfer
    shards (default: ``RANK`` / ``WORLD_SIZE`` or the Slurm array's); the train stage
    takes torchrun's ranks.
    """
    from causalkit.io import check_out_dir
    from causalkit.workers import worker_share

    config.check_stage(stage)
    worker_share(worker, workers)  # an impossible share is refused before any write
    out = check_out_dir(out)
    if stage == "all":
        records = [run_stage(config, s, out, device=device, progress=progress,
                             worker=worker, workers=workers) for s in STAGES]
        return {"stage": "all", "seconds": round(sum(r["seconds"] for r in records), 3),
                "result": {r["stage"]: r["result"] for r in records},
                "config": config.to_dict()}
    needs_data = stage in ("generate", "transfer", "train", "evaluate")
    run = _prepare(config, out, device, progress, worker, workers, data=False)
    _precheck(run, stage)  # a stage folder of other settings: refused before any write
    out.mkdir(parents=True, exist_ok=True)
    if needs_data:
        run = _prepare(config, out, device, progress, worker, workers, data=True)
    atomic_write_text(out / "config.yaml", config.to_yaml())
    start = time.perf_counter()
    result = _RUNNERS[stage](run)
    record = {"stage": stage, "seconds": round(time.perf_counter() - start, 3),
              "result": result}
    from robust_training.engine import dist_info

    if dist_info()[0] == 0:
        with open(out / "stages.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
    return {**record, "config": config.to_dict()}


def format_stage(record: dict[str, Any]) -> str:
    """A few readable lines about a finished stage (or all of them)."""
    if record["stage"] == "all":
        return "\n".join(format_stage({"stage": s, "seconds": 0.0, "result": r})
                         for s, r in record["result"].items())
    res = record["result"]
    lines = [f"stage {record['stage']} done in {record['seconds']:.1f} s"]
    if record["stage"] == "directions":
        lines.append(f"  {res['components']} directions ({res['source']})")
    elif record["stage"] == "generate":
        for kind, r in res.items():
            lines.append(f"  {kind}: {r.get('images', '?')} images "
                         f"({r.get('generated_images', 0)} made now)")
    elif record["stage"] == "transfer":
        lines.append(f"  {res.get('images', '?')} transferred images")
    elif record["stage"] == "train":
        for method, r in res.items():
            lines.append(f"  {method}: {r['steps']} steps, loss "
                         f"{r['last'].get('loss', float('nan')):.4g}")
    elif record["stage"] == "evaluate":
        for method, values in res["summary"].items():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            lines.append(f"  {method}: {shown}")
    return "\n".join(lines)


# -- what the stages cost, from the benchmark records -----------------------------------------
def _gpu_record(name: str, **match: Any) -> dict[str, Any] | None:
    # the newest record of bench/results/<name>.json made on a CUDA device, if any
    from causalkit.errors import DataError
    from robust_training.experiments.reports import load

    try:
        records = load(name)
    except DataError:
        return None
    found = [r for r in records if str(r.get("device", "")).startswith("cuda")
             and all(r.get(k) == v for k, v in match.items())]
    return max(found, key=lambda r: str(r.get("machine", {}).get("date", ""))) if found \
        else None


def stage_costs(config: GenIntImageNetConfig, *, method: str = "genint",
                real_images: int = IMAGENET_TRAIN_IMAGES, gpus: int = 8
                ) -> list[dict[str, Any]]:
    """What the generate and train stages of ``config`` cost on one GPU and on ``gpus``,
    from the newest GPU records of ``bench/genint_generation.py`` (interventional
    BigGAN-deep-256 images/s) and ``bench/genint_train_throughput.py`` (ResNet-50
    training images/s with the on-the-fly stream); a stage without a GPU record has
    ``None`` hours and says which benchmark to run. Several GPUs are assumed to divide
    the work evenly (shards of the pre-generation, data-parallel training), so their
    hours are an estimate, not a measurement, until a record of that many GPUs exists.
    """
    t = config.train.for_method(method)
    g = config.generate
    classes = len(config.data.classes) if config.data.classes else 1000
    generated = classes * g.per_class * g.edits_per_seed
    steps = t.steps or round(t.epochs * real_images / t.batch_size)
    rows = []
    gen = _gpu_record("genint_generation")
    rate = gen.get("interventional_images_per_s") if gen else None
    rows.append({"stage": "generate", "work": f"{generated:,} images",
                 "record": "bench/genint_generation.py", "rate": rate,
                 "gpu": gen.get("machine", {}).get("gpu") if gen else None,
                 "hours": generated / rate / 3600 if rate else None})
    tr = _gpu_record("genint_train_throughput")
    rate = tr.get("genint", {}).get("images_per_s") if tr else None
    per_step = t.batch_size + t.gen_batch_size
    rows.append({"stage": f"train ({method}, ResNet-50 rate)",
                 "work": f"{steps:,} steps x {per_step} images",
                 "record": "bench/genint_train_throughput.py", "rate": rate,
                 "gpu": tr.get("machine", {}).get("gpu") if tr else None,
                 "hours": steps * per_step / rate / 3600 if rate else None})
    for row in rows:
        row[f"hours_{gpus}"] = row["hours"] / gpus if row["hours"] is not None else None
    return rows
