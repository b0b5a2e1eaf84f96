"""Abducting a texture's phase: the cyclic shift that best explains an image region.

The CGN's texture mechanisms are shifted at random ("patch shuffling"), and that shift
is exogenous noise like ``u``. When the CGN rebuilds a real image, a random shift can
not line a generated stripe or vein up with the observed one, so a pixel-wise error is
smallest for a flat texture of the mean colour (the textures turn pale) and for a
mask that follows whatever dark texture pixels the background has. Inferring the
shift -- and, from ``K`` prior draws of the texture, the draw -- removes that: the
reconstruction then compares a texture with the observed one at its best alignment.

For a weight map ``w`` (the mask, or one minus it), a target ``t`` and a texture ``c``,
the weighted error of every cyclic shift ``d`` at once is::

    E(d) = sum_i w_i |t_i - c_{i+d}|^2
         = sum_i w_i |t_i|^2 - 2 corr(w t, c)(d) + corr(w, |c|^2)(d),

with ``corr(a, b)(d) = sum_i a_i b_{i+d}`` computed by FFT in ``O(HW log HW)``. The
search is not differentiated (it picks discrete noise, like abduction by search); the
caller recomputes the chosen draw with gradients.
"""

from __future__ import annotations

import torch

__all__ = ["shift_errors", "best_shift"]


def _spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.rfft2(x.double())


def shift_errors(target: torch.Tensor, texture: torch.Tensor, weight: torch.Tensor, *,
                 slot: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted squared error of every cyclic shift of ``texture`` against ``target``.

    Parameters
    ----------
    target : tensor (N, C, H, W)
        The observed images.
    texture : tensor (N, K, C, H, W), or (G, K, C, H, W) with ``slot``
        ``K`` candidate textures per image, unshifted.
    weight : tensor (N, 1, H, W)
        Where the texture has to explain the target (e.g. the mask).
    slot : LongTensor (N,), optional
        Image ``n`` is compared with ``texture[slot[n]]``: a bank of ``G`` candidate
        sets shared by the images (one per class, in CGN training). The bank's
        spectra are then computed once per set instead of once per image.

    Returns
    -------
    tensor (N, K, H, W)
        ``out[n, k, dy, dx]`` is the error of
        ``generators.cgn.mnist.model.random_shift(texture[n, k], (dy, dx))``.
    """
    n_sets = texture.shape[0] if slot is None else len(slot)  # candidate sets per image
    if texture.ndim != 5 or n_sets != target.shape[0] or \
            texture.shape[2:] != target.shape[1:]:
        raise ValueError(f"texture must be (N, K, C, H, W) with target (N, C, H, W) (or a "
                         f"bank (G, K, C, H, W) with slot (N,)); got {tuple(texture.shape)} "
                         f"and {tuple(target.shape)}")
    h, w = target.shape[-2:]
    # corr(a, b)(d) = irfft2(conj(A) B)(d); the sum over channels and the two terms
    # go through the spectrum, so one inverse transform per candidate remains
    c = texture.double()
    c_spec = _spectrum(c)  # (G or N, K, C, H, W//2+1)
    q_spec = _spectrum(c.pow(2).sum(2))  # (G or N, K, H, W//2+1)
    if slot is not None:
        c_spec, q_spec = c_spec[slot], q_spec[slot]
    t, wt = target.double(), weight.double()
    wt_spec = torch.conj(_spectrum(wt * t))[:, None]  # (N, 1, C, ...)
    w_spec = torch.conj(_spectrum(wt))  # (N, 1, ...): the weight's channel is K's axis
    spec = w_spec * q_spec - 2 * (wt_spec * c_spec).sum(2)
    const = (wt * t.pow(2)).sum((1, 2, 3))[:, None, None, None]
    return (const + torch.fft.irfft2(spec, s=(h, w))).float()


@torch.no_grad()
def best_shift(target: torch.Tensor, texture: torch.Tensor, weight: torch.Tensor, *,
               slot: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate and shift with the smallest :func:`shift_errors`, per image.

    Returns ``(index, offsets)``: a LongTensor (N,) into ``K`` and a LongTensor (N, 2)
    of ``(dy, dx)`` for :func:`generators.cgn.mnist.model.random_shift`.
    """
    err = shift_errors(target, texture, weight, slot=slot)
    n, _, h, w = err.shape
    flat = err.flatten(1).argmin(1)
    index, pos = flat // (h * w), flat % (h * w)
    return index, torch.stack([pos // w, pos % w], dim=1)
