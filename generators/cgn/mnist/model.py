"""The MNIST counterfactual generative network (Sauer & Geiger, ICLR 2021) as a torch module.

Three independent mechanisms, each fed ``[u, embed(y)]`` with ``u ~ N(0, I_32)``:

* ``f_shape``  -> the mask ``m`` (1 channel, clamped to ``[1e-4, 1 - 1e-4]``),
* ``f_text1``  -> the foreground texture ``f`` (RGB in ``[-1, 1]``),
* ``f_text2``  -> the background ``b`` (RGB in ``[-1, 1]``),

and the analytic composer ``x = m * f + (1 - m) * b``. The texture outputs are "patch
shuffled": tiled 2 x 2 and cropped back at a random offset, i.e. a random cyclic shift,
so that the texture mechanisms cannot learn where the digit is.

The layer layout (module indices inside each ``nn.Sequential``) matches the official
MNIST checkpoints, so :func:`generators.cgn.mnist.checkpoint.load_official` loads them with a
strict key check. Randomness is explicit: pass ``u`` or a ``torch.Generator``.

:class:`MnistCGN` implements the :class:`~generators.cgn.protocol.CGN` protocol, so
:func:`~generators.cgn.scm.cgn_scm` and :mod:`generators.cgn.counterfactuals` take it
as it is. Its declaration (Sauer & Geiger, App. B)::

    Y1, Y2, Y3  labels of shape, texture, background   uniform over the classes
    U1, U2, U3  one noise vector per mechanism         N(0, I_latent_dim), float32
    M := shape(Y1, U1)                                 mask (N, 1, H, W)
    F := texture(Y2, U2; shift)                        the shift (dy, dx) is F's own
    B := background(Y3, U3; shift)                     exogenous input, and B's
    X := M * F + (1 - M) * B

The noise is drawn in the order U1, U2, U3, F's shift, B's shift: that order, with a
seed, defines the counterfactual sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from generators.cgn.composer import compose
from generators.cgn.protocol import Composer, Exogenous, Mechanism

__all__ = ["MnistCGN", "CGNOutput", "compose", "random_shift", "MASK_EPS", "NODES", "no_shift"]

MASK_EPS = 1e-4  # keeps log(m) and log(1 - m) finite in the binary-entropy loss


def _upsample_block(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Upsample(scale_factor=2),
        nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    ]


def _shape_net(cin: int, ngf: int, init_sz: int) -> nn.Sequential:
    # Index layout = official checkpoint: 0 Linear, 4/5 conv+BN, 9/10 conv+BN (1 channel).
    return nn.Sequential(
        nn.Linear(cin, ngf * 2 * init_sz**2),
        nn.Unflatten(1, (ngf * 2, init_sz, init_sz)),
        nn.InstanceNorm2d(ngf * 2),
        *_upsample_block(ngf * 2, ngf),
        nn.InstanceNorm2d(ngf),
        *_upsample_block(ngf, 1),
        nn.InstanceNorm2d(1),
    )


def _texture_net(cin: int, ngf: int, init_sz: int) -> nn.Sequential:
    # Index layout = official checkpoint: 0 Linear, 3/4, 7/8 conv+BN, 10 conv, 11 BN, 12 tanh.
    return nn.Sequential(
        nn.Linear(cin, ngf * 2 * init_sz**2),
        nn.Unflatten(1, (ngf * 2, init_sz, init_sz)),
        *_upsample_block(ngf * 2, ngf * 2),
        *_upsample_block(ngf * 2, ngf),
        nn.Conv2d(ngf, 3, 3, stride=1, padding=1),
        nn.BatchNorm2d(3),
        nn.Tanh(),
    )


def random_shift(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Cyclically shift each image of ``x`` (N, C, H, W) by ``offsets`` (N, 2) = (dy, dx).

    This is the official "patch shuffling" for MNIST (tile the texture 2 x 2, crop a
    random H x W window), written as the equivalent per-sample roll.
    """
    n, _, h, w = x.shape
    offsets = offsets.to(device=x.device, dtype=torch.long)
    rows = (torch.arange(h, device=x.device)[None, :] + offsets[:, :1]) % h  # (N, H)
    cols = (torch.arange(w, device=x.device)[None, :] + offsets[:, 1:]) % w  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


#: mechanism name -> (mechanism node, label node, noise node), as in the ``cgn-mnist`` graph
NODES = {"shape": ("M", "Y1", "U1"), "texture": ("F", "Y2", "U2"),
         "background": ("B", "Y3", "U3")}


def no_shift(n: int, rng: np.random.Generator) -> np.ndarray:
    """A texture-shift sampler that always gives (0, 0): no patch shuffling, e.g.
    ``cgn_scm(cgn, noise={"F": no_shift, "B": no_shift})``."""
    return np.zeros((n, 2), np.int64)


def _as_tensor(a: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


@dataclass
class CGNOutput:
    """Mask (N, 1, H, W) in (0, 1), foreground and background (N, 3, H, W) in [-1, 1]."""

    mask: torch.Tensor
    foreground: torch.Tensor
    background: torch.Tensor

    @property
    def image(self) -> torch.Tensor:
        """The composed image ``m * f + (1 - m) * b`` in [-1, 1]."""
        return compose(self.mask, self.foreground, self.background)


class MnistCGN(nn.Module):
    """The CGN for 32 x 32 RGB MNIST variants (colored, double-colored, Wildlife).

    Parameters
    ----------
    n_classes : int
        Number of classes of every mechanism label (10 digits).
    latent_dim : int
        Dimension of each mechanism's noise ``u`` (32 in the paper).
    ngf : int
        Width of the mechanisms (32 in the paper).
    img_size : int
        Output side length; must be divisible by 4.
    init_type, init_gain : str, float
        Weight initialisation ("orthogonal" or "normal") and its gain, as in the configs.
    seed : int
        Seed of the initialisation, so that two models built alike are identical.
    """

    def __init__(self, n_classes: int = 10, latent_dim: int = 32, ngf: int = 32,
                 img_size: int = 32, init_type: str = "orthogonal", init_gain: float = 0.1,
                 seed: int = 0) -> None:
        super().__init__()
        if img_size % 4:
            raise ValueError(f"img_size must be divisible by 4, got {img_size}")
        self.n_classes, self.latent_dim, self.img_size = n_classes, latent_dim, img_size
        cin, init_sz = latent_dim + n_classes, img_size // 4
        self.label_emb = nn.Embedding(n_classes, n_classes)
        self.f_shape = _shape_net(cin, ngf, init_sz)
        self.f_text1 = _texture_net(cin, ngf, init_sz)
        self.f_text2 = _texture_net(cin, ngf, init_sz)
        self._init_weights(init_type, init_gain, seed)

    def _init_weights(self, init_type: str, gain: float, seed: int) -> None:
        if init_type not in ("orthogonal", "normal"):
            raise ValueError(f"init_type must be 'orthogonal' or 'normal', got {init_type!r}")
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    if init_type == "orthogonal":
                        nn.init.orthogonal_(m.weight, gain=gain, generator=gen)
                    else:
                        nn.init.normal_(m.weight, 0.0, gain, generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.Embedding):
                    nn.init.normal_(m.weight, generator=gen)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, gain, generator=gen)
                    m.bias.zero_()

    # -- noise -------------------------------------------------------------------------
    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` draws of ``u ~ N(0, I_latent_dim)``."""
        return torch.randn(n, self.latent_dim, generator=generator).to(device or self.device)

    def sample_offsets(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` random (dy, dx) shifts for the patch shuffling, uniform over the image."""
        return torch.randint(0, self.img_size, (n, 2), generator=generator)

    @property
    def device(self) -> torch.device:
        return self.label_emb.weight.device

    # -- the CGN protocol (generators.cgn.protocol) ---------------------------------------
    @property
    def label_nodes(self) -> dict[str, Exogenous]:
        """Y1, Y2, Y3: uniform over the ``n_classes`` classes."""
        k = self.n_classes

        def labels(n: int, rng: np.random.Generator) -> np.ndarray:
            return rng.integers(0, k, n)

        return {y: Exogenous((), labels) for _, y, _ in NODES.values()}

    @property
    def noise_nodes(self) -> dict[str, Exogenous]:
        """U1, U2, U3 ~ N(0, I), then the texture shifts of F and B (uniform offsets)."""
        d, size = self.latent_dim, self.img_size

        def gauss(n: int, rng: np.random.Generator) -> np.ndarray:
            return rng.standard_normal((n, d)).astype(np.float32)

        def offsets(n: int, rng: np.random.Generator) -> np.ndarray:
            return rng.integers(0, size, (n, 2))

        noise = {u: Exogenous((d,), gauss) for _, _, u in NODES.values()}
        return {**noise, "F": Exogenous((2,), offsets), "B": Exogenous((2,), offsets)}

    @property
    def mechanism_nodes(self) -> dict[str, Mechanism]:
        """M, F, B: :meth:`shape`, :meth:`texture`, :meth:`background`, without gradients;
        outputs on the CPU."""
        return {node: Mechanism(name, y, (y, u), self._mechanism(name, y, u))
                for name, (node, y, u) in NODES.items()}

    @property
    def composer(self) -> Composer:
        """X := M * F + (1 - M) * B."""
        return Composer("X", ("M", "F", "B"), compose)

    def _mechanism(self, method: str, y: str, u: str) -> Callable[[Mapping[str, Any], Any],
                                                                    torch.Tensor]:
        fn = getattr(self, method)

        @torch.no_grad()
        def mechanism(parents: Mapping[str, Any], shift: Any) -> torch.Tensor:
            dev = self.device
            ys, us = _as_tensor(parents[y], torch.long, dev), _as_tensor(parents[u],
                                                                         torch.float32, dev)
            if shift is None:
                return fn(ys, us).cpu()
            return fn(ys, us, _as_tensor(shift, torch.long, dev)).cpu()

        return mechanism

    # -- mechanisms --------------------------------------------------------------------
    def _inp(self, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(y, device=self.device).long()
        if y.ndim != 1 or u.ndim != 2 or len(y) != len(u):
            raise ValueError(f"labels must be (N,) and noise (N, {self.latent_dim}); got "
                             f"{tuple(y.shape)} and {tuple(u.shape)}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes}); got "
                             f"[{int(y.min())}, {int(y.max())}]")
        return torch.cat([u.to(self.device, torch.float32), self.label_emb(y)], dim=1)

    def shape(self, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The mask mechanism: (N, 1, H, W) in ``[MASK_EPS, 1 - MASK_EPS]``."""
        return self.f_shape(self._inp(y, u)).clamp(MASK_EPS, 1 - MASK_EPS)

    def texture(self, y: torch.Tensor, u: torch.Tensor,
                offsets: torch.Tensor | None = None) -> torch.Tensor:
        """The foreground-texture mechanism (shifted by ``offsets`` when given)."""
        out = self.f_text1(self._inp(y, u))
        return out if offsets is None else random_shift(out, offsets)

    def background(self, y: torch.Tensor, u: torch.Tensor,
                   offsets: torch.Tensor | None = None) -> torch.Tensor:
        """The background mechanism (shifted by ``offsets`` when given)."""
        out = self.f_text2(self._inp(y, u))
        return out if offsets is None else random_shift(out, offsets)

    def forward(self, y_shape: torch.Tensor, y_texture: torch.Tensor | None = None,
                y_background: torch.Tensor | None = None, *,
                u: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | torch.Tensor | None = None,
                generator: torch.Generator | None = None, shuffle: bool = True) -> CGNOutput:
        """Run the three mechanisms.

        Parameters
        ----------
        y_shape, y_texture, y_background : LongTensor (N,)
            Labels of the mechanisms; the texture and background labels default to the
            shape label (a non-counterfactual sample).
        u : tensor (N, latent_dim) or a triple of them, optional
            The noise; one tensor is shared by the three mechanisms (as in the official
            training), a triple gives each its own. Drawn from ``generator`` when absent.
        generator : torch.Generator, optional
            Source of the noise and the shuffling offsets.
        shuffle : bool
            Apply the random cyclic shift to the texture outputs.
        """
        y_shape = torch.as_tensor(y_shape).long()
        y_texture = y_shape if y_texture is None else torch.as_tensor(y_texture).long()
        y_background = y_shape if y_background is None else torch.as_tensor(y_background).long()
        n = len(y_shape)
        if u is None:
            u = self.sample_noise(n, generator)
        us = (u, u, u) if isinstance(u, torch.Tensor) else tuple(u)
        off_f = self.sample_offsets(n, generator) if shuffle else None
        off_b = self.sample_offsets(n, generator) if shuffle else None
        return CGNOutput(self.shape(y_shape, us[0]), self.texture(y_texture, us[1], off_f),
                         self.background(y_background, us[2], off_b))
