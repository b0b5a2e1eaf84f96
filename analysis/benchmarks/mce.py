"""Corruption errors and the mean Corruption Error (mCE) of ImageNet-C.

Hendrycks & Dietterich (ICLR 2019) normalise a classifier's top-1 errors by AlexNet's,
so that easy and hard corruptions weigh alike. For a corruption ``c`` with errors
``E_{s,c}`` at severities ``s = 1..5``:

* corruption error ``CE_c = Σ_s E_{s,c} / Σ_s E^{AlexNet}_{s,c}``;
* relative corruption error
  ``rCE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^{AlexNet}_{s,c} − E^{AlexNet}_clean)``,
  the degradation under the corruption rather than the error itself;
* ``mCE`` and ``relative mCE`` are the means of ``CE_c`` and ``rCE_c`` over the 15
  benchmark corruptions (``corruptions.BENCHMARK``). AlexNet scores 1 (100 %) on both.

The baseline numbers are AlexNet's published ImageNet-C errors: the per-severity top-1
errors of torchvision's ``alexnet`` weights on the released ImageNet-C (as distributed
with timm's ``imagenetc_alexnet_error_rates_list``); their means per corruption are the
``ALEXNET_ERR`` of the reference repository (``hendrycks/robustness``) and of AugMix, to
all six printed decimals, which ``tests/test_mce.py`` checks. The clean error is the
top-1 error of the same weights on ImageNet's validation set, ``1 − 0.56522`` as
torchvision documents them (the paper's Table 1 rounds it to 43.5 %). AlexNet's errors
on the 4 extra corruptions are not published; ``corruption_errors`` reports the raw
errors of any extra corruption it is given and leaves it out of both means.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from causalkit.errors import CausalKitError

__all__ = ["ALEXNET_CLEAN_ERROR", "ALEXNET_ERRORS", "MCE", "corruption_errors"]

ALEXNET_ERRORS: dict[str, tuple[float, float, float, float, float]] = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    "frost": (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    "fog": (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    "brightness": (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    "contrast": (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
"""AlexNet's top-1 error on each benchmark corruption at severities 1..5."""

ALEXNET_CLEAN_ERROR = 1.0 - 0.56522
"""AlexNet's top-1 error on clean ImageNet validation images (torchvision weights)."""


@dataclass(frozen=True)
class MCE:
    """Corruption errors of one classifier, normalised by AlexNet's."""

    errors: dict[str, tuple[float, ...]]
    clean_error: float
    ce: dict[str, float]
    relative_ce: dict[str, float]
    unnormalised: tuple[str, ...] = field(default=())

    @property
    def mce(self) -> float:
        """Mean CE over the benchmark corruptions given (1.0 = AlexNet)."""
        return sum(self.ce.values()) / len(self.ce)

    @property
    def relative_mce(self) -> float:
        """Mean relative CE over the benchmark corruptions given (1.0 = AlexNet)."""
        return sum(self.relative_ce.values()) / len(self.relative_ce)

    @property
    def mean_error(self) -> dict[str, float]:
        """Mean top-1 error over severities, per corruption (extra ones included)."""
        return {k: sum(v) / len(v) for k, v in self.errors.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean_error": self.clean_error,
            "mce": self.mce,
            "relative_mce": self.relative_mce,
            "ce": dict(self.ce),
            "relative_ce": dict(self.relative_ce),
            "errors": {k: list(v) for k, v in self.errors.items()},
            "mean_error": self.mean_error,
            "unnormalised": list(self.unnormalised),
            "alexnet_clean_error": ALEXNET_CLEAN_ERROR,
        }


def corruption_errors(errors: Mapping[str, Sequence[float]], clean_error: float, *,
                      require_all: bool = True) -> MCE:
    """CE, relative CE, mCE and relative mCE from top-1 errors per severity.

    ``errors`` maps corruption names (``corruptions.BENCHMARK``, optionally ``EXTRA``)
    to five errors in [0, 1], severities 1..5; ``clean_error`` is the error on the clean
    images. With ``require_all`` (the default) all 15 benchmark corruptions must be
    present, as the paper's mCE is defined over them; ``require_all=False`` averages over
    those given (a partial mCE, not comparable with published numbers).
    """
    from analysis.benchmarks.corruptions import BENCHMARK, EXTRA

    _check_rate("clean_error", clean_error)
    known = set(BENCHMARK) | set(EXTRA)
    unknown = sorted(set(errors) - known)
    if unknown:
        raise CausalKitError(
            f"unknown corruption(s) {', '.join(unknown)}; valid names: "
            f"{', '.join(BENCHMARK + EXTRA)}")
    missing = [c for c in BENCHMARK if c not in errors]
    if require_all and missing:
        raise CausalKitError(
            f"mCE needs all 15 benchmark corruptions; missing {', '.join(missing)} "
            "(pass require_all=False for a partial mCE)")
    if len(missing) == len(BENCHMARK):
        raise CausalKitError("no benchmark corruption given; mCE needs at least one of "
                             f"{', '.join(BENCHMARK)}")
    clean: dict[str, tuple[float, ...]] = {}
    for name, errs in errors.items():
        errs = tuple(float(e) for e in errs)
        if len(errs) != 5:
            raise CausalKitError(
                f"{name}: expected 5 errors (severities 1..5), got {len(errs)}")
        for e in errs:
            _check_rate(f"{name} error", e)
        clean[name] = errs
    ce: dict[str, float] = {}
    rel: dict[str, float] = {}
    for name in BENCHMARK:
        if name not in clean:
            continue
        base = ALEXNET_ERRORS[name]
        ce[name] = sum(clean[name]) / sum(base)
        rel[name] = (sum(e - clean_error for e in clean[name])
                     / sum(b - ALEXNET_CLEAN_ERROR for b in base))
    ordered = {k: clean[k] for k in BENCHMARK + EXTRA if k in clean}
    return MCE(errors=ordered, clean_error=float(clean_error), ce=ce, relative_ce=rel,
               unnormalised=tuple(k for k in EXTRA if k in clean))


def _check_rate(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0.0 <= float(value) <= 1.0:
        raise CausalKitError(f"{what} must be a top-1 error rate in [0, 1], got {value!r} "
                             "(give fractions, not percentages)")
