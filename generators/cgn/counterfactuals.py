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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.io import atomic_write_bytes
from generators.cgn.colour import colour_masks
from generators.cgn.encoder import MnistCGNEncoder
from generators.cgn.images import to_float, to_uint8
from generators.cgn.model import MnistCGN
from generators.cgn.real_backgrounds import RealBackgrounds
from generators.cgn.scm import cgn_scm

__all__ = ["CounterfactualSet", "generate_counterfactuals", "abduct_counterfactuals",
           "MECHANISMS", "BACKGROUNDS", "MASKS"]

#: mechanism name -> label node of the CGN's SCM
MECHANISMS = {"shape": "Y1", "texture": "Y2", "background": "Y3"}
#: where abducted counterfactuals take their backgrounds from (abduct_counterfactuals)
BACKGROUNDS = ("generated", "real")
#: where abducted counterfactuals take their masks from (abduct_counterfactuals)
MASKS = ("cgn", "colour")


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

    if n < 1 or per_noise < 1 or chunk < 1:
        raise CausalKitError(f"n, per_noise and chunk must be >= 1, got {n}, {per_noise}, "
                             f"{chunk}")
    scm = cgn_scm(cgn)
    n_noise = -(-n // per_noise)

    def draws() -> Iterator[tuple[int, dict[str, Any], np.ndarray, np.random.Generator]]:
        for c, start in enumerate(tqdm(range(0, n_noise, chunk), desc="counterfactuals",
                                       disable=not progress)):
            m = min(chunk, n_noise - start)
            rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
            u = {v: scm.noise[v](m, rng) for v in ("U1", "U2", "U3", "F", "B")}
            yield start, u, scm.noise["Y1"](m, rng), rng

    meta = {"n": int(n), "per_noise": int(per_noise), "randomise": sorted(randomise),
            "seed": int(seed), "noise": "prior"}
    return _assemble(cgn, scm, draws(), per_noise, randomise, n, meta)


def abduct_counterfactuals(cgn: MnistCGN, encoder: MnistCGNEncoder, images: Any,
                           labels: Any, *, per_image: int = 1,
                           randomise: tuple[str, ...] | list[str] = ("texture", "background"),
                           seed: int = 0, chunk: int = 1000, backgrounds: str = "generated",
                           masks: str = "cgn", progress: bool = True) -> CounterfactualSet:
    """Counterfactuals of *observed* images: Pearl's abduction, action, prediction.

    Abduction infers each image's shape noise as the encoder's posterior mean
    ``E[u | x, y]`` (texture and background noise, which the encoder does not infer,
    come from the prior, seeded); the action redraws the labels of the mechanisms in
    ``randomise``; the prediction runs the CGN. With the shape label kept, each
    counterfactual is the real digit's own shape (as the CGN rebuilds it) on a new
    texture and background, so the shapes a classifier learns from follow the real
    digit distribution rather than the CGN's prior samples.

    Parameters
    ----------
    cgn, encoder
        A CGN trained with ``lambda_recon > 0`` and its encoder (``encoder.pt``).
    images, labels
        Real images, uint8 ``(N, 3, 32, 32)``, and their labels ``(N,)``.
    per_image : int
        Counterfactuals per real image.
    randomise, seed, chunk, progress
        As in :func:`generate_counterfactuals`; the texture shifts are drawn from ``seed``.
    backgrounds : str
        ``"generated"``: the CGN's background mechanism. ``"real"``: the images
        themselves with their digits cut out by their abducted masks
        (:class:`~generators.cgn.real_backgrounds.RealBackgrounds`), drawn by the
        background label; the shapes and textures stay the CGN's. It takes an image's
        label for its background's class, as in the variants' training data (rho = 1).
    masks : str
        ``"cgn"``: the shape mechanism at the abducted noise, ``f_shape(y, E[u | x, y])``.
        ``"colour"``: the mask node abducted itself: binary masks from each pixel's
        colour posterior under the class's foreground and background colour densities,
        which the CGN's masks of all ``images`` weigh, near the CGN's digit
        (:func:`~generators.cgn.colour.colour_masks`). The shape label must then stay
        (``"shape"`` not in ``randomise``): the abducted mask is the mask *of* the
        observed label. Real backgrounds are cut out by the same masks.
    """
    from tqdm import tqdm

    x_all = torch.as_tensor(np.asarray(images))
    y_all = np.asarray(labels, dtype=np.int64)
    if x_all.dtype != torch.uint8 or x_all.ndim != 4 or len(x_all) != len(y_all):
        raise CausalKitError(f"need uint8 images (N, 3, 32, 32) and N labels, got "
                             f"{x_all.dtype} {tuple(x_all.shape)} and {y_all.shape}")
    if per_image < 1 or chunk < 1:
        raise CausalKitError(f"per_image and chunk must be >= 1, got {per_image}, {chunk}")
    if backgrounds not in BACKGROUNDS:
        raise CausalKitError(f"unknown backgrounds {backgrounds!r}; choose one of "
                             f"{list(BACKGROUNDS)}")
    if masks not in MASKS:
        raise CausalKitError(f"unknown masks {masks!r}; choose one of {list(MASKS)}")
    if masks == "colour" and "shape" in randomise:
        raise CausalKitError("colour-abducted masks belong to the observed shape label; "
                             "drop 'shape' from randomise or use masks='cgn'")
    scm = cgn_scm(cgn)
    encoder.eval()

    def abduct(sl: slice, y: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            mu, _ = encoder(to_float(x_all[sl]).to(cgn.device),
                            torch.as_tensor(y, device=cgn.device))
        return mu

    real_bg, abducted, mask_all = None, {}, None
    if backgrounds == "real" or masks == "colour":  # every image's mask first
        parts = []
        for start in range(0, len(y_all), chunk):
            sl = slice(start, start + chunk)
            abducted[start] = mu = abduct(sl, y_all[sl])
            parts.append(scm.mechanisms["M"]({"Y1": y_all[sl], "U1": mu[:, 0].cpu().numpy()},
                                             None).float().cpu())
        mask_all = torch.cat(parts)
        if masks == "colour":
            mask_all = colour_masks(x_all, torch.as_tensor(y_all), mask_all, cgn.n_classes)
        if backgrounds == "real":  # any image's background may be drawn
            real_bg = RealBackgrounds(x_all, y_all, mask_all, cgn.n_classes)

    def draws() -> Iterator[tuple[int, dict[str, Any], np.ndarray, np.random.Generator]]:
        for c, start in enumerate(tqdm(range(0, len(y_all), chunk), desc="abduction",
                                       disable=not progress)):
            sl = slice(start, start + chunk)
            rng = np.random.default_rng(np.random.SeedSequence([seed, c]))
            y = y_all[sl]
            mu = abducted.pop(start) if start in abducted else abduct(sl, y)
            # abducted noise where the encoder infers it, the prior for the rest
            u = {v: scm.noise[v](len(y), rng) for v in ("U1", "U2", "U3", "F", "B")}
            u.update({f"U{i + 1}": mu[:, i].cpu().numpy() for i in range(mu.shape[1])})
            if masks == "colour":  # the mask node's own abducted value
                u["M"] = mask_all[sl].to(cgn.device)
            yield start, u, y, rng

    n = len(y_all) * per_image
    meta = {"n": int(n), "per_noise": int(per_image), "randomise": sorted(randomise),
            "seed": int(seed), "noise": "abducted", "backgrounds": backgrounds,
            "masks": masks}
    return _assemble(cgn, scm, draws(), per_image, randomise, n, meta, real_bg)


def _assemble(cgn: MnistCGN, scm: Any, draws: Iterable, per_noise: int,
              randomise: tuple[str, ...] | list[str], n: int,
              meta: dict[str, Any],
              real_bg: RealBackgrounds | None = None) -> CounterfactualSet:
    # We call the SCM's mechanisms directly (the noise is given) and skip re-evaluating
    # the ones whose labels the counterfactual leaves unchanged.
    bad = sorted(set(randomise) - set(MECHANISMS))
    if bad:
        raise CausalKitError(f"unknown mechanism(s) {bad} in randomise; choose from "
                             f"{sorted(MECHANISMS)}")
    f_m, f_f, f_b = (scm.mechanisms[v] for v in ("M", "F", "B"))
    k = cgn.n_classes
    out: dict[str, list[np.ndarray]] = {key: [] for key in
                                        ("images", "shape", "texture", "background", "group")}
    for start, u, y1, rng in draws:
        m = len(y1)
        # the real backgrounds' picks come from a stream of their own, so the labels and
        # the noise stay those of the same set with generated backgrounds
        bg_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
        # an abducted mask value (u["M"]) stands in for the shape mechanism
        mask = u["M"] if "M" in u else f_m({"Y1": y1, "U1": u["U1"]}, None)
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
            if real_bg is not None:  # the CGN's background fills what no real one shows
                b = real_bg.draw(labels["background"], b, bg_rng)
            x = scm.mechanisms["X"]({"M": mk, "F": f, "B": b}, None)
            out["images"].append(to_uint8(x).numpy())
            for name in MECHANISMS:
                out[name].append(np.asarray(labels[name], np.int64))
            out["group"].append(np.arange(start, start + m))
    arrays = {key: np.concatenate(v) for key, v in out.items()}
    # sort so the counterfactuals of one u sit together, then trim the last group
    order = np.argsort(arrays["group"], kind="stable")[:n]
    arrays = {key: v[order] for key, v in arrays.items()}
    return CounterfactualSet(**arrays, meta=meta)
