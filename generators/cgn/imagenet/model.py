"""The ImageNet counterfactual generative network (Sauer & Geiger, ICLR 2021) as a torch module.

On ImageNet every mechanism is a copy of a pretrained BigGAN-deep-256, fine-tuned so that
together they reproduce what the unconstrained BigGAN draws:

* ``f_shape``  -> the pre-mask ``m~``, an image that a frozen U^2-Net turns into the mask
  ``m = clamp(u2net(m~), 1e-4, 1 - 1e-4)``;
* ``f_text``   -> the foreground texture ``f``;
* ``f_bg``     -> the background ``b``;
* ``biggan_GT`` (frozen) -> the pseudo ground truth ``x_gt = G(u, y)`` that training
  reconstructs (:meth:`CGNImageNet.ground_truth`); it is not part of the generative model;
* the analytic composer ``x = m * f + (1 - m) * b``
  (:func:`generators.cgn.composer.compose`).

The structure follows the authors' ``imagenet/models/cgn.py``: the three mechanisms are
unmodified BigGANs, so the pre-mask is the shape BigGAN's RGB output, and the U^2-Net
reads it as a picture and returns its saliency. (``premask_channels=1`` keeps only the
first output channel of ``f_shape``, a one-channel head on the same weights, and gives
the U^2-Net that grey image; the official checkpoint was trained with three.) The
attribute names (``biggan_GT``, ``f_shape``, ``f_text``, ``f_bg``, ``u2net``) are the
official ones, so the official ``cgn.pth`` loads with a strict key check
(:mod:`generators.cgn.imagenet.checkpoint`).

Images
------
Every image this module returns (pre-mask, foreground, background, composite, ground
truth) is float ``(B, 3, H, W)`` in ``[-1, 1]``, the project's convention and BigGAN's;
the mask is ``(B, 1, H, W)`` in ``(0, 1)``. :func:`to_unit` maps ``[-1, 1]`` to
``[0, 1]`` (what :mod:`generators.u2net` and :mod:`generators.perceptual` read),
:func:`from_unit` back.

U^2-Net input
-------------
The official code feeds BigGAN's raw ``[-1, 1]`` output to the U^2-Net without the
ImageNet normalisation the U^2-Net was trained with; its ``f_shape`` learnt to draw
pre-masks for that input. ``u2net_input="official"`` (the default) does the same;
``"normalised"`` gives the U^2-Net ``to_unit(x)`` through its own preprocessing
(:class:`generators.u2net.U2Net`). The official mode calls the U^2-Net's ``forward_raw``
(its layers without the input normalisation).

Noise
-----
Training feeds the same ``u`` and ``y`` to every mechanism (and to ``biggan_GT``).
:meth:`CGNImageNet.forward` also takes a mapping ``{"shape", "texture", "background"}``
for ``u`` or ``y``: separate noise or classes per mechanism, as the paper's
counterfactuals allow. ``u`` is BigGAN's truncated normal, ``truncation * truncnorm(-2,
2)`` (:meth:`CGNImageNet.sample_noise`).

The CGN protocol
----------------
:class:`CGNImageNet` implements :class:`generators.cgn.protocol.CGN`, so
:func:`~generators.cgn.scm.cgn_scm` and :mod:`generators.cgn.counterfactuals` take it
as they take the MNIST CGN. With ``noise="shared"`` (the official code) its graph is the
library's ``cgn-imagenet``::

    Y1, Y2, Y3  labels of shape, texture, background   uniform over the classes
    U           one noise vector                       truncation * truncnorm(-2, 2)
    Mp := shape(Y1, U)          the pre-mask (B, 3, H, W)
    M  := mask(Mp)              the U^2-Net's saliency, clamped (no label of its own)
    F  := texture(Y2, U)
    B  := background(Y3, U)
    X  := M * F + (1 - M) * B

With ``noise="separate"`` the mechanisms read ``U1``, ``U2``, ``U3`` instead.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from causalkit.errors import CausalKitError
from generators.base import check_truncation, make_generator, truncated_normal
from generators.cgn.composer import compose
from generators.cgn.protocol import Composer, Exogenous, Mechanism

__all__ = ["CGNImageNet", "CGNOutput", "build_cgn_imagenet", "to_unit", "from_unit",
           "MASK_EPS", "MECHANISMS", "NOISE_LAYOUTS", "U2NET_INPUTS", "BIGGAN_DEEP_256"]

MASK_EPS = 1e-4  # the official clamp of the mask; keeps the entropy loss finite

#: the three trained mechanisms, by name -> their module attribute
MECHANISMS = {"shape": "f_shape", "texture": "f_text", "background": "f_bg"}
NOISE_LAYOUTS = ("shared", "separate")
U2NET_INPUTS = ("official", "normalised")

#: BigGAN-deep-256's config (the ``config.json`` of pytorch-pretrained-biggan's weights)
BIGGAN_DEEP_256 = dict(
    output_dim=256, z_dim=128, class_embed_dim=128, channel_width=128, num_classes=1000,
    layers=[(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
            (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
            (False, 2, 2), (True, 2, 1)],
    attention_layer_position=8, eps=1e-4, n_stats=51)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in ``[-1, 1]`` -> ``[0, 1]`` (``(x + 1) / 2``), differentiable."""
    return (x + 1) / 2


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in ``[0, 1]`` -> ``[-1, 1]`` (``2 x - 1``), differentiable."""
    return x * 2 - 1


@dataclass
class CGNOutput:
    """One pass of the mechanisms.

    Attributes
    ----------
    premask : (B, C, H, W) in [-1, 1]
        ``f_shape``'s output (C = 3, or 1 with ``premask_channels=1``).
    mask : (B, 1, H, W) in [MASK_EPS, 1 - MASK_EPS]
        The U^2-Net's saliency of the pre-mask.
    foreground, background : (B, 3, H, W) in [-1, 1]
        ``f_text``'s and ``f_bg``'s outputs.
    """

    premask: torch.Tensor
    mask: torch.Tensor
    foreground: torch.Tensor
    background: torch.Tensor

    @property
    def image(self) -> torch.Tensor:
        """The composite ``m * f + (1 - m) * b`` in [-1, 1]."""
        return compose(self.mask, self.foreground, self.background)


def _as_tensor(a: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


class CGNImageNet(nn.Module):
    """Three BigGAN mechanisms, a frozen BigGAN target and a frozen U^2-Net.

    Build one with :func:`build_cgn_imagenet` (pretrained or random BigGAN weights
    through :mod:`generators.biggan`'s strict loader) or
    :func:`~generators.cgn.imagenet.checkpoint.load_cgn_imagenet`.

    Parameters
    ----------
    biggan : nn.Module
        A pytorch-pretrained-biggan ``BigGAN`` whose BatchNorms read stored statistics
        (``generators.biggan.BigGANGenerator(...).module``). It becomes ``biggan_GT``;
        ``f_shape``, ``f_text`` and ``f_bg`` start as copies of it.
    u2net : nn.Module
        A :class:`generators.u2net.U2Net` (any size); frozen, in eval mode.
    premask_channels : {3, 1}
        Channels of the pre-mask (module docstring).
    u2net_input : {"official", "normalised"}
        How the U^2-Net reads an image (module docstring).
    noise : {"shared", "separate"}
        The noise layout the CGN declares to :mod:`generators.cgn.counterfactuals`.
    truncation : float
        The truncation of the declared noise prior and of the mechanisms it drives.
    """

    def __init__(self, biggan: nn.Module, u2net: nn.Module, *, premask_channels: int = 3,
                 u2net_input: str = "official", noise: str = "shared",
                 truncation: float = 1.0) -> None:
        super().__init__()
        if premask_channels not in (1, 3):
            raise CausalKitError(f"premask_channels must be 3 (official) or 1, got "
                                 f"{premask_channels!r}")
        if u2net_input not in U2NET_INPUTS:
            raise CausalKitError(f"u2net_input must be one of {list(U2NET_INPUTS)}, got "
                                 f"{u2net_input!r}")
        if noise not in NOISE_LAYOUTS:
            raise CausalKitError(f"noise must be one of {list(NOISE_LAYOUTS)}, got {noise!r}")
        self.premask_channels, self.u2net_input = premask_channels, u2net_input
        self.noise_layout, self.truncation = noise, check_truncation(truncation)
        cfg = biggan.config
        self.dim_z, self.num_classes = int(cfg.z_dim), int(cfg.num_classes)
        self.image_size = int(cfg.output_dim)
        self.biggan_GT = biggan
        self.f_shape = copy.deepcopy(biggan)
        self.f_text = copy.deepcopy(biggan)
        self.f_bg = copy.deepcopy(biggan)
        self.u2net = u2net
        for frozen in (self.biggan_GT, self.u2net):
            frozen.requires_grad_(False)
        self.eval()

    # -- modes and parameters ------------------------------------------------------------
    def train(self, mode: bool = True) -> CGNImageNet:
        """The mechanisms follow ``mode``; ``biggan_GT`` and the U^2-Net stay in eval."""
        super().train(mode)
        self.biggan_GT.eval()
        self.u2net.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.biggan_GT.embeddings.weight.device

    def mechanism(self, name: str) -> nn.Module:
        """The BigGAN of mechanism ``name`` (``"shape"``, ``"texture"``, ``"background"``)."""
        if name not in MECHANISMS:
            raise CausalKitError(f"unknown mechanism {name!r}; choose from {list(MECHANISMS)}")
        return getattr(self, MECHANISMS[name])

    def mechanism_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Mechanism name -> its trainable parameters (one optimiser each in training)."""
        return {name: list(self.mechanism(name).parameters()) for name in MECHANISMS}

    # -- inputs --------------------------------------------------------------------------
    def sample_noise(self, n: int, *, truncation: float | None = None,
                     generator: int | torch.Generator | None = None) -> torch.Tensor:
        """``n`` BigGAN noise vectors ``truncation * truncnorm(-2, 2)``, (n, dim_z), on
        :attr:`device`."""
        t = self.truncation if truncation is None else truncation
        return truncated_normal(n, self.dim_z, t, generator=make_generator(generator)
                                ).to(self.device)

    def sample_classes(self, n: int, *, generator: int | torch.Generator | None = None,
                       classes: Any = None) -> torch.Tensor:
        """``n`` class ids, uniform over ``classes`` (default all), (n,) long."""
        gen = make_generator(generator)
        pool = torch.arange(self.num_classes) if classes is None else torch.as_tensor(classes)
        return pool[torch.randint(len(pool), (n,), generator=gen)].to(self.device)

    def class_vector(self, y: Any) -> torch.Tensor:
        """Class ids (B,) -> one-hot (B, num_classes); a float (B, num_classes) class
        vector (e.g. an interpolation of two one-hots) passes through."""
        y = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
        y = y.to(self.device)
        if y.is_floating_point():
            if y.ndim != 2 or y.shape[1] != self.num_classes:
                raise CausalKitError(f"a float class vector must be (B, {self.num_classes}), "
                                     f"got {tuple(y.shape)}")
            return y.float()
        if y.ndim != 1:
            raise CausalKitError(f"class ids must be (B,), got shape {tuple(y.shape)}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise CausalKitError(f"class ids must lie in [0, {self.num_classes}), got "
                                 f"[{int(y.min())}, {int(y.max())}]")
        return nn.functional.one_hot(y.long(), self.num_classes).float()

    def _per_mechanism(self, value: Any, what: str) -> dict[str, Any]:
        if isinstance(value, Mapping):
            missing = sorted(set(MECHANISMS) - set(value))
            extra = sorted(set(value) - set(MECHANISMS))
            if missing or extra:
                raise CausalKitError(f"{what} mapping needs exactly the keys "
                                     f"{list(MECHANISMS)}; missing {missing}, unknown {extra}")
            return dict(value)
        return {name: value for name in MECHANISMS}

    # -- networks ------------------------------------------------------------------------
    @staticmethod
    def _biggan(module: nn.Module, u: torch.Tensor, onehot: torch.Tensor,
                truncation: float) -> torch.Tensor:
        embed = module.embeddings(onehot)
        return module.generator(torch.cat((u, embed), dim=1), truncation)

    def _run(self, name: str, u: torch.Tensor, y: Any, truncation: float) -> torch.Tensor:
        u = _as_tensor(u, torch.float32, self.device)
        onehot = self.class_vector(y)
        if u.ndim != 2 or u.shape[1] != self.dim_z or len(u) != len(onehot):
            raise CausalKitError(f"noise must be (B, {self.dim_z}) with B = {len(onehot)} "
                                 f"labels, got {tuple(u.shape)}")
        return self._biggan(self.mechanism(name), u, onehot, truncation)

    def saliency(self, x: torch.Tensor) -> torch.Tensor:
        """The U^2-Net's saliency (B, 1, H, W) in [0, 1] of images ``x`` in [-1, 1]
        (1 or 3 channels), differentiable in ``x``."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.u2net_input == "normalised":
            return self.u2net(to_unit(x))
        raw = getattr(self.u2net, "forward_raw", None)
        if raw is None:
            raise CausalKitError(f"{type(self.u2net).__name__} has no forward_raw (the network "
                                 "without its input normalisation), which u2net_input="
                                 "'official' needs; use u2net_input='normalised'")
        return raw(x)

    def premask(self, u: torch.Tensor, y: Any, *, truncation: float = 1.0) -> torch.Tensor:
        """The shape mechanism's pre-mask ``f_shape(u, y)`` (B, premask_channels, H, W)."""
        out = self._run("shape", u, y, check_truncation(truncation))
        return out[:, :self.premask_channels]

    def mask(self, premask: torch.Tensor) -> torch.Tensor:
        """The mask ``clamp(u2net(premask), MASK_EPS, 1 - MASK_EPS)`` (B, 1, H, W)."""
        return self.saliency(premask).clamp(MASK_EPS, 1 - MASK_EPS)

    def texture(self, u: torch.Tensor, y: Any, *, truncation: float = 1.0) -> torch.Tensor:
        """The foreground ``f_text(u, y)`` (B, 3, H, W) in [-1, 1]."""
        return self._run("texture", u, y, check_truncation(truncation))

    def background(self, u: torch.Tensor, y: Any, *, truncation: float = 1.0) -> torch.Tensor:
        """The background ``f_bg(u, y)`` (B, 3, H, W) in [-1, 1]."""
        return self._run("background", u, y, check_truncation(truncation))

    @torch.no_grad()
    def ground_truth(self, u: torch.Tensor, y: Any, truncation: float = 1.0) -> torch.Tensor:
        """The frozen BigGAN's image ``x_gt = G(u, y)`` (B, 3, H, W) in [-1, 1], no grad."""
        t = check_truncation(truncation)
        u = _as_tensor(u, torch.float32, self.device)
        return self._biggan(self.biggan_GT, u, self.class_vector(y), t)

    def forward(self, u: Any, y: Any, *, truncation: float = 1.0) -> CGNOutput:
        """Run the mechanisms.

        Parameters
        ----------
        u : tensor (B, dim_z), or a mapping {"shape", "texture", "background"} of them
            The noise: one tensor is shared by the mechanisms (training, the official
            code), a mapping gives each its own.
        y : class ids (B,) / class vectors (B, num_classes), or a mapping of them
            The classes, shared or per mechanism.
        truncation : float
            The BigGANs' truncation (which of their stored BatchNorm statistics apply).
        """
        t = check_truncation(truncation)
        us, ys = self._per_mechanism(u, "u"), self._per_mechanism(y, "y")
        premask = self._run("shape", us["shape"], ys["shape"], t)[:, :self.premask_channels]
        return CGNOutput(premask=premask, mask=self.mask(premask),
                         foreground=self._run("texture", us["texture"], ys["texture"], t),
                         background=self._run("background", us["background"],
                                              ys["background"], t))

    # -- the CGN protocol (generators.cgn.protocol) ---------------------------------------
    def _noise_nodes_of(self) -> dict[str, str]:
        if self.noise_layout == "shared":
            return dict.fromkeys(MECHANISMS, "U")
        return {"shape": "U1", "texture": "U2", "background": "U3"}

    @property
    def label_nodes(self) -> dict[str, Exogenous]:
        """Y1, Y2, Y3: uniform over the ``num_classes`` classes."""
        k = self.num_classes

        def labels(n: int, rng: np.random.Generator) -> np.ndarray:
            return rng.integers(0, k, n)

        return {y: Exogenous((), labels) for y in ("Y1", "Y2", "Y3")}

    @property
    def noise_nodes(self) -> dict[str, Exogenous]:
        """``U`` (shared) or ``U1, U2, U3`` (separate): ``truncation * truncnorm(-2, 2)``."""
        from scipy.stats import truncnorm

        d, t = self.dim_z, self.truncation

        def noise(n: int, rng: np.random.Generator) -> np.ndarray:
            return (t * truncnorm.rvs(-2, 2, size=(n, d), random_state=rng)).astype(np.float32)

        return {v: Exogenous((d,), noise) for v in dict.fromkeys(self._noise_nodes_of().values())}

    @property
    def mechanism_nodes(self) -> dict[str, Mechanism]:
        """Mp (shape), M (mask, the U^2-Net), F (texture), B (background); without
        gradients, outputs on the CPU."""
        un = self._noise_nodes_of()
        return {
            "Mp": Mechanism("shape", "Y1", ("Y1", un["shape"]),
                            self._protocol_fn(self.premask, "Y1", un["shape"])),
            "M": Mechanism("mask", None, ("Mp",), self._protocol_mask),
            "F": Mechanism("texture", "Y2", ("Y2", un["texture"]),
                           self._protocol_fn(self.texture, "Y2", un["texture"])),
            "B": Mechanism("background", "Y3", ("Y3", un["background"]),
                           self._protocol_fn(self.background, "Y3", un["background"])),
        }

    @property
    def composer(self) -> Composer:
        """X := M * F + (1 - M) * B."""
        return Composer("X", ("M", "F", "B"), compose)

    def _protocol_fn(self, fn: Callable[..., torch.Tensor], y: str, u: str
                     ) -> Callable[[Mapping[str, Any], Any], torch.Tensor]:
        @torch.no_grad()
        def mechanism(parents: Mapping[str, Any], _: Any) -> torch.Tensor:
            ys = _as_tensor(parents[y], torch.long, self.device)
            return fn(parents[u], ys, truncation=self.truncation).float().cpu()

        return mechanism

    @torch.no_grad()
    def _protocol_mask(self, parents: Mapping[str, Any], _: Any) -> torch.Tensor:
        return self.mask(_as_tensor(parents["Mp"], torch.float32, self.device)).float().cpu()

    def options(self) -> dict[str, Any]:
        """The constructor options and BigGAN config (what a saved CGN records)."""
        return {"biggan_config": json_config(self.biggan_GT.config),
                "u2net_kind": getattr(self.u2net, "kind", None),
                "u2net_batch_norm": bool(getattr(self.u2net, "batch_norm", True)),
                "premask_channels": self.premask_channels, "u2net_input": self.u2net_input,
                "noise": self.noise_layout, "truncation": self.truncation}


def json_config(config: Any) -> dict[str, Any]:
    """A BigGAN config as a JSON-able dict (layers as lists)."""
    raw = config if isinstance(config, dict) else config.to_dict()
    raw = dict(raw)
    raw["layers"] = [list(layer) for layer in raw["layers"]]
    return raw


# ---------------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------------
def _biggan_module(biggan: Any, seed: int, calibrate: bool) -> nn.Module:
    """A BigGAN module with stored-statistics BatchNorms, through the strict loader."""
    import tempfile

    from generators.biggan import (
        BigGANGenerator,
        load_biggan,
        load_biggan_dir,
        random_biggan,
        save_biggan,
    )

    if isinstance(biggan, BigGANGenerator):
        return biggan.module
    if isinstance(biggan, Mapping):
        model = random_biggan(dict(biggan), seed, calibrate=calibrate, device="cpu")
        with tempfile.TemporaryDirectory(prefix="cgn_biggan_") as tmp:
            save_biggan(model, tmp)
            return load_biggan_dir(tmp, device="cpu").module
    return load_biggan(biggan, device="cpu").module


def _u2net_module(u2net: Any, seed: int) -> nn.Module:
    from generators.u2net import build_u2net, load_u2net

    if isinstance(u2net, nn.Module):
        return u2net
    text = str(u2net)
    if text in ("u2netp", "u2net"):
        return build_u2net(text, seed=seed)
    if not os.path.isfile(text):
        raise CausalKitError(f"u2net {text!r} is neither a kind ('u2netp', 'u2net') nor an "
                             "existing .onnx/.pth file")
    return load_u2net(text)


def build_cgn_imagenet(biggan: str | os.PathLike | Mapping[str, Any] | Any = "biggan-deep-256",
                       *, u2net: str | os.PathLike | nn.Module = "u2net", seed: int = 0,
                       device: str | torch.device | None = None, calibrate: bool = True,
                       premask_channels: int = 3, u2net_input: str = "official",
                       noise: str = "shared", truncation: float = 1.0) -> CGNImageNet:
    """A CGN whose four BigGANs start from the same weights.

    Parameters
    ----------
    biggan : name, folder, config dict or BigGANGenerator
        ``"biggan-deep-256"`` (pretrained, cached by :func:`generators.biggan.load_biggan`),
        a folder with ``config.json`` and ``pytorch_model.bin`` (strict keys), or a config
        dict (e.g. :func:`generators.biggan.tiny_config`, :data:`BIGGAN_DEEP_256`): random
        weights seeded by ``seed``, saved and reloaded through the same strict loader.
    u2net : kind, file or module
        ``"u2net"`` / ``"u2netp"`` (random init, seeded), a ``.onnx`` or ``.pth`` file
        (:func:`generators.u2net.load_u2net`), or a module.
    seed : int
        Seed of random weights.
    device : str or torch.device, optional
        Where the model goes (default CUDA when available).
    calibrate : bool
        Compute BatchNorm statistics for random BigGAN weights
        (:func:`generators.biggan.calibrate_batchnorm_stats`); off only for speed tests.
    premask_channels, u2net_input, noise, truncation
        See :class:`CGNImageNet`.

    Returns
    -------
    CGNImageNet
        In eval mode: a forward pass is then a pure function of ``(u, y)``. In train mode
        the mechanisms' spectral norms take a power-iteration step on every pass, as
        officially in training.
    """
    from generators.base import default_device

    cgn = CGNImageNet(_biggan_module(biggan, seed, calibrate), _u2net_module(u2net, seed),
                      premask_channels=premask_channels, u2net_input=u2net_input, noise=noise,
                      truncation=truncation)
    return cgn.to(device if device is not None else default_device())
