"""Counterfactual data sets from a CGN, stored as uint8 with their three labels.

For each noise draw ``u = (U1, U2, U3)`` (and the texture shifts) we take a base sample
whose texture and background labels equal its shape label, then ``per_noise``
counterfactuals of it: the labels of the mechanisms named in ``randomise`` are redrawn
uniformly, the others keep the base label, and all noise stays fixed
(``scm.counterfactual``). ``randomise=()`` gives plain, label-aligned CGN samples (the
"Original + GAN" baseline); ``("texture", "background")`` is the paper's setting.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_bytes
from generators.cgn.images import to_uint8
from generators.cgn.model import MnistCGN
from generators.cgn.scm import cgn_scm

__all__ = ["CounterfactualSet", "generate_counterfactuals", "MECHANISMS"]

#: mechanism name -> label node of the CGN's SCM
MECHANISMS = {"shape": "Y1", "texture": "Y2", "background": "Y3"}


@dataclass
class CounterfactualSet:
    """Generated images (uint8, N x 3 x 32 x 32) with shape, texture, background labels."""

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

        with np.load(path, allow_pickle=False) as z:
            return cls(z["images"], z["shape"], z["texture"], z["background"], z["group"],
                       json.loads(z["meta"].tobytes().decode()))


def generate_counterfactuals(cgn: MnistCGN, n: int, *, per_noise: int = 1,
                             randomise: tuple[str, ...] | list[str] = ("texture", "background"),
                             seed: int = 0, chunk: int = 1000,
                             progress: bool = True) -> CounterfactualSet:
    """Generate ``n`` counterfactual images.

    Parameters
    ----------
    cgn : MnistCGN
        A trained (or imported) CGN.
    n : int
        Number of images; ``ceil(n / per_noise)`` noise draws, trimmed to ``n``.
    per_noise : int
        Counterfactuals per noise draw ``u`` (the official ``no_cfs``).
    randomise : subset of {"shape", "texture", "background"}
        Mechanisms whose labels are redrawn uniformly for each counterfactual.
    seed : int
        Same seed, same set.
    chunk : int
        Noise draws evaluated at a time (bounds memory).
    progress : bool
        Show a tqdm bar.
    """
    from tqdm import tqdm

    bad = sorted(set(randomise) - set(MECHANISMS))
    if bad:
        raise CausalKitError(f"unknown mechanism(s) {bad} in randomise; choose from "
                             f"{sorted(MECHANISMS)}")
    if n < 1 or per_noise < 1 or chunk < 1:
        raise CausalKitError(f"n, per_noise and chunk must be >= 1, got {n}, {per_noise}, "
                             f"{chunk}")
    scm = cgn_scm(cgn)
    # Abduction is trivial (we draw the noise), so we call the SCM's mechanisms directly
    # and skip re-evaluating the ones whose labels the counterfactual leaves unchanged.
    f_m, f_f, f_b = (scm.mechanisms[v] for v in ("M", "F", "B"))
    k = cgn.n_classes
    n_noise = -(-n // per_noise)
    out: dict[str, list[np.ndarray]] = {key: [] for key in
                                        ("images", "shape", "texture", "background", "group")}
    starts = range(0, n_noise, chunk)
    for c, start in enumerate(tqdm(starts, desc="counterfactuals", disable=not progress)):
        m = min(chunk, n_noise - start)
        rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
        u = {v: scm.noise[v](m, rng) for v in ("U1", "U2", "U3", "F", "B")}
        y1 = scm.noise["Y1"](m, rng)
        mask = f_m({"Y1": y1, "U1": u["U1"]}, None)
        fg = f_f({"Y2": y1, "U2": u["U2"]}, u["F"]) if "texture" not in randomise else None
        bg = f_b({"Y3": y1, "U3": u["U3"]}, u["B"]) if "background" not in randomise else None
        for _ in range(per_noise):
            labels = {name: (rng.integers(0, k, m) if name in randomise else y1)
                      for name in MECHANISMS}
            mk = mask if "shape" not in randomise else f_m(
                {"Y1": labels["shape"], "U1": u["U1"]}, None)
            f = fg if fg is not None else f_f({"Y2": labels["texture"], "U2": u["U2"]}, u["F"])
            b = bg if bg is not None else f_b({"Y3": labels["background"], "U3": u["U3"]},
                                              u["B"])
            x = scm.mechanisms["X"]({"M": mk, "F": f, "B": b}, None)
            out["images"].append(to_uint8(x).numpy())
            for name in MECHANISMS:
                out[name].append(np.asarray(labels[name], np.int64))
            out["group"].append(np.arange(start, start + m))
    arrays = {key: np.concatenate(v) for key, v in out.items()}
    # sort so the counterfactuals of one u sit together, then trim the last group
    order = np.argsort(arrays["group"], kind="stable")[:n]
    arrays = {key: v[order] for key, v in arrays.items()}
    meta = {"n": int(n), "per_noise": int(per_noise), "randomise": sorted(randomise),
            "seed": int(seed)}
    return CounterfactualSet(**arrays, meta=meta)
