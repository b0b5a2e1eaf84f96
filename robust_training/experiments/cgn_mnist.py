"""The CGN pipeline on an MNIST variant, end to end (Sauer & Geiger, Table 2).

Stages, each timed:

1. ``data``      -- the variant's train split (rho = 1), OOD test split, IRM environments;
2. ``cgn``       -- train a CGN on the train split (or load the official / a given one);
3. ``generate``  -- CGN samples without counterfactual labels, and counterfactuals
                    (texture and background randomised, noise held fixed). A CGN
                    trained with the "fast" recipe has an encoder, and both sets are
                    then made from real training images by abduction
                    (:func:`~generators.cgn.mnist.abduction.abduct_counterfactuals`);
                    otherwise from prior noise, as in the paper;
4. ``classify``  -- one classifier per method, scored on its training images ("train")
                    and on the OOD test split ("ood").

Methods (rows of the table):

``original``          ERM on real images
``irm-2``, ``irm-5``  IRM over environments with rho 0.9/1.0, or 0.9/0.925/0.95/0.975/1.0
``original+gan``      ERM on real images plus label-aligned CGN samples
``original+cgn``      shape/texture/background heads on real plus counterfactual images
``cgn``               the heads on counterfactual images only

For the two CGN-heads methods the digit prediction is the shape head; the mean of the
heads' logits (the paper's ImageNet rule) is reported too, as ``ood_mean_heads``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write_text, load_torch
from causalkit.precision import bf16_is_native, check_precision
from generators.base import default_device
from generators.cgn.contrast import check_contrast
from generators.cgn.counterfactuals import generate_counterfactuals
from generators.cgn.mnist.abduction import BACKGROUNDS, MASKS, abduct_counterfactuals
from generators.cgn.mnist.checkpoint import OFFICIAL_VARIANTS, load_generator, load_official
from generators.cgn.mnist.encoder import load_encoder
from generators.cgn.mnist.train import RECIPES, CGNTrainConfig, preset, train_cgn
from generators.cgn.nuisances import MechanismNuisances
from generators.cgn.palette import widen_palette
from generators.images import save_grid
from robust_training.engine import accuracy, check_optimizer, check_options, train_classifier
from robust_training.experiments.config import (
    PRESETS,
    ExperimentConfig,
    Section,
    from_dict,
    load_layer,
    merged,
)
from robust_training.methods import METHODS as ALL_METHODS
from robust_training.methods import get_method
from robust_training.models import build_model
from robust_training.objectives import get_objective
from robust_training.streams import TrainData

__all__ = ["CGNMnistConfig", "DataSection", "GeneratorSection", "CounterfactualSection",
           "ClassifierSection", "EvaluationSection", "run_cgn_mnist", "preset_config",
           "format_results", "cgn_train_config", "config_of_record", "VARIANTS", "METHODS",
           "FLAGS", "SEED_OFFSETS"]

#: variant -> its dataset in :mod:`causalkit.datasets`
VARIANTS = {"colored": "colored-mnist", "double-colored": "double-colored-mnist",
            "wildlife": "wildlife-mnist"}
METHODS = tuple(ALL_METHODS["cgn"])  # the rows of Table 2, in order
COUNTERFACTUALS = ("auto", "abducted", "prior")  # where the counterfactuals' noise comes from
IRM_RHOS = {"irm-2": (0.9, 1.0), "irm-5": (0.9, 0.925, 0.95, 0.975, 1.0)}
#: each random stream of a run is the run's seed plus its offset (IRM environment i:
#: ``irm_env + i``), so that the streams differ and the recorded runs stay reproducible
SEED_OFFSETS = {"irm_env": 1, "gan_samples": 100, "counterfactuals": 200,
                "abduction_pick": 300, "palette": 400}


@dataclass
class DataSection(Section):
    """The variant's splits: the train split (rho = 1), its OOD split, IRM environments."""

    variant: str = "colored"
    #: MNIST source (:func:`causalkit.datasets.resolve_source`); null = its default
    source: str | None = None
    #: Wildlife texture folder (null = procedural textures)
    textures: str | None = None
    #: how digits are drawn (:data:`causalkit.datasets.variants.RENDERINGS`): "pad" (ours)
    #: or "paper" (the official code's, which its checkpoints were trained on)
    rendering: str = "pad"
    n_train: int | None = None  # real training images (null = the whole pool)

    def validate(self) -> None:
        from causalkit.datasets.variants import check_rendering

        if self.variant not in VARIANTS:
            raise CausalKitError(f"unknown variant {self.variant!r}; choose one of "
                                 f"{sorted(VARIANTS)}")
        check_rendering(self.rendering)
        _positive("data.n_train", self.n_train)

    @property
    def dataset(self) -> str:
        """The dataset registry name of the variant."""
        return VARIANTS[self.variant]


@dataclass
class GeneratorSection(Section):
    """The CGN: trained here, the authors' weights, or a given checkpoint."""

    cgn: str = "train"  # "train", "official" or a path to generator.pt / ckp.pth
    official_root: str | None = None  # default ../shared/data/cgn_official
    recipe: str = "fast"  # generators.cgn.mnist.train.RECIPES
    #: CGNTrainConfig fields on top of the variant's preset and the recipe (iterations,
    #: batch_size, ngf, recon_pool ...); the run's seed and precision are the config's
    train: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            raise CausalKitError(f"unknown CGN recipe {self.recipe!r} (--recipe); choose "
                                 f"one of {sorted(RECIPES)}")
        if self.cgn == "official" and not official_available(self.official_root):
            raise CausalKitError("the official CGN checkpoints were not found under "
                                 f"{self.official_root or '../shared/data/cgn_official'}; "
                                 "pass --official-root or use --cgn train")
        if self.cgn not in ("train", "official") and not Path(self.cgn).is_file():
            raise CausalKitError(f"--cgn {self.cgn!r} is neither 'train', 'official' nor an "
                                 "existing generator.pt / ckp.pth file")

    @property
    def trains_encoder(self) -> bool:
        """Whether the run trains a CGN with an encoder (``lambda_recon > 0`` under the
        recipe and ``train``), so that it can abduct."""
        settings = {**RECIPES.get(self.recipe, {}), **self.train}
        return self.cgn == "train" and bool(settings.get("lambda_recon"))


@dataclass
class CounterfactualSection(Section):
    """The generated sets: label-aligned CGN samples and counterfactuals."""

    noise: str = "auto"  # "abducted", "prior", or "auto" (abducted if possible)
    n_generated: int = 4000  # size of the CGN-sample and the counterfactual sets
    per_noise: int = 4  # counterfactuals per noise draw (prior noise)
    #: backgrounds of abducted counterfactuals: "generated" (the CGN's background
    #: mechanism) or "real" (the training images, digits cut out by their masks)
    backgrounds: str = "generated"
    #: masks of abducted counterfactuals: "cgn" (the shape mechanism at the abducted
    #: noise) or "colour" (each pixel's colour posterior under the class's densities)
    masks: str = "cgn"
    #: a label-free colour shift of every counterfactual the classifier trains on
    #: (:mod:`generators.cgn.palette`: "none", or "hue", "saturation", "invert" joined by "+")
    palette: str = "none"
    #: where it acts: "image" (each composed counterfactual, one draw; the saved
    #: counterfactuals.npz stays the CGN's own) or "mechanisms" (the texture and the
    #: background values, a draw each, before the composer; saved as generated)
    palette_target: str = "image"
    #: the lowest scale of each counterfactual's mask, drawn uniformly in [contrast, 1]
    #: independently of every label (:mod:`generators.cgn.contrast`); 1.0 is none
    contrast: float = 1.0
    #: the fraction of counterfactuals whose texture (background) mechanism value is
    #: replaced by a random-feature texture, drawn independently of every label
    #: (:mod:`generators.cgn.random_textures`); 0.0 is none
    random_texture: float = 0.0
    random_background: float = 0.0
    #: which random textures: "features" (noise through a random network) or
    #: "dead-leaves" (occluding discs and squares), see generators.cgn.random_textures
    random_family: str = "features"

    @property
    def random_textures(self) -> dict[str, float]:
        """The replaced fractions by mechanism name, as
        :func:`~generators.cgn.random_textures.random_texture_interventions` takes them."""
        return {"texture": self.random_texture, "background": self.random_background}

    @property
    def mechanism_nuisances(self) -> MechanismNuisances:
        """The label-free interventions made while generating: all of them but a palette
        on the image, which the classifiers apply."""
        return MechanismNuisances(
            palette=self.palette if self.palette_target == "mechanisms" else "none",
            contrast=self.contrast, random_textures=self.random_textures,
            random_family=self.random_family)

    def validate(self) -> None:
        from generators.cgn.palette import check_palette
        from generators.cgn.random_textures import check_random_textures

        try:
            check_palette(self.palette, self.palette_target)
        except CausalKitError as e:
            raise CausalKitError(f"{e} (--palette, --palette-target)") from None
        try:
            check_contrast(self.contrast)
        except CausalKitError as e:
            raise CausalKitError(f"{e} (counterfactuals.contrast, --contrast)") from None
        try:
            check_random_textures(self.random_textures, self.random_family)
        except CausalKitError as e:
            raise CausalKitError(f"{e} (counterfactuals.random_texture, random_background, "
                                 "random_family; --random-texture, --random-background, "
                                 "--random-family)") from None
        if self.noise not in COUNTERFACTUALS:
            raise CausalKitError(f"unknown counterfactual noise {self.noise!r} "
                                 f"(--counterfactuals); choose one of {list(COUNTERFACTUALS)}")
        if self.backgrounds not in BACKGROUNDS:
            raise CausalKitError(f"unknown backgrounds {self.backgrounds!r} (--backgrounds); "
                                 f"choose one of {list(BACKGROUNDS)}")
        if self.masks not in MASKS:
            raise CausalKitError(f"unknown masks {self.masks!r} (--masks); choose one of "
                                 f"{list(MASKS)}")
        _positive("counterfactuals.n_generated", self.n_generated)
        _positive("counterfactuals.per_noise", self.per_noise)

    @property
    def needs_abduction(self) -> list[str]:
        """The options set here that work from abducted masks."""
        return [opt for opt, on in (("--backgrounds real", self.backgrounds == "real"),
                                    ("--masks colour", self.masks == "colour")) if on]


@dataclass
class ClassifierSection(Section):
    """One classifier per method (:mod:`robust_training.methods`), trained alike."""

    methods: tuple[str, ...] = METHODS
    #: "cnn" (the paper's), "cnn-bn", "cnn-cn" or a ResNet name (robust_training.models)
    model: str = "cnn"
    epochs: float = 3.0
    steps: int | None = None  # overrides epochs (the same budget for every method)
    lr: float = 2e-3
    batch_size: int = 128
    optimizer: str = "adam"  # robust_training.engine.OPTIMIZERS
    schedule: str = "constant"  # robust_training.engine.SCHEDULES
    shift: int = 0  # augmentation: random translation, in pixels
    #: weight of the texture and background heads (the "cgn-heads" objective's aux_weight)
    aux_weight: float = 0.1
    irm_penalty: float = 10.0  # IRM's penalty weight after its warm-up
    #: the classifier settings this section started from (presets/cgn-mnist/protocols/)
    protocol: str = "ours"

    def validate(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise CausalKitError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
        check_options(self.schedule, self.shift)
        check_optimizer(self.optimizer)
        build_model(self.model, ("label",))  # an unknown name fails here, before any work
        try:  # the objective owns the rule; the message names the pipeline's field
            get_objective("cgn-heads", aux_weight=self.aux_weight)
        except CausalKitError as exc:
            raise CausalKitError(f"cgn_aux_weight: {exc}") from None
        if not self.irm_penalty >= 0:
            raise CausalKitError(f"irm_penalty must be >= 0, got {self.irm_penalty}")
        _positive("classifier.steps", self.steps)
        _positive("classifier.batch_size", self.batch_size)


@dataclass
class EvaluationSection(Section):
    """What the classifiers are scored on: their training images, the OOD split and, for
    Wildlife, the same OOD digits under textures never trained on
    (:mod:`causalkit.datasets.texture_sets`: ``photos``, ``photos:object``, ...)."""

    n_ood: int | None = None  # OOD test images (null = the whole split)
    texture_ood: tuple[str, ...] = ()

    def validate(self) -> None:
        from causalkit.datasets.texture_sets import check_texture_spec

        _positive("evaluation.n_ood", self.n_ood)
        for spec in self.texture_ood:
            check_texture_spec(spec)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise CausalKitError(f"{name} must be >= 1, got {value}")


#: flat option names (the CLI's and the benchmark's flags, and the keys of records
#: written before the config was nested) -> nested paths
FLAGS = {
    "variant": "data.variant", "source": "data.source", "textures": "data.textures",
    "rendering": "data.rendering", "n_train": "data.n_train",
    "cgn": "generator.cgn", "official_root": "generator.official_root",
    "cgn_recipe": "generator.recipe", "cgn_overrides": "generator.train",
    "cgn_iterations": "generator.train.iterations", "cgn_batch": "generator.train.batch_size",
    "cgn_ngf": "generator.train.ngf", "lambda_texture": "generator.train.lambda_texture",
    "counterfactuals": "counterfactuals.noise", "n_generated": "counterfactuals.n_generated",
    "per_noise": "counterfactuals.per_noise", "backgrounds": "counterfactuals.backgrounds",
    "masks": "counterfactuals.masks", "palette": "counterfactuals.palette",
    "palette_target": "counterfactuals.palette_target", "contrast": "counterfactuals.contrast",
    "random_texture": "counterfactuals.random_texture",
    "random_background": "counterfactuals.random_background",
    "random_family": "counterfactuals.random_family",
    "methods": "classifier.methods", "model": "classifier.model",
    "epochs": "classifier.epochs", "steps": "classifier.steps", "lr": "classifier.lr",
    "batch_size": "classifier.batch_size", "optimizer": "classifier.optimizer",
    "schedule": "classifier.schedule", "shift": "classifier.shift",
    "cgn_aux_weight": "classifier.aux_weight", "irm_penalty": "classifier.irm_penalty",
    "classifier_protocol": "classifier.protocol",
    "n_ood": "evaluation.n_ood", "texture_ood": "evaluation.texture_ood",
    "seed": "seed", "precision": "precision",
}


@dataclass
class CGNMnistConfig(ExperimentConfig):
    """The CGN pipeline on an MNIST variant (Sauer & Geiger, Table 2).

    Presets: ``presets/cgn-mnist/<variant>-quick.yaml`` (minutes on 2 CPU cores, the
    embedded 5k MNIST) and ``<variant>-full.yaml`` (full MNIST); each says how its
    settings were chosen.
    """

    EXPERIMENT: ClassVar[str] = "cgn-mnist"
    FLAGS: ClassVar[dict[str, str]] = FLAGS

    data: DataSection = field(default_factory=DataSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    counterfactuals: CounterfactualSection = field(default_factory=CounterfactualSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    seed: int = 0
    #: "fp32", or "bf16": bfloat16 autocast for the CGN's and the classifiers' training
    precision: str = "fp32"

    @classmethod
    def _layers(cls, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A classifier protocol fills in its settings beneath the layer that chooses it:
        # the last layer naming ``classifier.protocol`` decides, and its fragment goes
        # just below that layer (above everything lower).
        naming = [i for i, lay in enumerate(layers)
                  if "protocol" in lay.get("classifier", {})]
        if naming:
            name = layers[naming[-1]]["classifier"]["protocol"]
            path = PRESETS / cls.EXPERIMENT / "protocols" / f"{name}.yaml"
            if not path.is_file():
                known = sorted(p.stem for p in path.parent.glob("*.yaml"))
                raise CausalKitError(f"unknown classifier protocol {name!r}; choose one of "
                                     f"{known}")
            layers = [*layers[:naming[-1]], load_layer(path), *layers[naming[-1]:]]
        # Real backgrounds and colour masks work from abducted masks: a preset's choice
        # of them gives way when the run cannot abduct; a user's choice is checked.
        resolved = merged(layers)
        gen = from_dict(GeneratorSection, resolved.get("generator"), where="generator.")
        noise = resolved.get("counterfactuals", {}).get("noise", "auto")
        if not gen.trains_encoder or noise == "prior":
            user = [lay for lay in layers if lay.get("_user")]
            for key, default in (("backgrounds", "generated"), ("masks", "cgn")):
                if not any(key in lay.get("counterfactuals", {}) for lay in user):
                    layers.append({"counterfactuals": {key: default}})
        return layers

    def check(self) -> None:
        check_precision(self.precision)
        cgn_train_config(self)  # checks the CGN's train settings
        if self.counterfactuals.noise == "abducted" and not self.generator.trains_encoder:
            raise CausalKitError("abducted counterfactuals need a CGN trained here with an "
                                 "encoder (--cgn train with the 'fast' recipe); use "
                                 "counterfactuals='prior' for the official weights")
        if self.evaluation.texture_ood and self.data.variant != "wildlife":
            raise CausalKitError("evaluation.texture_ood scores Wildlife MNIST under unseen "
                                 f"textures; {self.data.variant} has none: leave it empty")
        if (any(":" in t for t in self.evaluation.texture_ood)
                and self.data.textures is None):
            raise CausalKitError("evaluation.texture_ood NAME:object / NAME:background keep "
                                 "the training textures for one role and need them as a "
                                 "folder: set data.textures (--textures DIR)")
        uses = self.counterfactuals.needs_abduction
        if uses and not self.abducts:
            raise CausalKitError(f"{' and '.join(uses)}: these work from the training "
                                 "images' abducted masks and need abducted counterfactuals "
                                 "(--cgn train with the 'fast' recipe, --counterfactuals "
                                 "auto or abducted)")

    @property
    def abducts(self) -> bool:
        """Whether the counterfactuals are abducted from the real training images."""
        return self.generator.trains_encoder and self.counterfactuals.noise != "prior"

    def flat(self) -> dict[str, Any]:
        """The settings under their flat option names (:data:`FLAGS`), as records
        written before the config was nested hold them: the four flat CGN options at
        the CGN's defaults when unset, ``cgn_overrides`` the rest of ``generator.train``."""
        out = super().flat()
        train = dict(self.generator.train)
        for name, path in FLAGS.items():
            if path.startswith("generator.train."):
                key = path.rsplit(".", 1)[1]
                out[name] = train.pop(key, getattr(CGNTrainConfig, key))
        out["cgn_overrides"] = train
        return {name: out[name] for name in FLAGS}


def preset_config(variant: str | None = None, *, quick: bool = False,
                  preset: str | None = None, file: str | Path | None = None,
                  **flags: Any) -> CGNMnistConfig:
    """The preset ``preset`` (by default ``<variant>-quick`` or ``<variant>-full``) under
    ``file`` and ``flags``. A named ``preset`` brings its own variant: ``variant``, if
    given, must agree, and ``quick`` must be false."""
    if preset is None:
        variant = variant or "colored"
        if variant not in VARIANTS:
            raise CausalKitError(f"unknown variant {variant!r}; choose one of "
                                 f"{sorted(VARIANTS)}")
        preset = f"{variant}-{'quick' if quick else 'full'}"
    elif quick:
        raise CausalKitError(f"--quick picks the <variant>-quick preset; it does not combine "
                             f"with the preset {preset!r}: drop one of them")
    config = CGNMnistConfig.resolve(preset, file=file, flags=flags)
    if variant is not None and config.data.variant != variant:
        raise CausalKitError(f"the preset {preset!r} is for {config.data.variant} MNIST, not "
                             f"--variant {variant}: drop --variant or pick another preset")
    return config


def config_of_record(record: dict[str, Any]) -> dict[str, Any]:
    """A run's settings under their flat names, from its ``results.json`` (nested
    since the config was nested, flat before)."""
    cfg = record["config"]
    if "data" not in cfg:  # a record from before the nested config
        return dict(cfg)
    return from_dict(CGNMnistConfig, cfg).flat()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def cgn_train_config(config: CGNMnistConfig) -> CGNTrainConfig:
    """The CGN training config a pipeline run uses (``cgn="train"``): the variant's
    preset under the recipe, with the run's seed, precision and ``generator.train``."""
    train = dict(config.generator.train)
    train.setdefault("sample_every", max(1, train.get("iterations", CGNTrainConfig.iterations)
                                         // 4))
    return preset(config.data.variant, recipe=config.generator.recipe, seed=config.seed,
                  precision=config.precision, **train)


def run_cgn_mnist(config: CGNMnistConfig, out: str | os.PathLike, *,
                  device: str | torch.device | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Run the whole pipeline; write ``results.json``, ``table.txt`` and PNG grids to ``out``.

    ``config`` is validated (:meth:`CGNMnistConfig.resolve` already did so); returns
    the results dict (config, per-method accuracies, stage times, peak memory).
    """
    from causalkit.datasets import build_split
    from causalkit.datasets.texture_sets import texture_set_folder

    config.validate()
    data, gen_cfg, cfs, clf = (config.data, config.generator, config.counterfactuals,
                               config.classifier)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else default_device()
    if config.precision == "bf16" and not bf16_is_native(device):
        _log(f"warning: {device.type} has no native bfloat16 arithmetic; precision 'bf16' "
             "may run slower than float32 here (--precision fp32)", True)
    name = data.dataset
    textures = data.textures if data.variant == "wildlife" else None
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}  # process CPU seconds: informative on a shared machine
    seed = config.seed

    # 1. data -------------------------------------------------------------------------
    t0, c0 = time.perf_counter(), time.process_time()
    common = dict(source=data.source, textures=textures, rendering=data.rendering)
    train = build_split(name, "train", rho=1.0, seed=seed, n=data.n_train, **common)
    ood = build_split(name, "ood", seed=seed, n=config.evaluation.n_ood, **common)
    texture_ood, texture_skipped = {}, {}
    for spec in config.evaluation.texture_ood:
        try:
            folder = texture_set_folder(spec, training=textures)
        except DataError as exc:  # e.g. scikit-image, whose photos they are, is absent
            texture_skipped[spec] = str(exc)
            _log(f"texture-OOD set {spec} skipped: {exc}", True)
            continue
        texture_ood[spec] = build_split(name, "ood", seed=seed, n=config.evaluation.n_ood,
                                        **(common | {"textures": folder}))
    envs: dict[str, list[Any]] = {}
    for method, rhos in IRM_RHOS.items():
        if method in clf.methods:
            per_env = len(train) // len(rhos)
            envs[method] = [build_split(name, "train", rho=r, n=per_env, **common,
                                        seed=seed + SEED_OFFSETS["irm_env"] + i)
                            for i, r in enumerate(rhos)]
    times["data"] = time.perf_counter() - t0
    cpu["data"] = time.process_time() - c0
    _log(f"data: {len(train)} train / {len(ood)} OOD images "
         f"({train.meta.get('source_name')}) in {times['data']:.1f}s", progress)
    save_grid(torch.as_tensor(train.images[:40]), out / "train_samples.png", nrow=10, upscale=2)
    save_grid(torch.as_tensor(ood.images[:40]), out / "ood_samples.png", nrow=10, upscale=2)

    # 2. CGN --------------------------------------------------------------------------
    t0, c0 = time.perf_counter(), time.process_time()
    cgn_log: list[dict] = []
    resumed_at = 0  # CGN iterations already done in out/cgn when this run started
    encoder = None  # set when counterfactuals are abducted from the real images
    if gen_cfg.cgn == "train":
        cfg = cgn_train_config(config)
        ckpt = out / "cgn" / "checkpoint.pt"
        if ckpt.exists():  # a resumed CGN: its stage time covers only what is left
            resumed_at = int(load_torch(ckpt)["iteration"])
        cgn, cgn_log = train_cgn(torch.as_tensor(train.images), torch.as_tensor(train.labels),
                                 cfg, out / "cgn", device=device, progress=progress)
        if config.abducts:
            encoder = load_encoder(out / "cgn" / "encoder.pt", device=device)
    elif gen_cfg.cgn == "official":
        cgn = load_official(data.variant, root=gen_cfg.official_root, device=device)
    else:
        cgn = load_generator(gen_cfg.cgn, device=device)
    times["cgn"] = time.perf_counter() - t0
    cpu["cgn"] = time.process_time() - c0
    _log(f"cgn ({gen_cfg.cgn}): {times['cgn']:.1f}s", progress)

    # 3. generated data ---------------------------------------------------------------
    t0, c0 = time.perf_counter(), time.process_time()
    need_gan = "original+gan" in clf.methods
    need_cf = any(m in clf.methods for m in ("original+cgn", "cgn"))
    gan_seed = seed + SEED_OFFSETS["gan_samples"]
    cf_seed = seed + SEED_OFFSETS["counterfactuals"]
    if encoder is not None:
        # every real image once (repeated when more are asked for than exist)
        n_src = min(len(train), cfs.n_generated)
        per = -(-cfs.n_generated // n_src)
        pick = np.random.default_rng(seed + SEED_OFFSETS["abduction_pick"]).permutation(
            len(train))[:n_src]
        x_src, y_src = train.images[pick], train.labels[pick]
        gan = (abduct_counterfactuals(cgn, encoder, x_src, y_src, per_image=per, randomise=(),
                                      seed=gan_seed, progress=progress) if need_gan else None)
        cf = (abduct_counterfactuals(cgn, encoder, x_src, y_src, per_image=per,
                                     seed=cf_seed, backgrounds=cfs.backgrounds,
                                     masks=cfs.masks, nuisances=cfs.mechanism_nuisances,
                                     progress=progress) if need_cf else None)
    else:
        gan = (generate_counterfactuals(cgn, cfs.n_generated, per_noise=1, randomise=(),
                                        seed=gan_seed, progress=progress)
               if need_gan else None)
        cf = (generate_counterfactuals(cgn, cfs.n_generated, per_noise=cfs.per_noise,
                                       interventions=cfs.mechanism_nuisances.interventions(
                                           cgn),
                                       seed=cf_seed, progress=progress)
              if need_cf else None)
    noise = "abducted" if encoder is not None else "prior"
    times["generate"] = time.perf_counter() - t0
    cpu["generate"] = time.process_time() - c0
    if cf is not None:
        cf.save(out / "counterfactuals.npz")
        save_grid(torch.as_tensor(cf.images[:10 * cfs.per_noise]), out / "counterfactuals.png",
                  nrow=cfs.per_noise * 2, upscale=2)
    if gan is not None:
        save_grid(torch.as_tensor(gan.images[:40]), out / "cgn_samples.png", nrow=10, upscale=2)
    _log(f"generate: {times['generate']:.1f}s", progress)

    # 4. classifiers ------------------------------------------------------------------
    t0, c0 = time.perf_counter(), time.process_time()
    real = TrainData.real_images(train.images, train.labels)
    sources = {"real": real}
    if gan is not None:
        sources["gan"] = TrainData.generated(gan.images, gan.shape, gan.texture, gan.background)
    if cf is not None:
        image_palette = cfs.palette if cfs.palette_target == "image" else "none"
        cf_images = widen_palette(cf.images, image_palette, seed=seed + SEED_OFFSETS["palette"])
        sources["cf"] = TrainData.generated(cf_images, cf.shape, cf.texture, cf.background)
    for method in envs:
        sources[method] = TrainData.concat(*[TrainData.real_images(e.images, e.labels, env=i)
                                             for i, e in enumerate(envs[method])])
    settings = {"irm_penalty": clf.irm_penalty, "cgn_aux_weight": clf.aux_weight}
    results: dict[str, dict[str, Any]] = {}
    for method in clf.methods:
        ts = time.perf_counter()
        spec = get_method(method, pipeline="cgn")
        hparams = spec.hparams_from(settings)
        data_m = TrainData.concat(*[sources[method if s == "envs" else s]
                                    for s in spec.streams])
        # each classifier checkpoints in its own folder, so a killed run resumes there
        model, _ = train_classifier(spec.objective, data_m, hparams=hparams,
                                    epochs=clf.epochs, steps=clf.steps,
                                    batch_size=clf.batch_size, lr=clf.lr,
                                    schedule=clf.schedule, shift=clf.shift,
                                    optimizer=clf.optimizer, model=clf.model, seed=seed,
                                    precision=config.precision,
                                    out=out / "classifiers" / method,
                                    device=device, progress=progress)
        row = {"objective": spec.objective, **({"hparams": hparams} if hparams else {}),
               "n_train": len(data_m),
               "train": accuracy(model, data_m.images, data_m.labels[:, 0]),
               "ood": accuracy(model, ood.images, ood.labels)}
        if spec.objective == "cgn-heads":
            row["ood_mean_heads"] = accuracy(model, ood.images, ood.labels, head=None)
        if texture_ood:
            row["ood_textures"] = {t: accuracy(model, d.images, d.labels)
                                   for t, d in texture_ood.items()}
        row["seconds"] = round(time.perf_counter() - ts, 2)
        results[method] = row
        _log(f"{method}: train {row['train']:.3f}  ood {row['ood']:.3f}", progress)
    times["classify"] = time.perf_counter() - t0
    cpu["classify"] = time.process_time() - c0

    record = {
        "variant": data.variant, "config": config.to_dict(),
        "source": train.meta.get("source_name"), "textures": train.meta.get("textures_name"),
        "n_train": len(train), "n_ood": len(ood),
        "counterfactual_noise": noise,
        "results": results,
        **({"texture_ood_skipped": texture_skipped} if texture_skipped else {}),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "seconds_total": round(sum(times.values()), 2),
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_seconds_total": round(sum(cpu.values()), 2),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "device": str(device),
        "cgn_train_config": asdict(cfg) if gen_cfg.cgn == "train" else None,
        "cgn_final_log": cgn_log[-1] if cgn_log else None,
        "cgn_resumed_at": resumed_at,
    }
    if device.type == "cuda":
        record["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    atomic_write_text(out / "results.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / "table.txt", format_results(record) + "\n")
    return record


def format_results(record: dict[str, Any]) -> str:
    """A Table-2-like text table: train and OOD test accuracy (%) per method."""
    noise = record.get("counterfactual_noise", "prior")
    lines = [f"{record['variant']} MNIST ({record['source']}; CGN: "
             f"{config_of_record(record)['cgn']}, "
             f"{noise} noise)"]
    sets = list(next(iter(record["results"].values()), {}).get("ood_textures", {}))
    lines.append(f"{'method':<14} {'train %':>8} {'ood %':>8} {'ood mean-heads %':>17}"
                 + "".join(f" {'ood ' + t + ' %':>{max(len(t) + 6, 10)}}" for t in sets))
    for method, row in record["results"].items():
        mh = f"{100 * row['ood_mean_heads']:.1f}" if "ood_mean_heads" in row else "-"
        lines.append(f"{method:<14} {100 * row['train']:>8.1f} {100 * row['ood']:>8.1f} "
                     f"{mh:>17}"
                     + "".join(f" {100 * row['ood_textures'][t]:>{max(len(t) + 6, 10)}.1f}"
                               for t in sets))
    secs = ", ".join(f"{k} {v:.0f}s" for k, v in record["seconds"].items())
    lines.append(f"wall time: {secs}; total {record['seconds_total']:.0f}s "
                 f"(process CPU {record.get('cpu_seconds_total', 0):.0f}s); "
                 f"peak RSS {record['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def official_available(root: str | os.PathLike | None = None) -> bool:
    """Whether the official checkpoints are present under ``root``."""
    base = Path(root) if root else Path("..") / "shared" / "data" / "cgn_official"
    return all((base / d / "ckp.pth").is_file() for d in OFFICIAL_VARIANTS.values())


