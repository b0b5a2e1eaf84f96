"""The CGN pipeline on ImageNet (Sauer & Geiger, Section 4.2), in four resumable stages.

``train-cgn``
    Train the ImageNet CGN -- three BigGAN-deep-256 mechanisms, the U^2-Net mask, a
    frozen BigGAN as the target (:mod:`generators.cgn.imagenet`) -- into
    ``out/cgn/``; or skip it with ``cgn.checkpoint`` (a trained or the official CGN).
``generate``
    Counterfactual ImageNet from that CGN into ``out/counterfactuals/``
    (:func:`generators.cgn.imagenet.generate.write_counterfactual_imagenet`): sharded,
    one share per rank, resumable, ``labels.csv`` with the three labels and noise seeds.
``train-classifier``
    A ResNet-50 with shape, texture and background heads
    (:mod:`robust_training.imagenet_classifier`) on evenly sized batches of real
    ImageNet and counterfactual images (:mod:`robust_training.imagenet_data`), with the
    ``cgn-heads`` objective on the project's engine (:func:`robust_training.engine.fit`:
    torchrun DDP, AMP, resume), into ``out/classifier/``.
``evaluate``
    The OOD benchmarks of :mod:`analysis.benchmarks` (shape bias on cue-conflict images,
    IN-9's background gap, ...) for every head and for the mean of the heads' logits,
    into ``out/evaluation.json``.

Every stage reads what the one before wrote under the same ``out`` and can be rerun: a
killed stage resumes where it stopped (the CGN and the classifier from their
checkpoints, the generation from its finished shards) and a finished one is not redone.

Settings are a :class:`CGNImageNetConfig`: presets in ``presets/cgn-imagenet/``
(``paper``: the official code's values; ``tiny``: a CPU stand-in with a 32 x 32,
10-class random BigGAN), under a ``--config`` file, under flags (:data:`FLAGS`).

>>> cfg = CGNImageNetConfig.resolve("paper", validate=False)
>>> cfg.cgn.train["losses"]["l1"], cfg.generation.noise, cfg.classifier.arch
(100.0, 'shared', 'resnet50')
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_text
from causalkit.precision import check_precision
from robust_training.experiments.config import ExperimentConfig, Section

__all__ = ["CGNImageNetConfig", "CGNSection", "GenerationSection", "ClassifierSection",
           "EvaluationSection", "STAGES", "FLAGS", "run_stage", "DEFAULT_U2NET",
           "format_stage"]

STAGES = ("train-cgn", "generate", "train-classifier", "evaluate")
#: the real u2netp weights of the shared data folder (relative to the project root)
DEFAULT_U2NET = "../shared/data/u2netp/u2netp.onnx"
#: the trained CGN inside ``out/cgn/`` (what the generate stage loads)
CGN_FILE = "cgn.pt"


def _positive(name: str, value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CausalKitError(f"{name} must be a positive number, got {value!r}")


@dataclass
class CGNSection(Section):
    """The ImageNet CGN: its BigGAN, its U^2-Net, how it is trained or which to load."""

    #: BigGAN weights: a pytorch-pretrained-biggan name ("biggan-deep-256"), a folder
    #: with config.json + pytorch_model.bin, or "tiny" (the 32 x 32 random stand-in)
    biggan: str = "biggan-deep-256"
    #: U^2-Net weights: u2netp.onnx / u2net.pth, or "random:u2netp" (random init)
    u2net: str = DEFAULT_U2NET
    #: a trained CGN to use instead of training one (ours, or the official .pth)
    checkpoint: str | None = None
    #: the perceptual features of the losses (generators.perceptual.perceptual_features):
    #: "vgg16:PATH" (the official VGG16), "vgg16_bn:PATH", or null: random features, with
    #: a warning
    perceptual: str | None = None
    #: the training config's fields (CGNImageNetTrainConfig of
    #: generators.cgn.imagenet.train; ``losses`` holds its LossWeights' fields)
    train: dict[str, Any] = field(default_factory=dict)

    def train_config(self, *, seed: int, precision: str) -> Any:
        """The :class:`~generators.cgn.imagenet.train.CGNImageNetTrainConfig` (checked)."""
        import dataclasses

        from generators.cgn.imagenet.losses import LossWeights
        from generators.cgn.imagenet.train import CGNImageNetTrainConfig

        def tuples(d: dict[str, Any]) -> dict[str, Any]:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

        fields = {f.name for f in dataclasses.fields(CGNImageNetTrainConfig)}
        loss_fields = {f.name for f in dataclasses.fields(LossWeights)}
        train = dict(self.train)
        losses = dict(train.pop("losses", None) or {})
        bad = sorted(set(train) - fields) + [f"losses.{k}" for k in sorted(set(losses)
                                                                          - loss_fields)]
        if bad:
            raise CausalKitError(f"unknown cgn.train setting(s) {bad}; the CGN's training "
                                 f"config takes {sorted(fields - {'seed', 'precision'})}")
        try:
            return CGNImageNetTrainConfig(**tuples(train), losses=LossWeights(**tuples(losses)),
                                          seed=seed, precision=precision)
        except TypeError as exc:
            raise CausalKitError(f"cgn.train: {exc}") from None

    def validate(self) -> None:
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise CausalKitError(f"cgn.checkpoint {self.checkpoint!r} is no file; pass a CGN "
                                 "checkpoint or leave it unset to train one")
        self.train_config(seed=0, precision="fp32")


@dataclass
class GenerationSection(Section):
    """Counterfactual ImageNet (the official ``generate_data.py``'s options)."""

    n: int = 1000
    mode: str = "random"  # random | best-classes | fixed
    classes: tuple[int, ...] | None = None  # (shape, texture, background) for fixed
    noise: str = "shared"  # shared (official) | separate (the paper's description)
    truncation: float = 1.0
    shard_size: int = 1000
    batch_size: int = 1
    interpolate: str | None = None  # shape | texture | background | all
    interp_class: int | None = None
    midpoints: int = 6
    tar: bool = False

    def settings(self, seed: int) -> Any:
        """The generator's :class:`~generators.cgn.imagenet.generate.GenerationSettings`."""
        from generators.cgn.imagenet.generate import GenerationSettings

        return GenerationSettings(
            n=self.n, mode=self.mode,
            classes=tuple(self.classes) if self.classes is not None else None,
            noise=self.noise, truncation=self.truncation, seed=seed,
            shard_size=self.shard_size, interpolate=self.interpolate,
            interp_class=self.interp_class, midpoints=self.midpoints, tar=self.tar)

    def validate(self) -> None:
        self.settings(0).validate(10 ** 9)  # class ids are checked against the CGN later
        _positive("generation.batch_size", self.batch_size)


@dataclass
class ClassifierSection(Section):
    """The multi-head ResNet and how it trains (the official ``train_classifier.py``)."""

    arch: str = "resnet50"
    width: int = 64  # first-stage width (64: torchvision's; smaller for CPU stand-ins)
    pretrained: str | None = None  # a torchvision ResNet state-dict file for the backbone
    #: real ImageNet training images: an ImageFolder (root/<wnid>/<image>)
    real_root: str | None = None
    #: counterfactual images: a generate stage's folder (null: this run's own)
    cf_root: str | None = None
    epochs: float = 45.0  # passes over the real images
    steps: int | None = None  # overrides epochs
    batch_size: int = 256  # rows of EACH source per step (real and counterfactual)
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9  # of SGD
    weight_decay: float = 1e-4
    schedule: str = "multistep"
    #: learning-rate drops by ``gamma`` at these points, in ``milestone_unit`` s
    #: ("epoch" or "fraction" of the run)
    milestones: tuple[float, ...] = (15.0, 30.0)
    milestone_unit: str = "epoch"
    gamma: float = 0.1
    size: int = 224  # training crop
    workers: int = 6  # DataLoader processes decoding images
    amp: bool = True
    log_every: int = 50
    checkpoint_every: int = 500

    def validate(self) -> None:
        from robust_training.engine import check_optimizer, check_schedule
        from robust_training.resnet import RESNETS

        if self.arch not in RESNETS:
            raise CausalKitError(f"unknown classifier arch {self.arch!r}; choose one of "
                                 f"{sorted(RESNETS)}")
        check_optimizer(self.optimizer)
        check_schedule(self.schedule)
        if self.milestone_unit not in ("epoch", "fraction"):
            raise CausalKitError(f"classifier.milestone_unit must be 'epoch' or 'fraction', "
                                 f"got {self.milestone_unit!r}")
        if not self.gamma > 0 or not self.momentum >= 0:
            raise CausalKitError(f"classifier.gamma must be > 0 and classifier.momentum "
                                 f">= 0, got {self.gamma} and {self.momentum}")
        for name in ("width", "epochs", "steps", "batch_size", "lr", "size",
                     "log_every", "checkpoint_every"):
            _positive(f"classifier.{name}", getattr(self, name))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) \
                or self.workers < 0:
            raise CausalKitError(f"classifier.workers must be an integer >= 0, got "
                                 f"{self.workers!r}")
        if self.pretrained is not None and not Path(self.pretrained).is_file():
            raise CausalKitError(f"classifier.pretrained {self.pretrained!r} is no file; "
                                 "pass a torchvision ResNet state-dict file or leave it unset")


@dataclass
class EvaluationSection(Section):
    """Benchmarks of :mod:`analysis.benchmarks`, each scored per head and averaged."""

    benchmarks: tuple[str, ...] = ("shape-bias", "in9")
    #: benchmark -> its data folder (shape-bias: the cue-conflict images; in9: IN-9's root)
    roots: dict[str, str] = field(default_factory=dict)
    #: what is scored: the heads and "mean" (the mean of the heads' logits)
    views: tuple[str, ...] = ("shape", "texture", "background", "mean")
    batch_size: int = 64

    def validate(self) -> None:
        from robust_training.imagenet_classifier import VIEWS

        bad = sorted(set(self.views) - set(VIEWS))
        if bad:
            raise CausalKitError(f"unknown evaluation views {bad}; choose from {list(VIEWS)}")
        _positive("evaluation.batch_size", self.batch_size)


#: flat option names (the CLI's flags) -> nested paths
FLAGS = {
    "biggan": "cgn.biggan", "u2net": "cgn.u2net", "cgn_checkpoint": "cgn.checkpoint",
    "perceptual": "cgn.perceptual", "cgn_train": "cgn.train",
    "episodes": "cgn.train.episodes", "batch_acc": "cgn.train.batch_acc",
    "n": "generation.n", "mode": "generation.mode", "classes": "generation.classes",
    "noise": "generation.noise", "truncation": "generation.truncation",
    "shard_size": "generation.shard_size", "generate_batch": "generation.batch_size",
    "interpolate": "generation.interpolate", "interp_class": "generation.interp_class",
    "midpoints": "generation.midpoints", "tar": "generation.tar",
    "arch": "classifier.arch", "width": "classifier.width",
    "pretrained": "classifier.pretrained", "real_root": "classifier.real_root",
    "cf_root": "classifier.cf_root", "epochs": "classifier.epochs",
    "steps": "classifier.steps", "batch_size": "classifier.batch_size",
    "lr": "classifier.lr", "workers": "classifier.workers",
    "benchmarks": "evaluation.benchmarks", "roots": "evaluation.roots",
    "views": "evaluation.views",
    "seed": "seed", "precision": "precision",
}


@dataclass
class CGNImageNetConfig(ExperimentConfig):
    """The CGN pipeline on ImageNet; presets in ``presets/cgn-imagenet/``."""

    EXPERIMENT: ClassVar[str] = "cgn-imagenet"
    FLAGS: ClassVar[dict[str, str]] = FLAGS

    cgn: CGNSection = field(default_factory=CGNSection)
    generation: GenerationSection = field(default_factory=GenerationSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    seed: int = 0
    precision: str = "fp32"

    def check(self) -> None:
        check_precision(self.precision)

    def check_stage(self, stage: str) -> None:
        """What ``stage`` needs beyond the sections' own checks (before it writes)."""
        if stage not in STAGES:
            raise CausalKitError(f"unknown stage {stage!r}; choose one of {list(STAGES)}")
        if stage == "train-classifier" and self.classifier.real_root is None:
            raise CausalKitError("train-classifier needs real images: set "
                                 "classifier.real_root (--real-root) to an ImageNet "
                                 "training ImageFolder")
        if stage == "train-classifier" and not Path(self.classifier.real_root).is_dir():
            raise CausalKitError(f"classifier.real_root {self.classifier.real_root!r} is no "
                                 "folder; pass an ImageNet training ImageFolder")
        if stage == "evaluate":
            from analysis.benchmarks.registry import get_benchmark

            for name in self.evaluation.benchmarks:
                get_benchmark(name)  # an unknown name lists the known ones
            missing = [b for b in self.evaluation.benchmarks if b not in self.evaluation.roots]
            if missing:
                raise CausalKitError(f"evaluation.roots has no folder for {missing}; set "
                                     f"--root {missing[0]}=DIR (or evaluation.roots in the "
                                     "config) to its data folder")
            for name in self.evaluation.benchmarks:
                if name in self.evaluation.roots and not Path(
                        self.evaluation.roots[name]).is_dir():
                    raise CausalKitError(f"evaluation.roots.{name} "
                                         f"{self.evaluation.roots[name]!r} is no folder; "
                                         "pass the benchmark's data folder")
        if stage in ("train-cgn", "generate") and self.cgn.u2net != "random:u2netp" \
                and not Path(self.cgn.u2net).is_file():
            raise CausalKitError(f"cgn.u2net {self.cgn.u2net!r} is no file; pass "
                                 "u2netp.onnx / u2net.pth (--u2net) or random:u2netp")


# -- the stages -----------------------------------------------------------------------------
def _paths(out: Path, config: CGNImageNetConfig) -> dict[str, Path]:
    cf = Path(config.classifier.cf_root) if config.classifier.cf_root else \
        out / "counterfactuals"
    return {"cgn": out / "cgn", "counterfactuals": cf, "classifier": out / "classifier",
            "evaluation": out / "evaluation.json"}


def _biggan(spec: str) -> Any:
    from generators.biggan import tiny_config

    return tiny_config() if spec == "tiny" else spec


def _u2net(spec: str) -> Any:
    return spec.split(":", 1)[1] if spec.startswith("random:") else spec


def _train_cgn(config: CGNImageNetConfig, paths: dict[str, Path], device: Any,
               progress: bool, **_: Any) -> dict[str, Any]:
    from generators.cgn.imagenet.model import build_cgn_imagenet
    from generators.cgn.imagenet.train import train_cgn_imagenet
    from generators.perceptual import perceptual_features

    if config.cgn.checkpoint is not None:
        return {"skipped": True, "checkpoint": config.cgn.checkpoint}
    train_config = config.cgn.train_config(seed=config.seed, precision=config.precision)
    cgn = build_cgn_imagenet(_biggan(config.cgn.biggan), u2net=_u2net(config.cgn.u2net),
                             seed=config.seed, device=device,
                             truncation=train_config.truncation)
    result = train_cgn_imagenet(cgn, train_config, paths["cgn"],
                                features=perceptual_features(config.cgn.perceptual),
                                progress=progress)
    return {"iterations": result.iterations, "seconds": round(result.seconds, 3),
            "model": str(result.model_path)}


def _load_cgn(config: CGNImageNetConfig, paths: dict[str, Path], device: Any) -> Any:
    from generators.cgn.imagenet.checkpoint import (
        load_cgn_imagenet,
        load_official_cgn_imagenet,
    )
    from generators.cgn.imagenet.model import BIGGAN_DEEP_256

    path = Path(config.cgn.checkpoint) if config.cgn.checkpoint else \
        paths["cgn"] / CGN_FILE
    if not path.is_file():
        raise CausalKitError(f"no trained CGN at {path}; run --stage train-cgn first or set "
                             "cgn.checkpoint (--cgn-checkpoint)")
    try:
        cgn = load_cgn_imagenet(path, device=device)
    except CausalKitError as exc:
        if "official" not in str(exc):  # ours is damaged: say so, do not guess
            raise
        biggan = _biggan(config.cgn.biggan)
        cgn = load_official_cgn_imagenet(
            path, biggan_config=biggan if isinstance(biggan, dict) else BIGGAN_DEEP_256,
            u2net_kind="u2netp" if "u2netp" in config.cgn.u2net else "u2net", device=device)
    return cgn.eval()


def _generate(config: CGNImageNetConfig, paths: dict[str, Path], device: Any,
              progress: bool, rank: int | None = None, world: int | None = None
              ) -> dict[str, Any]:
    import torch

    from generators.cgn.imagenet.generate import write_counterfactual_imagenet

    if device is None and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per rank
    cgn = _load_cgn(config, paths, device)
    return write_counterfactual_imagenet(
        cgn, paths["counterfactuals"], config.generation.settings(config.seed),
        batch_size=config.generation.batch_size, rank=rank, world=world, device=device,
        progress=progress)


def _fit_config(config: CGNImageNetConfig, steps: int) -> Any:
    from robust_training.engine import FitConfig

    c = config.classifier
    return FitConfig(objective="cgn-heads", steps=steps, lr=c.lr, weight_decay=c.weight_decay,
                     schedule=c.schedule, optimizer=c.optimizer, momentum=c.momentum,
                     milestones=list(c.milestones), milestone_unit=c.milestone_unit,
                     gamma=c.gamma, seed=config.seed,
                     model=c.arch, width=c.width, hparams={"aux_weight": 1.0}, amp=c.amp,
                     precision=config.precision, log_every=min(c.log_every, steps),
                     checkpoint_every=min(c.checkpoint_every, steps))


def _train_classifier(config: CGNImageNetConfig, paths: dict[str, Path], device: Any,
                      progress: bool, **_: Any) -> dict[str, Any]:
    from robust_training.engine import dist_info, fit
    from robust_training.imagenet_classifier import (
        build_imagenet_classifier,
        save_imagenet_classifier,
    )
    from robust_training.imagenet_data import EvenBatches, FolderStream

    c = config.classifier
    real = FolderStream.real(c.real_root, c.batch_size)
    cf = FolderStream.counterfactual(paths["counterfactuals"], c.batch_size)
    steps = c.steps or max(1, round(c.epochs * len(real) / c.batch_size))
    batches = EvenBatches([real, cf], steps=steps, size=c.size, seed=config.seed,
                          num_workers=c.workers)
    model = build_imagenet_classifier(c.arch, width=c.width, seed=config.seed,
                                      pretrained=c.pretrained)
    fit_config = _fit_config(config, steps)
    model, info = fit(batches, fit_config, paths["classifier"], device=device,
                      progress=progress, model=model)
    rank, _ = dist_info()
    if rank == 0 and info["steps"] >= steps:
        save_imagenet_classifier(model, paths["classifier"], {
            "arch": c.arch, "width": c.width, "heads": list(model.head_names),
            "n_classes": model.heads[model.head_names[0]].out_features,
            "steps": info["steps"], "real_images": len(real), "cf_images": len(cf),
            "cf_root": str(paths["counterfactuals"])})
    return {"steps": info["steps"], "seconds": info["seconds"], "last": info["last"],
            "real_images": len(real), "cf_images": len(cf),
            "images_per_s": round(info["steps"] * 2 * c.batch_size / info["seconds"], 3)
            if info["seconds"] else None}


def _benchmark(name: str) -> Any:
    try:
        from analysis.benchmarks import registry
    except ImportError:
        raise CausalKitError("the evaluate stage needs analysis.benchmarks (the OOD "
                             "evaluators), which this installation lacks") from None
    return registry.get_benchmark(name)


def _evaluate(config: CGNImageNetConfig, paths: dict[str, Path], device: Any,
              progress: bool, **_: Any) -> dict[str, Any]:
    from robust_training.imagenet_classifier import load_imagenet_classifier

    model = load_imagenet_classifier(paths["classifier"], device=device or "cpu")
    benches = {name: _benchmark(name) for name in config.evaluation.benchmarks}
    # the heads and their mean in one pass; "mean" is the benchmarks' "averaged"
    keep = {("averaged" if v == "mean" else v): v for v in config.evaluation.views}
    results: dict[str, Any] = {}
    for name, bench in benches.items():
        evaluate = getattr(bench, "evaluate", bench)
        res = evaluate(model.view("all"), config.evaluation.roots[name],
                       batch_size=config.evaluation.batch_size, device=device,
                       progress=progress)
        out = res.to_dict() if hasattr(res, "to_dict") else dict(res)
        metrics = out.get("metrics", {})
        out["metrics"] = {keep[h]: m for h, m in metrics.items() if h in keep}
        results[name] = out
    atomic_write_text(paths["evaluation"], json.dumps(results, indent=2, default=str) + "\n")
    return results


def _needs(stage: str, config: CGNImageNetConfig, paths: dict[str, Path]) -> None:
    # what a stage reads from the one before, checked before anything is written
    cgn = Path(config.cgn.checkpoint) if config.cgn.checkpoint else paths["cgn"] / CGN_FILE
    needed = {"generate": (cgn, "train-cgn (or set --cgn-checkpoint)"),
              "train-classifier": (paths["counterfactuals"] / "labels.csv",
                                   "generate to the end (or set --cf-root)"),
              "evaluate": (paths["classifier"] / "classifier.json", "train-classifier")}
    if stage in needed and not needed[stage][0].is_file():
        path, before = needed[stage]
        raise CausalKitError(f"--stage {stage} needs {path}, which does not exist; run "
                             f"--stage {before} first")


_RUNNERS = {"train-cgn": _train_cgn, "generate": _generate,
            "train-classifier": _train_classifier, "evaluate": _evaluate}


def run_stage(config: CGNImageNetConfig, stage: str, out: str | os.PathLike, *,
              device: Any = None, progress: bool = True, rank: int | None = None,
              world: int | None = None) -> dict[str, Any]:
    """Run one stage under ``out`` (resuming it), record it in ``out/stages.jsonl`` and
    return ``{"stage", "seconds", "result", "config"}``.

    ``rank`` / ``world`` pick the generate stage's share of shards (default ``RANK`` /
    ``WORLD_SIZE``: torchrun or an array job); the classifier takes torchrun's.
    """
    config.check_stage(stage)
    out = Path(out)
    paths = _paths(out, config)
    _needs(stage, config, paths)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", config.to_yaml())
    start = time.perf_counter()
    result = _RUNNERS[stage](config, paths, device, progress, rank=rank,
                             world=world)
    record = {"stage": stage, "seconds": round(time.perf_counter() - start, 3),
              "result": result}
    with open(out / "stages.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
    return {**record, "config": config.to_dict()}


def format_stage(record: dict[str, Any]) -> str:
    """A few readable lines about a finished stage."""
    res = record["result"]
    lines = [f"stage {record['stage']} done in {record['seconds']:.1f} s"]
    if record["stage"] == "generate":
        lines.append(f"  {res['generated_images']} images written "
                     f"({res['images_per_s'] or 0:.2f} img/s), complete: {res['complete']}")
    elif record["stage"] == "train-classifier":
        lines.append(f"  {res['steps']} steps on {res['real_images']} real + "
                     f"{res['cf_images']} counterfactual images")
    elif record["stage"] == "evaluate":
        for name, r in res.items():
            for view, values in r.get("metrics", {}).items():
                shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items()
                                  if isinstance(v, (int, float)))
                lines.append(f"  {name} [{view}]: {shown}")
    return "\n".join(lines)
