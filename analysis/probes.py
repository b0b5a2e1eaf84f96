"""Is my dataset confounded? The nuisance-label correlation probe (GenInt, Figure 3).

If a dataset's nuisances (colour, background, viewpoint) predict its labels, a
classifier can learn the nuisances instead of the object: the dataset is confounded.
The probe measures that in five steps:

1. an :class:`~analysis.sources.InterventionSource` makes images ``x*`` whose nuisance
   manipulation ``z`` is known (a generator under a latent strategy, or a biased MNIST
   SCM under ``do(colour := uniform)``);
2. a small CNN ``g: x -> z`` is trained on them (:func:`train_regressor`); its R² on
   held-out generated images says how well nuisances can be read from images;
3. ``g`` is applied to every dataset under test (:func:`predict_nuisances`);
4. for each number of categories ``N``, over several random subsets of ``N`` classes
   (balanced by subsampling), a logistic regression learns ``y`` from the predicted
   nuisances and is scored on held-out samples (:func:`label_predictability`);
5. accuracy is divided by chance ``1/N``: about 1 means the nuisances say nothing about
   the label, far above 1 means the dataset is confounded.

Because the generator's intervention is the same for every class, ``g`` cannot learn
class evidence from ``x*`` except what leaks through the nuisances: on a dataset whose
nuisances are intervened on (an OOD split, CGN counterfactuals, GenInt samples) the ratio
is about 1.

Examples
--------
>>> from analysis.probes import probe_correlation                 # doctest: +SKIP
>>> rep = probe_correlation("scm:colored-mnist",
...                         ["colored-mnist:train", "colored-mnist:ood"],
...                         categories=[2, 5, 10], seed=0)       # doctest: +SKIP
>>> rep.datasets[0].ratios[10].mean                               # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.imagesets import ImageSet, load_image_set, resize
from analysis.sources import InterventionSource, resolve_source
from causalkit.errors import CausalKitError
from causalkit.io import load_torch
from causalkit.weights import as_state_dict, check_state_dict
from generators.images import to_float

__all__ = ["NuisanceRegressor", "FittedRegressor", "train_regressor", "predict_nuisances",
           "RatioStats", "label_predictability", "DatasetProbe", "ProbeReport",
           "probe_correlation", "r2_score", "chance_tolerance", "truth_tolerance",
           "check_against_truth", "save_regressor", "load_regressor", "MIN_R2"]

#: Below this held-out R², ``g``'s outputs are mostly *not* the manipulated nuisances but
#: arbitrary image features (which may carry shape, i.e. label, information), so the
#: ratios stop measuring nuisance-label correlation; reports then carry a warning.
MIN_R2 = 0.5


class NuisanceRegressor(nn.Module):
    """A small CNN ``x -> z``: three strided convolutions, global average and max pooling.

    Average pooling keeps global colour statistics, max pooling keeps sparse strokes;
    both matter for nuisances such as "the digit is red" on a black background.
    """

    def __init__(self, out_dim: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(8 * w, 4 * w), nn.ReLU(), nn.Linear(4 * w, out_dim))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(n, 8 * width)``."""
        h = self.features(x)
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, np.ndarray]:
    """Coefficient of determination: variance-weighted mean over outputs, and per output.

    Outputs with zero variance get ``nan`` and are left out of the mean.
    """
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    ss_res = ((y_true - y_pred) ** 2).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    ok = ss_tot > 0
    per = np.full(y_true.shape[1], np.nan)
    per[ok] = 1.0 - ss_res[ok] / ss_tot[ok]
    overall = 1.0 - ss_res[ok].sum() / ss_tot[ok].sum() if ok.any() else float("nan")
    return float(overall), per


@dataclass
class FittedRegressor:
    """A trained nuisance regressor with its target scaling and held-out quality."""

    model: NuisanceRegressor
    z_mean: np.ndarray
    z_std: np.ndarray
    input_size: int
    z_names: list[str]
    r2: float
    r2_per_dim: np.ndarray
    n_train: int
    seconds: float
    history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Summary for reports (no weights)."""
        return {"r2": self.r2, "r2_per_dim": [None if math.isnan(v) else float(v)
                                              for v in self.r2_per_dim],
                "z_names": self.z_names, "n_train": self.n_train,
                "input_size": self.input_size, "train_seconds": round(self.seconds, 2),
                "loss_history": [round(v, 5) for v in self.history]}


def _progress(iterable: Iterable, total: int | None, desc: str, enabled: bool) -> Iterable:
    from causalkit.progress import progress

    return progress(iterable, total=total, desc=desc, leave=False, enabled=enabled)


def train_regressor(source: InterventionSource, *, n_train: int = 8_000, n_val: int = 2_000,
                    epochs: int = 3, batch_size: int = 32, lr: float = 3e-3,
                    width: int = 16, input_size: int = 32, seed: int = 0,
                    progress: bool = False) -> FittedRegressor:
    """Generate ``n_train + n_val`` intervened images and fit ``g: x -> z`` on them.

    Targets are standardised; the loss is the mean squared error. R² is measured on the
    ``n_val`` held-out generated images (drawn with a different seed).

    Parameters
    ----------
    source
        Where ``(x*, z)`` come from.
    n_train, n_val
        Training and held-out sizes.
    epochs, batch_size, lr, width
        Optimisation (Adam) and network width.
    input_size
        Images are resized to ``input_size x input_size`` before the CNN.
    seed
        Seeds generation, initialisation and batch order.
    """
    if n_train < batch_size or n_val < 2:
        raise CausalKitError(f"n_train ({n_train}) must be at least the batch size "
                             f"({batch_size}) and n_val ({n_val}) at least 2")
    start = time.perf_counter()
    train = source.sample(n_train, seed=seed)
    val = source.sample(n_val, seed=seed + 1_000_003)
    x_tr = resize(train.images.float(), input_size)
    x_va = resize(val.images.float(), input_size)
    z_mean = train.z.mean(0)
    z_std = train.z.std(0)
    z_std = np.where(z_std > 1e-8, z_std, 1.0).astype(np.float32)
    t_tr = torch.from_numpy(((train.z - z_mean) / z_std).astype(np.float32))
    torch.manual_seed(seed)
    model = NuisanceRegressor(train.z.shape[1], width=width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (n_train // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    history = []
    model.train()
    bar = _progress(range(epochs), epochs, "train nuisance regressor", progress)
    for _ in bar:
        perm = torch.randperm(n_train, generator=gen)
        total = 0.0
        for i in range(n_train // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            loss = nn.functional.mse_loss(model(x_tr[idx]), t_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        history.append(total / (n_train // batch_size))
    model.eval()
    fitted = FittedRegressor(model, z_mean.astype(np.float32), z_std, input_size,
                             list(train.z_names), float("nan"), np.array([]), n_train, 0.0,
                             history)
    pred = predict_nuisances(fitted, x_va)
    fitted.r2, fitted.r2_per_dim = r2_score(val.z, pred)
    fitted.seconds = time.perf_counter() - start
    return fitted


def save_regressor(regressor: FittedRegressor, path: str | Any, *, source: str = "") -> None:
    """Write a fitted regressor atomically (a ``weights_only``-loadable dict of tensors)."""
    from causalkit.io import atomic_write

    width = regressor.model.features[0].out_channels
    obj = {"state_dict": regressor.model.state_dict(),
           "z_mean": torch.from_numpy(regressor.z_mean),
           "z_std": torch.from_numpy(regressor.z_std),
           "r2_per_dim": torch.from_numpy(np.asarray(regressor.r2_per_dim, np.float64)),
           "meta": {"input_size": regressor.input_size, "z_names": regressor.z_names,
                    "r2": regressor.r2, "n_train": regressor.n_train, "width": width,
                    "seconds": regressor.seconds, "history": regressor.history,
                    "source": source}}
    atomic_write(path, lambda fh: torch.save(obj, fh))


def load_regressor(path: str | Any, *, source: str | None = None) -> FittedRegressor:
    """Read a regressor written by :func:`save_regressor`.

    With ``source``, refuse one trained on a different source (its outputs would mean
    other nuisances).
    """
    obj = load_torch(path, what="regressor file")
    fix = "delete it to retrain, or pass another --regressor path"
    try:
        meta = obj["meta"]
        model = NuisanceRegressor(len(meta["z_names"]), width=int(meta["width"]))
        for key in ("z_mean", "z_std", "r2_per_dim"):
            if not isinstance(obj[key], torch.Tensor):
                raise TypeError(key)
        for key in ("input_size", "r2", "n_train", "seconds", "history", "source"):
            meta[key]  # noqa: B018 - every field the reader needs must be there
    except (KeyError, TypeError, ValueError, IndexError):
        raise CausalKitError(f"{path} is not a nuisance regressor saved by causalkit; "
                             f"{fix}") from None
    state = as_state_dict(obj["state_dict"], source=str(path))
    check_state_dict(model, state, source=str(path), what="the nuisance regressor of its "
                     "metadata", hint=f"The file is damaged: {fix}.")
    model.load_state_dict(state, strict=True)
    if source is not None and meta["source"] and meta["source"] != source:
        raise CausalKitError(f"{path} was trained on {meta['source']!r}, not {source!r}; "
                             "use another --regressor path or delete it")
    model.eval()
    return FittedRegressor(model, obj["z_mean"].numpy(), obj["z_std"].numpy(),
                           int(meta["input_size"]), list(meta["z_names"]), float(meta["r2"]),
                           obj["r2_per_dim"].numpy(), int(meta["n_train"]),
                           float(meta["seconds"]), list(meta["history"]))


@torch.no_grad()
def predict_nuisances(regressor: FittedRegressor, images: torch.Tensor, *,
                      batch_size: int = 512, progress: bool = False,
                      desc: str = "predict nuisances") -> np.ndarray:
    """``g(x)`` for uint8 or float images: float32 ``(N, d)`` in the units of ``z``."""
    regressor.model.eval()
    out = []
    n = len(images)
    batches = range(0, n, batch_size)
    for s in _progress(batches, len(batches), desc, progress):
        x = resize(to_float(images[s:s + batch_size], keep_float=True), regressor.input_size)
        out.append(regressor.model(x).numpy())
    if not out:
        return np.zeros((0, len(regressor.z_mean)), np.float32)
    return (np.concatenate(out) * regressor.z_std + regressor.z_mean).astype(np.float32)


@dataclass
class RatioStats:
    """Accuracy ÷ chance over random class subsets."""

    n_categories: int
    ratios: list[float]
    accuracies: list[float]
    n_test: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.ratios))

    @property
    def std(self) -> float:
        return float(np.std(self.ratios, ddof=1)) if len(self.ratios) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n_categories": self.n_categories, "mean": self.mean, "std": self.std,
                "ratios": self.ratios, "accuracies": self.accuracies,
                "n_test_per_subset": self.n_test}


def chance_tolerance(n_categories: int, n_test: int, z: float = 3.0) -> float:
    """How far a ratio may sit from 1 by chance alone when nuisances carry no label signal.

    With the classes balanced, a classifier that has learnt nothing is right with
    probability ``1/N`` on each of ``n_test`` held-out samples, so its accuracy has
    standard deviation ``sqrt((1/N)(1 - 1/N) / n_test)`` and the ratio (accuracy times
    ``N``) has ``sqrt((N - 1) / n_test)``. The tolerance is ``z`` of those (3 by default,
    a two-sided 99.7 % band).
    """
    return z * math.sqrt((n_categories - 1) / max(n_test, 1))


def label_predictability(features: np.ndarray, labels: np.ndarray,
                         categories: Sequence[int] = (2, 5, 10), *, n_subsets: int = 10,
                         test_fraction: float = 0.3, max_per_class: int | None = 2000,
                         seed: int = 0) -> dict[int, RatioStats]:
    """Held-out accuracy ÷ chance of a logistic regression ``features -> label``.

    For each ``N`` in ``categories`` and each of ``n_subsets`` random subsets of ``N``
    classes: every chosen class is subsampled to the same count (so chance is exactly
    ``1/N``; at most ``max_per_class``), split ``1 - test_fraction : test_fraction`` per
    class, standardised, and fitted with L2-regularised multinomial logistic regression.

    Returns
    -------
    dict
        ``N -> RatioStats``; an ``N`` larger than the number of classes present is an
        error.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    out: dict[int, RatioStats] = {}
    for n_cat in categories:
        if n_cat < 2 or n_cat > len(classes):
            raise CausalKitError(f"cannot probe {n_cat} categories: the data has "
                                 f"{len(classes)} classes; choose N in [2, {len(classes)}]")
        rng = np.random.default_rng([seed, n_cat])
        ratios, accs, n_test = [], [], 0
        for _ in range(n_subsets):
            chosen = rng.choice(classes, size=n_cat, replace=False)
            per = int(min(counts[np.isin(classes, chosen)]))
            if max_per_class:
                per = min(per, max_per_class)
            n_te = max(1, int(round(per * test_fraction)))
            if per - n_te < 1:
                raise CausalKitError(f"class subset {chosen.tolist()} has only {per} samples "
                                     "per class; need at least 2")
            tr_idx, te_idx = [], []
            for c in chosen:
                idx = rng.permutation(np.flatnonzero(labels == c))[:per]
                te_idx.append(idx[:n_te])
                tr_idx.append(idx[n_te:])
            tr, te = np.concatenate(tr_idx), np.concatenate(te_idx)
            scaler = StandardScaler().fit(features[tr])
            clf = LogisticRegression(max_iter=500, C=1.0)
            clf.fit(scaler.transform(features[tr]), labels[tr])
            acc = float((clf.predict(scaler.transform(features[te])) == labels[te]).mean())
            accs.append(acc)
            ratios.append(acc * n_cat)
            n_test = len(te)
        out[n_cat] = RatioStats(n_cat, ratios, accs, n_test)
    return out


def truth_tolerance(true: RatioStats, r2: float, z: float = 3.0) -> tuple[float, float]:
    """The band ``[lower, upper]`` a probe ratio should fall in, given the true-nuisance ratio.

    * **upper**: ``g(x)`` is a function of the image, and the rendered nuisance is all
      the image says about the nuisance, so the probe cannot beat the true nuisance
      except by sampling noise: ``true + z * se``.
    * **lower**: if ``g(x) = z_true + e`` with ``e`` carrying a fraction ``1 - R²`` of
      the nuisance variance (``R²`` of ``g`` on the dataset's *stored* nuisances), the
      between-class spread is kept and the total variance grows by ``1 / R²``; we take
      the excess over chance to shrink at most in that proportion (a heuristic, not a
      theorem): ``1 + R² * (true - 1) - z * se``.

    ``se`` is the binomial standard error of one subset's ratio at the true accuracy,
    ``N * sqrt(p (1 - p) / n_test)``, floored at one test sample's worth of ratio
    (``N / n_test``) so that perfect accuracy still leaves room for one mistake.
    """
    n_cat, n = true.n_categories, max(true.n_test, 1)
    p = min(max(float(np.mean(true.accuracies)), 0.0), 1.0)
    se = max(n_cat * math.sqrt(p * (1 - p) / n), n_cat / n)
    r2 = min(max(r2, 0.0), 1.0)
    return 1.0 + r2 * (true.mean - 1.0) - z * se, true.mean + z * se


def check_against_truth(probe: DatasetProbe, *, z: float = 3.0) -> dict[int, dict[str, Any]]:
    """Compare a dataset's probe ratios with its true-nuisance ratios (see
    :func:`truth_tolerance`); ``ok`` says whether each ``N`` lies in its band."""
    if probe.true_ratios is None or probe.nuisance_r2 is None:
        raise CausalKitError(f"{probe.name} has no stored nuisances comparable with the "
                             "regressor's outputs; the check needs a biased MNIST split and "
                             "the scm:<variant> source")
    out = {}
    for n_cat, stats in probe.ratios.items():
        lo, hi = truth_tolerance(probe.true_ratios[n_cat], probe.nuisance_r2, z)
        out[n_cat] = {"probe": stats.mean, "true": probe.true_ratios[n_cat].mean,
                      "lower": lo, "upper": hi, "ok": lo <= stats.mean <= hi}
    return out


@dataclass
class DatasetProbe:
    """The probe's result on one dataset (and, when known, on its true nuisances)."""

    name: str
    n: int
    ratios: dict[int, RatioStats]
    true_ratios: dict[int, RatioStats] | None = None
    nuisance_r2: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n,
                "ratios": {str(k): v.to_dict() for k, v in self.ratios.items()},
                "true_nuisance_ratios": None if self.true_ratios is None else
                {str(k): v.to_dict() for k, v in self.true_ratios.items()},
                "regressor_r2_on_true_nuisances": self.nuisance_r2}


@dataclass
class ProbeReport:
    """Everything :func:`probe_correlation` measured."""

    source: str
    regressor: FittedRegressor
    datasets: list[DatasetProbe]
    categories: list[int]
    seed: int
    seconds: float

    @property
    def warning(self) -> str | None:
        """A caution when the regressor cannot read the nuisances (R² < :data:`MIN_R2`)."""
        if self.regressor.r2 >= MIN_R2:
            return None
        return (f"the nuisance regressor's held-out R² is {self.regressor.r2:.3f} < {MIN_R2}: "
                "its outputs are not the manipulated nuisances but generic image features, "
                "so ratios above 1 may come from object shape; use directions / a strategy "
                "whose edits are visible (larger s, fewer k) or more training images")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "regressor": self.regressor.to_dict(),
                "categories": self.categories, "seed": self.seed,
                "seconds": round(self.seconds, 2), "warning": self.warning,
                "datasets": [d.to_dict() for d in self.datasets]}


def _true_r2(ds: ImageSet, pred: np.ndarray, z_names: list[str]) -> float | None:
    """R² of ``g(x)`` against the dataset's stored nuisances, when they are comparable."""
    if ds.true_z is None or ds.true_z.shape[1] != pred.shape[1]:
        return None
    return r2_score(ds.true_z, pred)[0]


def probe_correlation(source: Any, datasets: Sequence[Any], *,
                      categories: Sequence[int] = (2, 5, 10), n_subsets: int = 10,
                      strategy: Any = None, directions: Any = None,
                      n_train: int = 8_000, epochs: int = 3, max_samples: int | None = 20_000,
                      dataset_options: dict[str, Any] | None = None,
                      regressor: FittedRegressor | str | Any = None, seed: int = 0,
                      progress: bool = False,
                      log: Callable[[str], None] | None = None) -> ProbeReport:
    """Run the whole probe: train ``g``, predict nuisances, score label predictability.

    Parameters
    ----------
    source
        An :class:`~analysis.sources.InterventionSource`, a generator (object or spec such
        as ``"tiny-biggan"`` / ``"small:DIR"``) with ``strategy``, or ``"scm:<variant>"``.
    datasets
        Datasets under test: names, folders, torch Datasets or
        :class:`~analysis.imagesets.ImageSet` (see :func:`analysis.imagesets.load_image_set`).
    categories
        The numbers of classes ``N``.
    n_subsets
        Random class subsets per ``N``.
    strategy, directions
        For generator sources (see :func:`analysis.sources.resolve_source`).
    n_train, epochs
        Size of the generated training set and passes over it.
    max_samples
        Each dataset is subsampled (seeded) to at most this many images.
    dataset_options
        Passed to :func:`~analysis.imagesets.load_image_set` (``rho``, ``source``...).
    regressor
        A fitted regressor to reuse, or a file path: loaded when it exists (and was
        trained on the same source), otherwise trained and saved there -- so a second
        run, e.g. on more datasets, skips training.
    seed
        Seeds everything.
    """
    start = time.perf_counter()
    say = log or (lambda s: None)
    # Resolve everything before the (slow) training, so bad input fails fast.
    src = resolve_source(source, strategy, directions=directions,
                         source=(dataset_options or {}).get("source"))
    loaded = []
    for spec in datasets:
        opts = {**(dataset_options or {}), "seed": seed}
        if max_samples:
            opts["n"] = max_samples
        ds = load_image_set(spec, options=opts)
        n_classes = len(np.unique(ds.labels.numpy()))
        if max(categories) > n_classes:
            raise CausalKitError(f"{ds.name} has {n_classes} classes, fewer than N = "
                                 f"{max(categories)}; lower --categories")
        loaded.append(ds)
    save_to = None
    if regressor is not None and not isinstance(regressor, FittedRegressor):
        from pathlib import Path

        save_to = Path(regressor)
        regressor = None
        if save_to.is_file():
            regressor = load_regressor(save_to, source=src.name)
            say(f"loaded the nuisance regressor from {save_to} (R² {regressor.r2:.3f})")
    if regressor is None:
        say(f"training the nuisance regressor on {n_train} images from {src.name} ...")
        regressor = train_regressor(src, n_train=n_train, epochs=epochs, seed=seed,
                                    progress=progress)
        say(f"regressor R² on held-out generated images: {regressor.r2:.3f}")
        if save_to is not None:
            save_regressor(regressor, save_to, source=src.name)
            say(f"saved the regressor to {save_to}")
    results = []
    for i, ds in enumerate(loaded):
        pred = predict_nuisances(regressor, ds.images, progress=progress,
                                 desc=f"g(x) on {ds.name}")
        ratios = label_predictability(pred, ds.labels.numpy(), categories,
                                      n_subsets=n_subsets, seed=seed + i)
        true = None
        if ds.true_z is not None:
            true = label_predictability(ds.true_z, ds.labels.numpy(), categories,
                                        n_subsets=n_subsets, seed=seed + i)
        results.append(DatasetProbe(ds.name, len(ds), ratios, true,
                                    _true_r2(ds, pred, regressor.z_names)))
        say(f"{ds.name}: " + ", ".join(f"N={k}: {v.mean:.2f}" for k, v in ratios.items()))
    return ProbeReport(src.name, regressor, results, list(categories), seed,
                       time.perf_counter() - start)
