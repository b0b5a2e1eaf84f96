"""The one GenInt pipeline: pluggable data and generators, five resumable stages.

GenInt (Mao et al., CVPR 2021) trains a classifier on real images and on images a
generator makes under ``do(Z := z)`` on nuisance directions of its latent space, with
the style of those images transferred onto real ones as a third stream:
``L = CE(X, Y) + lambda1 CE(X_int, Y') + lambda2 CE(X_tr, Y'')``. The same five steps run
at every scale; only where the images live changes.

``directions``
    Settle the latent directions of the generator under the strategy
    (:func:`generators.sampling.make_sampler`: the exact SVD shortcut of an affine first
    layer such as BigGAN's ``gen_z``, or GANSpace on a named layer), saved with their key.
``generate``
    Write the interventional images (and the observational ones, for GAN augmentation)
    as sharded, resumable folders with ``labels.csv``.
``transfer``
    Give real images the style of interventional ones, labelled with the real label.
``train``
    One classifier per method (:mod:`robust_training.methods`: ``erm``, ``gan-aug``,
    ``mixup``, ``genint``, ``genint-transfer`` ...) on the engine
    (:func:`robust_training.engine.fit`: torchrun DDP, AMP or bf16, checkpoints).
``evaluate``
    The OOD benchmarks of :mod:`analysis.benchmarks` (ObjectNet-113, ImageNet-C,
    ImageNet-V2) and the accuracy on a validation folder.

**Data are pluggable.** A stream of a run is a kind (``real``, ``int``, ``obs``,
``transfer``), a batch size and a source: :class:`Memory` (uint8 tensors, as the MNIST
benchmark holds its pools), :class:`Folder` (an ImageFolder or WebDataset shards of real
images, or a generated folder's ``labels.csv``) or :class:`OnTheFly` (a sampler whose
generator makes each step's images on the training device). :func:`method_parts` picks
the streams a method needs and :func:`batch_source` joins them into one batch source of
the engine: in-memory streams in a :class:`~robust_training.streams.MultiStream`,
folders in one :class:`~robust_training.imagenet_data.EvenBatches` (decoded in
DataLoader workers), generators in an on-the-fly source, and these side by side in a
:class:`~robust_training.streams.Concat`. Every batch stays a pure function of the step,
so a killed run resumes with the bytes of one that was never stopped, and DDP ranks take
the rows ``rank::world`` of the same global batch.

**Generators are pluggable** through :func:`generators.registry.load_generator` specs:
``biggan:biggan-deep-256`` (or a folder of BigGAN weights), ``tiny:SEED`` (the random
32 x 32 BigGAN-deep of the tests), ``small:DIR`` (the small GAN of the MNIST benchmark).

**Stage folders are keyed.** Each stage writes under its own subfolder of the run's
folder with a ``stage.json`` of the settings it depends on (:func:`claim_stage`); a
rerun with other settings is refused before anything is written, a rerun with the same
settings resumes.

The experiments drive this module: :mod:`robust_training.experiments.genint_imagenet`
(ImageNet folders and BigGAN-deep-256, or their CPU stand-in) and
:mod:`robust_training.experiments.genint_mnist` (in-memory pools of biased MNIST).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_text

__all__ = ["STAGES", "Memory", "Folder", "OnTheFly", "method_parts", "batch_source",
           "Batches", "folder_stream",
           "claim_stage", "check_stage", "load_generator", "settle_directions",
           "generate_folder", "transfer_folder", "fit_config", "train_run",
           "ImageNetLogits", "class_indices", "evaluate_benchmarks", "standin_folders"]

STAGES = ("directions", "generate", "transfer", "train", "evaluate")
#: the settings file of a stage folder
STAGE_FILE = "stage.json"


# -- stage folders ------------------------------------------------------------------------
def check_stage(folder: str | Path, settings: Mapping[str, Any], stage: str, *,
                file: str = STAGE_FILE) -> Path:
    """Refuse ``folder`` when its settings ``file`` says it holds a ``stage`` run of other
    ``settings`` (:func:`causalkit.resume.check_run_folder`)."""
    from causalkit.resume import check_run_folder

    folder = Path(folder)
    check_run_folder(folder, settings, file=file, what=f"a {stage} stage run", shards=None)
    return folder


def claim_stage(folder: str | Path, settings: Mapping[str, Any], stage: str, *,
                file: str = STAGE_FILE) -> Path:
    """:func:`check_stage`, then create ``folder`` and record ``settings`` in ``file``."""
    from causalkit.resume import check_run_folder

    folder = Path(folder)
    check_run_folder(folder, settings, file=file, what=f"a {stage} stage run", shards=None,
                     write=True, sort_keys=True)
    return folder


# -- the streams of a run -----------------------------------------------------------------
@dataclass(frozen=True)
class Memory:
    """Images held in memory: uint8 ``(N, 3, H, W)`` and int labels ``(N,)``."""

    images: Any
    labels: Any


@dataclass(frozen=True)
class Folder:
    """Images on disk: ``imagefolder:DIR`` / ``webdataset:PATTERN`` (real images), or a
    generated folder (its ``labels.csv``: the generate and transfer stages' output)."""

    spec: str
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OnTheFly:
    """Images a sampler's generator makes at every step (labels uniform over ``classes``)."""

    sampler: Any
    classes: tuple[int, ...] | None = None
    precision: str = "bf16"
    overlap: bool = True


Source = Memory | Folder | OnTheFly
#: stream kind -> which of a run's batch sizes it takes
_BATCH = {"real": "batch_size", "int": "gen_batch_size", "obs": "gen_batch_size",
          "cf": "gen_batch_size", "transfer": "transfer_batch_size"}


def method_parts(method: str, sources: Mapping[str, Source], *, batch_size: int,
                 gen_batch_size: int, transfer_batch_size: int
                 ) -> list[tuple[str, Source, int]]:
    """``(kind, source, batch size)`` of every stream ``method`` trains on, in the
    method's order (:data:`robust_training.methods.METHODS`); a method with
    ``pooled_batch`` feeds its one stream at the size of real plus generated rows."""
    from robust_training.methods import get_method

    spec = get_method(method)
    missing = [k for k in spec.streams if k not in sources]
    if missing:
        raise CausalKitError(f"method {method!r} needs the {missing} stream(s), which this "
                             "run does not have; run the stage that makes them first")
    sizes = {"batch_size": batch_size, "gen_batch_size": gen_batch_size,
             "transfer_batch_size": transfer_batch_size}
    if spec.pooled_batch:
        return [(k, sources[k], batch_size + gen_batch_size) for k in spec.streams]
    return [(k, sources[k], sizes[_BATCH[k]]) for k in spec.streams]


def folder_stream(kind: str, source: Folder, batch_size: int) -> Any:
    """The :class:`~robust_training.imagenet_data.FolderStream` of a :class:`Folder`
    (``imagefolder:``, ``webdataset:`` or ``generated:`` spec); a generated folder's
    labels (generator classes) become positions in ``source.classes`` when given."""
    from robust_training.imagenet_data import FolderStream

    return FolderStream.from_spec(source.spec, batch_size, kind=kind,
                                  classes=list(source.classes) if source.classes else None)


class _Relabelled:
    """A batch source whose labels (generator classes) become positions in ``classes``."""

    def __init__(self, source: Any, classes: Sequence[int]) -> None:
        self.source = source
        self.lookup = torch.full((max(classes) + 1,), -1, dtype=torch.long)
        self.lookup[torch.as_tensor(list(classes))] = torch.arange(len(classes))

    def batch(self, step: int, *, rank: int = 0, world: int = 1,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        out = self.source.batch(step, rank=rank, world=world, device=device)
        out["y"] = self.lookup.to(out["y"].device)[out["y"]]
        return out


def _on_the_fly(kind: str, source: OnTheFly, batch_size: int, *, seed: int,
                size: int | None, steps: int) -> Any:
    from robust_training.generated_source import OnTheFlySource

    classes = list(source.classes) if source.classes is not None else None
    live = OnTheFlySource(source.sampler.generator, source.sampler, kind=kind,
                          batch_size=batch_size, seed=seed, size=size,
                          precision=source.precision, classes=classes,
                          overlap=source.overlap, steps=steps)
    if classes is None or classes == list(range(len(classes))):
        return live
    return _Relabelled(live, classes)


class Batches(NamedTuple):
    """A run's batch source with its length: ``steps`` in all, ``steps_per_epoch`` for
    one pass over the first (real) stream."""

    source: Any
    steps: int
    steps_per_epoch: int


def batch_source(parts: Sequence[tuple[str, Source, int]], *, steps: int | None = None,
                 epochs: float | None = None, seed: int = 0, size: int | None = None,
                 workers: int = 0, augment: str = "cpu") -> Batches:
    """One batch source of :func:`robust_training.engine.fit` for ``parts``, and its
    length: ``steps``, or ``epochs`` passes over the first part's images.

    In-memory parts become one :class:`~robust_training.streams.MultiStream` (seeded by
    ``seed``: exactly what the MNIST benchmark trained on before it ran through this
    pipeline), folders one :class:`~robust_training.imagenet_data.EvenBatches`
    (``size`` x ``size`` training crops, ``workers`` decoding processes), and each
    on-the-fly part its own source; several groups are concatenated in
    :class:`~robust_training.streams.Concat`, real images first.
    """
    from robust_training.streams import Concat, MultiStream, Stream

    if not parts:
        raise CausalKitError("a run needs at least one stream; check the method's streams")
    memory = [(k, s, b) for k, s, b in parts if isinstance(s, Memory)]
    folders = [(k, s, b) for k, s, b in parts if isinstance(s, Folder)]
    live = [(k, s, b) for k, s, b in parts if isinstance(s, OnTheFly)]
    mem = [Stream(k, s.images, s.labels, b) for k, s, b in memory]
    disk = [folder_stream(k, s, b) for k, s, b in folders]
    first = dict(zip([id(p[1]) for p in memory + folders], mem + disk, strict=True)).get(
        id(parts[0][1]))
    if first is None and steps is None:
        raise CausalKitError(f"a run whose first stream is made on the fly has no epochs; "
                             f"give its steps ({parts[0][0]!r} stream)")
    per_epoch = max(1, len(first) // parts[0][2]) if first is not None else steps
    if steps is None:
        steps = max(1, round((1.0 if epochs is None else epochs) * per_epoch))
    groups: list[Any] = []
    if mem:
        groups.append(MultiStream(mem, seed=seed))
    if disk:
        from robust_training.imagenet_data import EvenBatches

        groups.append(EvenBatches(disk, steps=steps, size=size or 224, seed=seed,
                                  num_workers=workers, augment=augment))
    for k, s, b in live:
        groups.append(_on_the_fly(k, s, b, seed=seed, size=size, steps=int(steps)))
    source = groups[0] if len(groups) == 1 else Concat(groups)
    return Batches(source, int(steps), int(per_epoch))


# -- generators, directions, generated folders ---------------------------------------------
def load_generator(spec: str, device: Any = None) -> Any:
    """The generator of a registry spec (``biggan:NAME|DIR``, ``tiny:SEED``,
    ``small:DIR``), in eval mode on ``device`` (default CPU)."""
    from generators.registry import load_generator as load

    return load(spec, device=device if device is not None else "cpu")


def settle_directions(generator: Any, strategy: str, *, layer: str | None,
                      folder: str | Path | None) -> Any:
    """The :class:`~generators.sampling.SamplerSetup` of ``strategy`` on ``generator``,
    its directions read from or written to ``folder/directions.npz`` under their key."""
    from generators.sampling import make_sampler

    saved = Path(folder) / "directions.npz" if folder is not None else None
    return make_sampler(generator, strategy, layer=layer, saved=saved)


def generate_folder(generator: Any, setup: Any, out: str | Path, *, per_class: int,
                    seed: int, shard_size: int, batch_size: int, edits_per_seed: int = 1,
                    precision: str = "fp32", classes: Sequence[int] | None = None,
                    worker: int | None = None, workers: int | None = None,
                    progress: bool = True, settings: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """GenInt's pre-generation (:func:`generators.pregenerate.pregenerate`) of ``setup``'s
    strategy into ``out``: ``per_class`` noise seeds per class, ``edits_per_seed``
    images each (the paper: 1,000 x 5), shards divided over ``workers``, resumable,
    ``labels.csv`` and ``manifest.json`` once the last shard is done."""
    from generators.pregenerate import pregenerate

    return dict(pregenerate(generator, setup.sampler, out, per_class=per_class, seed=seed,
                            shard_size=shard_size, worker=worker, workers=workers,
                            edits_per_seed=edits_per_seed, classes=classes,
                            batch_size=batch_size, precision=precision, progress=progress,
                            settings=dict(settings or {})))


def transfer_folder(real_spec: str, int_root: str | Path, out: str | Path, *, n: int,
                    features: str = "random", batch_size: int = 8, seed: int = 0,
                    device: Any = None, size: int = 256, worker: int | None = None,
                    workers: int | None = None, progress: bool = True,
                    options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``n`` real images of ``real_spec`` in the style of interventional images of
    ``int_root``, labelled with the real image's class, into ``out``
    (:func:`robust_training.transfer_stage.write_transfer`: batched feature-statistics
    matching on the device, sharded over ``workers``, resumable, ``labels.csv``)."""
    from robust_training.transfer_stage import write_transfer

    return dict(write_transfer(real_spec, int_root, out, n=n, features=features,
                               batch_size=batch_size, seed=seed, device=device,
                               worker=worker, workers=workers, size=size,
                               progress=progress, **dict(options or {})))


# -- training ------------------------------------------------------------------------------
def fit_config(**fields: Any) -> Any:
    """A :class:`~robust_training.engine.FitConfig` of ``fields``; a field it lacks is
    refused by name with the fields it takes."""
    import dataclasses

    from robust_training.engine import FitConfig

    known = {f.name for f in dataclasses.fields(FitConfig)}
    bad = sorted(set(fields) - known)
    if bad:
        raise CausalKitError(f"the training engine has no setting(s) {bad}; FitConfig "
                             f"takes {sorted(known)}")
    return FitConfig(**fields)


def train_run(source: Any, config: Any, out: str | Path | None, *, model: nn.Module | None = None,
              device: Any = None, progress: bool = True,
              on_epoch: Callable[[int, nn.Module], dict[str, Any] | None] | None = None,
              steps_per_epoch: int | None = None, stop_after: int | None = None
              ) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`robust_training.engine.fit` on ``source``, resuming from ``out``; with
    ``on_epoch`` (called on rank 0 after every epoch of ``steps_per_epoch`` steps, its
    dict logged), e.g. the evaluate stage's benchmarks."""
    from robust_training.engine import fit

    return fit(source, config, out, device=device, progress=progress, model=model,
               stop_after=stop_after, on_epoch=on_epoch, steps_per_epoch=steps_per_epoch)


# -- evaluation ----------------------------------------------------------------------------
def class_indices(names: Sequence[str]) -> list[int]:
    """The ImageNet output index of each training class folder: a WordNet id
    (``n01440764``) or a class index (``0`` ... ``999``)."""
    from analysis.benchmarks.imagenet_ids import INDEX

    out = []
    for name in names:
        if name in INDEX:
            out.append(INDEX[name])
        elif name.isdigit() and 0 <= int(name) < 1000:
            out.append(int(name))
        else:
            raise CausalKitError(f"training class {name!r} is neither an ImageNet WordNet id "
                                 "nor a class index 0..999, so ImageNet benchmarks cannot "
                                 "score it; name class folders by WordNet id")
    if len(set(out)) != len(out):
        raise CausalKitError("two training classes map to the same ImageNet class; name "
                             "class folders by distinct WordNet ids")
    return out


class ImageNetLogits(nn.Module):
    """A trained classifier behind the benchmarks' contract: ``[0, 1]`` images in,
    1000 ImageNet logits out.

    The images are rescaled to the classifier's ``[-1, 1]`` (and resized to its training
    ``size`` when it was trained on another resolution); its classes' logits go to their
    ImageNet indices and every other output gets a logit far below them, so a model
    trained on a subset of ImageNet's classes is scored on those classes.
    """

    def __init__(self, model: nn.Module, indices: Sequence[int], *, size: int | None = None,
                 head: str = "label") -> None:
        super().__init__()
        self.model, self.size, self.head = model, size, head
        self.register_buffer("indices", torch.as_tensor(list(indices), dtype=torch.long),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is not None and x.shape[-1] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                          align_corners=False, antialias=True)
        out = self.model(x * 2.0 - 1.0)
        logits = (out[self.head] if isinstance(out, Mapping) else out).float()
        if logits.shape[1] == 1000 and bool((self.indices == torch.arange(
                1000, device=self.indices.device)).all()):
            return logits
        full = logits.new_full((logits.shape[0], 1000), -1e4)
        return full.index_copy(1, self.indices.to(logits.device), logits)


def evaluate_benchmarks(model: nn.Module, roots: Mapping[str, str], *,
                        options: Mapping[str, Mapping[str, Any]] | None = None,
                        batch_size: int = 64, device: Any = None, workers: int = 0,
                        progress: bool = True) -> dict[str, Any]:
    """:func:`analysis.benchmarks.registry.run_benchmark` for every ``name -> root``
    (``model``: ``[0, 1]`` images to ImageNet logits), as plain dicts."""
    from analysis.benchmarks.registry import run_benchmark

    results = {}
    for name, root in roots.items():
        res = run_benchmark(name, model, root, batch_size=batch_size, device=device,
                            progress=progress, num_workers=workers,
                            **dict((options or {}).get(name, {})))
        results[name] = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    return results


@torch.no_grad()
# -- the CPU stand-in ----------------------------------------------------------------------
def standin_folders(out: str | Path, *, variant: str = "colored-mnist", rho: float = 0.9,
                    n_train: int = 600, n_val: int = 200, n_ood: int = 200,
                    source: str | None = "embedded", seed: int = 0) -> dict[str, Path]:
    """A biased MNIST variant written as ImageNet-shaped folders of PNGs, for CPU runs of
    the ImageNet path (same arguments, same bytes; written once).

    ``train/`` and ``val/`` (class folders named by the WordNet ids of ImageNet classes
    0-9, as ImageNet's train and val), and two OOD sets of the variant under
    ``do(colour := uniform)``: ``imagenet-v2/imagenetv2-matched-frequency-format-val/``
    (class-index folders, ImageNet-V2's layout) and ``imagenet-c/`` (WordNet-id
    folders, corrupted on the fly by the ImageNet-C evaluator).
    """
    from PIL import Image

    from analysis.benchmarks.imagenet_ids import WNIDS
    from causalkit.datasets import build_split

    out = Path(out)
    folders = {"train": out / "train", "val": out / "val",
               "imagenet-v2": out / "imagenet-v2",
               "imagenet-c": out / "imagenet-c"}
    done = out / "standin.json"
    settings = {"variant": variant, "rho": rho, "n_train": n_train, "n_val": n_val,
                "n_ood": n_ood, "source": source, "seed": seed}
    check_stage(out, settings, "stand-in data")
    if done.is_file():
        return folders
    splits = {"train": build_split(variant, "train", rho=rho, seed=seed, source=source,
                                   n=n_train, cache=False),
              "val": build_split(variant, "test", rho=rho, seed=seed, source=source,
                                 n=n_val, cache=False),
              "ood": build_split(variant, "ood", rho=rho, seed=seed, source=source,
                                 n=n_ood, cache=False)}
    v2 = folders["imagenet-v2"] / "imagenetv2-matched-frequency-format-val"
    places = {"train": lambda y: folders["train"] / WNIDS[y],
              "val": lambda y: folders["val"] / WNIDS[y]}
    for name, split in splits.items():
        for i, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
            array = np.ascontiguousarray(np.asarray(image).transpose(1, 2, 0))
            targets = ([places[name](int(label))] if name in places else
                       [v2 / str(int(label)), folders["imagenet-c"] / WNIDS[int(label)]])
            for folder in targets:
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(folder / f"{i:06d}.png")
    atomic_write_text(out / STAGE_FILE, json.dumps(settings, indent=2, sort_keys=True) + "\n")
    atomic_write_text(done, json.dumps({k: str(v) for k, v in folders.items()}, indent=2)
                      + "\n")
    return folders
