"""Counterfactuals of real MNIST-variant images, and the options behind them.

Pearl's three steps for an observed image ``x`` of class ``y``:

1. *Abduction* (:func:`abduct`): the encoder's posterior mean ``E[u | x, y]`` stands
   in for the noise it infers (the shape noise ``U1`` by default); the texture and
   background noise, which it does not infer, come from the prior.
2. *Action*: interventions on the CGN's nodes. The labels of the mechanisms named in
   ``randomise`` are redrawn (``Draw`` on ``Y2``, ``Y3``); the user-facing options
   ``backgrounds=`` and ``masks=`` become interventions too, in
   :func:`abduction_interventions`:

   ``masks="colour"``
       ``{"M": Do(masks, per_sample=True)}``: the mask node set to the masks abducted
       from each pixel's colour (:func:`~generators.cgn.mnist.colour.colour_masks`);
   ``backgrounds="real"``
       ``{"B": Do(PerBatch(...))}``: the training images with their digits cut out,
       drawn by the background label
       (:meth:`~generators.cgn.mnist.real_backgrounds.RealBackgrounds.intervention`).
3. *Prediction*: the CGN, with the noise held fixed
   (:func:`~generators.cgn.counterfactuals.abducted_counterfactuals`).

:func:`abduct_counterfactuals` runs all three, as the pipeline and the CLI call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from causalkit.errors import CausalKitError
from causalkit.interventions import Do
from generators.cgn.counterfactuals import (
    Abduction,
    CounterfactualSet,
    abducted_counterfactuals,
    redraw,
)
from generators.cgn.mnist.colour import colour_masks
from generators.cgn.mnist.encoder import MnistCGNEncoder
from generators.cgn.mnist.model import NODES, MnistCGN
from generators.cgn.mnist.real_backgrounds import RealBackgrounds
from generators.cgn.nuisances import MechanismNuisances
from generators.cgn.scm import cgn_scm
from generators.images import to_float

__all__ = ["abduct", "abducted_masks", "abduction_interventions", "abduct_counterfactuals",
           "check_options", "BACKGROUNDS", "MASKS"]

#: where abducted counterfactuals take their backgrounds from (``backgrounds=``)
BACKGROUNDS = ("generated", "real")
#: where abducted counterfactuals take their masks from (``masks=``)
MASKS = ("cgn", "colour")


def _images(images: Any, labels: Any) -> tuple[torch.Tensor, np.ndarray]:
    x_all = torch.as_tensor(np.asarray(images))
    y_all = np.asarray(labels, dtype=np.int64)
    if x_all.dtype != torch.uint8 or x_all.ndim != 4 or len(x_all) != len(y_all):
        raise CausalKitError(f"need uint8 images (N, 3, 32, 32) and N labels, got "
                             f"{x_all.dtype} {tuple(x_all.shape)} and {y_all.shape}")
    return x_all, y_all


def check_options(*, backgrounds: str, masks: str,
                  randomise: tuple[str, ...] | list[str] = ("texture", "background")) -> None:
    """Raise :class:`~causalkit.errors.CausalKitError` unless the options of
    :func:`abduction_interventions` are known and compatible."""
    if backgrounds not in BACKGROUNDS:
        raise CausalKitError(f"unknown backgrounds {backgrounds!r}; choose one of "
                             f"{list(BACKGROUNDS)}")
    if masks not in MASKS:
        raise CausalKitError(f"unknown masks {masks!r}; choose one of {list(MASKS)}")
    if masks == "colour" and "shape" in randomise:
        raise CausalKitError("colour-abducted masks belong to the observed shape label; "
                             "drop 'shape' from randomise or use masks='cgn'")


def abduct(cgn: MnistCGN, encoder: MnistCGNEncoder, images: Any, labels: Any, *,
           chunk: int = 1000) -> Abduction:
    """The encoder's posterior means of the noise of real images.

    Parameters
    ----------
    cgn, encoder
        A CGN trained with ``lambda_recon > 0`` and its encoder (``encoder.pt``); the
        encoder runs in eval mode on the CGN's device.
    images, labels
        Real images, uint8 ``(N, 3, 32, 32)``, and their labels ``(N,)``.
    chunk : int
        Images encoded at a time.

    Returns
    -------
    Abduction
        The labels, and ``E[u | x, y]`` for ``U1`` (and ``U2``, ``U3`` for an encoder with
        ``n_noise`` 2 or 3), float32 ``(N, latent_dim)``.
    """
    x_all, y_all = _images(images, labels)
    if chunk < 1:
        raise CausalKitError(f"chunk must be >= 1, got {chunk}")
    encoder.eval()
    nodes = [u for _, _, u in NODES.values()]
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(y_all), chunk):
        sl = slice(start, start + chunk)
        with torch.no_grad():
            mu, _ = encoder(to_float(x_all[sl]).to(cgn.device),
                            torch.as_tensor(y_all[sl], device=cgn.device))
        for i in range(mu.shape[1]):
            parts.setdefault(nodes[i], []).append(mu[:, i].cpu().numpy())
    noise = {u: np.concatenate(p) for u, p in parts.items()}
    return Abduction(y_all, noise)


def abducted_masks(cgn: MnistCGN, abduction: Abduction, *, chunk: int = 1000) -> torch.Tensor:
    """The shape mechanism at the abducted noise, ``f_shape(y, E[u | x, y])``: float
    ``(N, 1, H, W)`` on the CPU, evaluated ``chunk`` images at a time."""
    shape = cgn_scm(cgn).mechanisms["M"]
    y, u = abduction.labels, abduction.noise["U1"]
    parts = [shape({"Y1": y[s:s + chunk], "U1": u[s:s + chunk]}, None).float().cpu()
             for s in range(0, len(y), chunk)]
    return torch.cat(parts)


def abduction_interventions(cgn: MnistCGN, images: Any, abduction: Abduction, *,
                            backgrounds: str = "generated", masks: str = "cgn",
                            randomise: tuple[str, ...] | list[str] = ("texture", "background"),
                            chunk: int = 1000) -> dict[str, Do]:
    """Translate the options ``backgrounds=`` and ``masks=`` into interventions.

    Parameters
    ----------
    cgn : MnistCGN
        The generator.
    images : uint8 array (N, 3, 32, 32)
        The real images ``abduction`` was inferred from.
    abduction : Abduction
        Their labels and abducted noise (:func:`abduct`).
    backgrounds : {"generated", "real"}
        ``"generated"``: the CGN's background mechanism (no intervention). ``"real"``:
        the images themselves with their digits cut out by their abducted masks, drawn
        by the background label; an image's label is taken for its background's class,
        as in the variants' training data (rho = 1).
    masks : {"cgn", "colour"}
        ``"cgn"``: the shape mechanism at the abducted noise (no intervention).
        ``"colour"``: the mask node abducted itself, binary masks from each pixel's
        colour posterior under the class's foreground and background colour densities,
        which the CGN's masks of all ``images`` weigh, near the CGN's digit. The shape
        label must then stay (``"shape"`` not in ``randomise``): the abducted mask is the
        mask *of* the observed label. Real backgrounds are cut out by the same masks.
    randomise : mechanism names
        The mechanisms the counterfactuals will redraw (checked against ``masks``).
    chunk : int
        Images whose masks are computed at a time.

    Returns
    -------
    dict
        ``{}``, ``{"M": Do(masks, per_sample=True)}`` and/or ``{"B": Do(PerBatch(...))}``.
    """
    check_options(backgrounds=backgrounds, masks=masks, randomise=randomise)
    if backgrounds == "generated" and masks == "cgn":
        return {}
    x_all, y_all = _images(images, abduction.labels)
    mask_all = abducted_masks(cgn, abduction, chunk=chunk)  # every image's mask first
    do: dict[str, Do] = {}
    if masks == "colour":  # the mask node's own abducted value
        mask_all = colour_masks(x_all, torch.as_tensor(y_all), mask_all, cgn.n_classes)
        do["M"] = Do(mask_all, per_sample=True)
    if backgrounds == "real":  # any image's background may be drawn
        do["B"] = RealBackgrounds(x_all, y_all, mask_all, cgn.n_classes).intervention(
            label=NODES["background"][1])
    return do


def abduct_counterfactuals(cgn: MnistCGN, encoder: MnistCGNEncoder, images: Any,
                           labels: Any, *, per_image: int = 1,
                           randomise: tuple[str, ...] | list[str] = ("texture", "background"),
                           seed: int = 0, chunk: int = 1000, backgrounds: str = "generated",
                           masks: str = "cgn", nuisances: MechanismNuisances | None = None,
                           progress: bool = True) -> CounterfactualSet:
    """Counterfactuals of real images: :func:`abduct`, :func:`abduction_interventions`,
    then :func:`~generators.cgn.counterfactuals.abducted_counterfactuals`.

    With the shape label kept, each counterfactual is the real digit's own shape (as the
    CGN rebuilds it) on a new texture and background, so the shapes a classifier learns
    from follow the real digit distribution rather than the CGN's prior samples.

    Parameters
    ----------
    cgn, encoder, images, labels
        As in :func:`abduct`.
    per_image : int
        Counterfactuals per real image.
    randomise, seed, chunk, progress
        As in :func:`~generators.cgn.counterfactuals.generate_counterfactuals`; the prior
        noise (texture and background noise, the texture shifts) is drawn from ``seed``.
    backgrounds, masks : str
        As in :func:`abduction_interventions`; the set's ``meta`` records both.
    nuisances : MechanismNuisances, optional
        Label-free interventions on the mechanisms (random textures, a palette, a
        contrast scale), stacked on the abduction's; ``meta`` records those that are
        not none.
    """
    _images(images, labels)
    if per_image < 1 or chunk < 1:
        raise CausalKitError(f"per_image and chunk must be >= 1, got {per_image}, {chunk}")
    check_options(backgrounds=backgrounds, masks=masks, randomise=randomise)
    nuisances = nuisances or MechanismNuisances()
    redraw(cgn, randomise)  # unknown mechanism names fail before the encoder runs
    abduction = abduct(cgn, encoder, images, labels, chunk=chunk)
    do = abduction_interventions(cgn, images, abduction, backgrounds=backgrounds, masks=masks,
                                 randomise=randomise, chunk=chunk)
    return abducted_counterfactuals(cgn, abduction, per_image=per_image, randomise=randomise,
                                    interventions=nuisances.interventions(cgn, do), seed=seed,
                                    chunk=chunk, progress=progress,
                                    meta={"backgrounds": backgrounds, "masks": masks,
                                          **nuisances.meta})
