"""Perceptual features and the perceptual (style) losses built on them.

A *feature extractor* here is any ``nn.Module`` that maps float RGB images in
``[0, 1]``, shape ``(B, 3, H, W)``, to a list of feature maps ``[(B, C_i, H_i, W_i),
...]``; whatever input normalisation its weights expect happens inside it. Losses take
an extractor as an argument, so which network measures "looking alike" is a setting:

===============================  =========================================================
spec                             extractor
===============================  =========================================================
``"vgg16:PATH"``                 :class:`VGGFeatures`, VGG16 from a torchvision-format
                                 state-dict file (``features.0.weight`` ...), strict keys
``"vgg16_bn:PATH"``              the same with batch norm (``vgg16_bn-6c64b313.pth``)
``"vgg19:PATH"``                 VGG19 (GenInt's style transfer)
``"torchvision:vgg16"``          torchvision's own pretrained weights, when torchvision is
                                 importable (also ``vgg16_bn``, ``vgg19``)
``"timm:NAME"``                  a timm model's ``features_only`` maps, when timm is
                                 importable
``"random"``, ``"random:SEED"``  :class:`RandomFeatures`, a seeded random conv net
``None``                         ``"random"`` (with a warning printed once)
===============================  =========================================================

The layers
----------
The official CGN (``imagenet/losses.py`` of the repository
``autonomousvision/counterfactual_generative_networks``) reads torchvision's VGG16
*without* batch norm at the last ReLU before each of the first four max-pools: relu1_2,
relu2_2, relu3_3, relu4_3 (``features.3``, ``.8``, ``.15``, ``.22``); the paper names
VGG16-BN, whose corresponding ReLUs are
``features.5``, ``.12``, ``.22``, ``.32``. :func:`vgg_features` defaults to those four
for every architecture (VGG19: ``.3``, ``.8``, ``.17``, ``.26``); ``layers`` takes other
names (``"relu3_1"``) or ``features`` indices.

The losses
----------
With ``phi_i`` the extractor's maps and the Gram matrix ``G(F) = F F^T / (C H W)`` of
``F`` reshaped to ``C x HW`` (:func:`gram`), the official perceptual loss is

    perceptual(x, y) = sum_i  w_i^2 * 5000 * mean abs(G(phi_i(x)) - G(phi_i(y)))
                     + sum_i  v_i * mean abs(phi_i(x) - phi_i(y))

with *style* weights ``w`` (the CGN: ``[4, 4, 4, 4]`` for the reconstruction,
``[0, 5, 5, 0]`` for the texture loss) and *content* weights ``v`` (zero in the CGN):
an L1 distance of Gram matrices and of features, not an MSE (:func:`perceptual_loss`).
The CGN's texture loss L_text is the same loss between the texture mechanism's output
and a grid of patches cut from where the mask is highest (:func:`texture_loss`; the
patch grid itself belongs to the CGN, :mod:`generators.cgn.imagenet.losses`). The
target side never receives gradients.

Input range: the official code hands VGG BigGAN's ``[-1, 1]`` images without the
ImageNet normalisation; here inputs are ``[0, 1]`` and the extractor normalises them as
its weights were trained. torchvision and timm are optional: nothing here imports them
unless a spec asks for them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from causalkit.errors import CausalKitError, DataError

__all__ = ["RandomFeatures", "random_features", "VGGFeatures", "vgg_features",
           "VGG_ARCHS", "VGG_LAYER_NAMES", "CGN_LAYERS", "perceptual_features", "gram",
           "perceptual_loss", "texture_loss", "STYLE_SCALE", "IMAGENET_MEAN",
           "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the factor of the official Gram term, ``w ** 2 * STYLE_SCALE``
STYLE_SCALE = 5e3

#: torchvision's VGG configurations (channels, "M" = max pool)
_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512,
              "M", 512, 512, 512, 512, "M"],
}
#: architecture -> (configuration, batch norm)
VGG_ARCHS = {"vgg16": ("vgg16", False), "vgg16_bn": ("vgg16", True),
             "vgg19": ("vgg19", False), "vgg19_bn": ("vgg19", True)}
#: the official CGN's layers of VGG16, by name (the default: the last ReLU before
#: each of the first four max-pools, for every architecture)
CGN_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


class RandomFeatures(nn.Module):
    """A seeded random conv net returning the output of each stage (ReLU features).

    Its weights are not trained, so no input normalisation applies; random features
    still capture colour and texture statistics, which makes them a usable offline
    stand-in for a Gram (style) loss."""

    def __init__(self, widths: Sequence[int] = (32, 64, 128), seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            stages, cin = [], 3
            for i, w in enumerate(widths):
                stride = 1 if i == 0 else 2
                stages.append(nn.Sequential(nn.Conv2d(cin, w, 3, stride, 1), nn.ReLU()))
                cin = w
            self.stages = nn.ModuleList(stages)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def random_features(seed: int = 0, widths: Sequence[int] = (32, 64, 128)) -> RandomFeatures:
    """A random-weights feature net (offline default); same ``seed``, same weights."""
    return RandomFeatures(widths, seed).eval()


def _layer_names(cfg: list, batch_norm: bool) -> dict[str, int]:
    """``relu{block}_{conv}`` / ``conv..`` / ``pool{block}`` -> index in ``features``."""
    names, index, block, conv = {}, 0, 1, 0
    for item in cfg:
        if item == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 0
            continue
        conv += 1
        names[f"conv{block}_{conv}"] = index
        index += 2 if batch_norm else 1
        names[f"relu{block}_{conv}"] = index
        index += 1
    return names


#: architecture -> layer name -> index in ``features``
VGG_LAYER_NAMES = {arch: _layer_names(_CFG[cfg], bn) for arch, (cfg, bn) in VGG_ARCHS.items()}


def _vgg_layers(cfg: list, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(cin, item, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU())
        cin = item
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """The ``features`` part of a torchvision VGG, returning the maps at ``layers``.

    Its state dict has torchvision's keys (``features.0.weight`` ...), cut after the
    deepest layer asked for. Frozen and in eval mode; ImageNet-normalises its input.
    """

    def __init__(self, arch: str = "vgg16", layers: Sequence[str | int] | None = None,
                 *, normalise: bool = True) -> None:
        super().__init__()
        if arch not in VGG_ARCHS:
            raise CausalKitError(f"unknown VGG {arch!r}; use one of {list(VGG_ARCHS)}")
        cfg, batch_norm = VGG_ARCHS[arch]
        names = VGG_LAYER_NAMES[arch]
        full = _vgg_layers(_CFG[cfg], batch_norm)
        chosen = []
        default = [names[f"pool{i}"] - 1 for i in range(1, 5)]
        for layer in default if layers is None else layers:
            if isinstance(layer, str) and layer in names:
                chosen.append(names[layer])
            elif isinstance(layer, int) and not isinstance(layer, bool) \
                    and 0 <= layer < len(full):
                chosen.append(layer)
            else:
                raise CausalKitError(f"{arch} has no layer {layer!r}; use names like "
                                     f"'relu3_3' or indices 0..{len(full) - 1}")
        if not chosen:
            raise CausalKitError("layers is empty; name at least one layer, e.g. 'relu2_2'")
        self.arch, self.layers, self.normalise = arch, tuple(chosen), normalise
        self.features = full[:max(chosen) + 1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.normalise:
            x = (x - self.mean) / self.std
        out, wanted = [], set(self.layers)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out.append(x)
        return [out[sorted(self.layers).index(i)] for i in self.layers]

    def load_torchvision_state_dict(self, state: dict[str, torch.Tensor], *,
                                    source: str) -> None:
        """Load a torchvision-format VGG state dict: its ``features.*`` keys must be
        exactly this architecture's (strict keys and shapes; the layers past the
        deepest one used are dropped), other keys may only be the ``classifier.*``."""
        from causalkit.weights import check_state_dict

        stray = sorted(k for k in state if not k.startswith(("features.", "classifier.")))
        if stray:
            raise DataError(f"{source} is not a torchvision {self.arch} state dict (it has "
                            f"{stray[:3]}); pass a file saved from torchvision.models."
                            f"{self.arch}().state_dict()")
        cfg, batch_norm = VGG_ARCHS[self.arch]
        holder = nn.Module()
        holder.features = _vgg_layers(_CFG[cfg], batch_norm)
        feats = {k: v for k, v in state.items() if k.startswith("features.")}
        check_state_dict(holder, feats, source=source, what=f"torchvision's {self.arch}",
                         hint=f"Pass the {self.arch} weights (vgg16 and vgg16_bn differ).")
        keep = {k[len("features."):]: v for k, v in feats.items()
                if int(k.split(".")[1]) < len(self.features)}
        self.features.load_state_dict(keep, strict=True)


def vgg_features(arch: str = "vgg16", weights: str | os.PathLike | None = None, *,
                 layers: Sequence[str | int] | None = None) -> VGGFeatures:
    """A VGG feature extractor, with weights from a torchvision state-dict file.

    ``weights=None`` leaves torch's random initialisation (tests only). ``layers``
    defaults to the last ReLU before each of the first four max-pools (VGG16:
    :data:`CGN_LAYERS`, relu1_2, relu2_2, relu3_3, relu4_3; VGG19: relu4_4 last).
    """
    from causalkit.io import load_torch
    from causalkit.weights import as_state_dict

    model = VGGFeatures(arch, layers)
    if weights is not None:
        state = as_state_dict(load_torch(weights, what=f"{arch} weights file"),
                              source=str(weights))
        model.load_torchvision_state_dict(state, source=str(weights))
    return model


class _TimmFeatures(nn.Module):
    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model((x - self.mean) / self.std))


def _optional(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken install fails in its C++ ops, not only ImportError
        package = name.partition(".")[0]
        raise CausalKitError(f"{package} is not usable here ({type(exc).__name__}); pass "
                             "'vgg16:PATH' with a torchvision-format weights file") from None


_WARNED: set[str] = set()


def _warn_once(key: str, text: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {text}", file=sys.stderr)


def perceptual_features(spec: str | None = None, *,
                        layers: Sequence[str | int] | None = None) -> nn.Module:
    """The feature extractor a spec names (see the module's table).

    ``None`` and ``"random"`` give :class:`RandomFeatures` with four stages (widths 32,
    64, 128, 256: as many maps as the CGN's four VGG layers) and print a warning once
    per process: random features only approximate a perceptual loss.
    """
    if spec is None or spec == "random" or (isinstance(spec, str)
                                            and spec.startswith("random:")):
        arg = "" if spec is None else spec.partition(":")[2]
        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise CausalKitError(f"random features take an integer seed ('random:0'), got "
                                 f"{arg!r}") from None
        _warn_once("random", "no perceptual weights given; using random features "
                   "(a texture-statistics stand-in). Pass 'vgg16:PATH' for the CGN's loss.")
        return random_features(seed, (32, 64, 128, 256))
    if not isinstance(spec, str):
        raise CausalKitError(f"perceptual features spec must be a string, got {spec!r}")
    name, sep, arg = spec.partition(":")
    if name in VGG_ARCHS:
        if not arg:
            raise CausalKitError(f"{name} needs a weights file: '{name}:PATH' (a "
                                 "torchvision state dict), or use 'random' offline")
        if not Path(arg).is_file():
            raise DataError(f"{name} weights file {arg} does not exist; pass the path of "
                            f"torchvision's {name} state dict")
        return vgg_features(name, arg, layers=layers)
    if name == "torchvision":
        if arg not in VGG_ARCHS:
            raise CausalKitError(f"'torchvision:{arg}' is not offered; use one of "
                                 f"{['torchvision:' + a for a in VGG_ARCHS]}")
        models = _optional("torchvision.models")
        net = getattr(models, arg)(weights="DEFAULT")
        model = VGGFeatures(arg, layers)
        model.load_torchvision_state_dict(net.state_dict(), source=f"torchvision:{arg}")
        return model
    if name == "timm":
        if not arg:
            raise CausalKitError("'timm:' needs a model name, e.g. 'timm:vgg16.tv_in1k'")
        timm = _optional("timm")
        net = timm.create_model(arg, pretrained=True, features_only=True)
        cfg = getattr(net, "pretrained_cfg", {}) or {}
        return _TimmFeatures(net, cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD))
    raise CausalKitError(f"unknown perceptual features {spec!r}; use 'vgg16:PATH', "
                         "'vgg16_bn:PATH', 'vgg19:PATH', 'torchvision:vgg16', 'timm:NAME' "
                         "or 'random'")


def gram(f: torch.Tensor) -> torch.Tensor:
    """Per-sample Gram matrices ``(N, C, C)`` of features ``(N, C, H, W)``, / (C H W)."""
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def perceptual_loss(features: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                    weights: Sequence[float],
                    content_weights: Sequence[float] | None = None) -> torch.Tensor:
    """The official CGN perceptual loss between images ``x`` and targets ``y`` in [0, 1].

    ``sum_i weights[i]**2 * 5000 * mean|G(phi_i(x)) - G(phi_i(y))|`` plus
    ``sum_i content_weights[i] * mean|phi_i(x) - phi_i(y)|`` (none by default), a
    scalar. ``y`` gets no gradient. Layers of weight zero are skipped.
    """
    if x.shape != y.shape:
        raise CausalKitError(f"perceptual_loss needs images of one shape, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
    fx = features(x)
    with torch.no_grad():
        fy = features(y.detach())
    content = [0.0] * len(fx) if content_weights is None else list(content_weights)
    if len(weights) != len(fx) or len(content) != len(fx):
        raise CausalKitError(f"the features give {len(fx)} maps but {len(weights)} style "
                             f"and {len(content)} content weights were given; give one "
                             "weight per layer")
    loss = x.new_zeros(())
    for a, b, w, v in zip(fx, fy, weights, content, strict=True):
        if w:
            loss = loss + float(w) ** 2 * STYLE_SCALE * F.l1_loss(gram(a.float()),
                                                                  gram(b.float()))
        if v:
            loss = loss + float(v) * F.l1_loss(a.float(), b.float())
    return loss


def texture_loss(features: nn.Module, texture: torch.Tensor, patches: torch.Tensor, *,
                 weights: Sequence[float] = (0.0, 5.0, 5.0, 0.0)) -> torch.Tensor:
    """The CGN's L_text: :func:`perceptual_loss` (Gram terms only) between the texture
    mechanism's output and the grid of object patches it should resemble (no gradient
    into ``patches``); default weights are the official ``[0, 5, 5, 0]``."""
    return perceptual_loss(features, texture, patches.detach(), weights=weights)
