"""Transfer generated interventions onto real images: ``T(I, X)`` by feature matching.

GenInt's third stream puts the nuisances of an interventional sample ``X`` onto a real
image ``I`` while keeping ``I``'s content, and labels the result with ``I``'s label.
:func:`style_transfer` does this the optimisation way (Gatys et al., 2016): starting
from ``I``, it runs a few Adam steps on the pixels to minimise

``content_weight * sum_l mse(f_l(out), f_l(I))``  over the content layers, plus
``style_weight * sum_l D(f_l(out), f_l(X))``        over the style layers,

where ``D`` is either the Gram-matrix distance (``"gram"``, equal to an MMD with a
second-order polynomial kernel, Li et al. 2017) or the distance of per-channel means
and standard deviations (``"meanstd"``, an MMD with a linear kernel on normalised
features). Everything is batched and seeded-free (deterministic given its inputs).

The feature network is pluggable: any module whose ``forward`` returns a list of
feature maps. :func:`random_features` builds a seeded random conv net (works offline:
random features capture colour and texture statistics well); :func:`resnet_features`
wraps a :mod:`robust_training.resnet` model whose weights can come from a torchvision
checkpoint file.

The ImageNet transfer: GenInt's own method
------------------------------------------
:func:`statistics_transfer` is the transfer of the official GenInt code
(``IntervenedGAN/style_transfer_int2imgnet.py`` and ``style_transfer_utils.py`` of
``cvlab-columbia/GenInt``), which is Gatys-style optimisation, not AdaIN: no decoder is
trained or needed. Its facts, kept here:

* **Features.** torchvision's VGG19 ``features`` with ImageNet weights, input in
  ``[0, 1]`` normalised by the ImageNet mean and std. The losses read the outputs of the
  first five convolutions *before* their ReLU (the official code makes the ReLUs
  out-of-place and hooks the ``Conv2d`` outputs): style at conv1_1, conv1_2, conv2_1,
  conv2_2, conv3_1 (:data:`VGG19_STYLE_LAYERS`), content at conv2_2 (the official
  ``conv_4``; :data:`VGG19_CONTENT_LAYER`). So only VGG19's first ten modules run.
* **Statistics.** Per-image Gram matrices ``G = F F^T / (C H W)``
  (:func:`~generators.perceptual.gram`), matched by the mean squared error over the
  batch (``F.mse_loss``), plus the mean squared error of the content features:
  ``loss = 1e6 * sum_l mse(G_l(x), G_l(style)) + 0.1 * mse(f(x), f(content))``
  (:data:`STYLE_WEIGHT`, :data:`CONTENT_WEIGHT`).
* **Optimiser.** L-BFGS on the pixels, ``lr=1``, ten iterations per call; the image
  starts as the content image and is clamped to ``[0, 1]`` before every evaluation and
  at the end. The number of steps is drawn per batch, ``random.randint(20, 70)``
  (:data:`OFFICIAL_STEPS`). Here ``steps`` counts evaluations of the loss exactly; the
  official loop (``while run <= num_steps``, ten evaluations per L-BFGS call) rounds a
  count up to the next multiple of ten, e.g. 25 to 30.
* **Images.** 256 x 256 (the official loader shrinks a photo to fit 300 x 300 and cuts
  the central 256 x 256, which pads non-square photos with black; the stage in
  :mod:`robust_training.transfer_stage` resizes the short side to 256 and cuts the
  centre instead), batches of 8 real images of one class, each paired with an
  interventional image drawn from a random class (8 distinct classes per batch), the
  output labelled with the real image's class.

The whole batch is one L-BFGS problem (as in the official batches of 8): its curvature
estimate is shared, so an image's result depends on its batch mates. The stage fixes
the batches by seed, which keeps every output reproducible.

The features are pluggable through :func:`transfer_features`: ``"vgg19:PATH"`` (a
torchvision-layout state dict, strict keys, through :mod:`generators.perceptual`) or
``"random[:SEED]"``, a seeded random conv net that works offline (with a one-line
warning: random features only approximate VGG's statistics).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from causalkit.errors import CausalKitError, DataError
from generators.cache import sha256_file
from generators.perceptual import RandomFeatures, gram, random_features

__all__ = ["RandomFeatures", "random_features", "ResNetFeatures", "resnet_features",
           "gram", "style_distance", "style_transfer", "transfer_pool",
           "TransferFeatures", "transfer_features", "vgg19_transfer_features",
           "statistics_transfer", "VGG19_STYLE_LAYERS", "VGG19_CONTENT_LAYER",
           "STYLE_WEIGHT", "CONTENT_WEIGHT", "OFFICIAL_STEPS", "OFFICIAL_SIZE",
           "OFFICIAL_BATCH", "LBFGS_ITERATIONS"]

#: the official style layers: VGG19's first five convolutions, before their ReLU
VGG19_STYLE_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")
#: the official content layer (``conv_4``: the fourth convolution)
VGG19_CONTENT_LAYER = "conv2_2"
#: the official weights of the Gram term and of the content term
STYLE_WEIGHT = 1e6
CONTENT_WEIGHT = 0.1
#: the official range of L-BFGS evaluations, drawn per batch (``random.randint(20, 70)``)
OFFICIAL_STEPS = (20, 70)
#: the official image size and batch size
OFFICIAL_SIZE = 256
OFFICIAL_BATCH = 8
#: L-BFGS iterations per ``optimizer.step`` call (the official ``max_iter``)
LBFGS_ITERATIONS = 10
#: the random fallback's widths: four stages at full, 1/2, 1/4 and 1/8 resolution
RANDOM_WIDTHS = (32, 64, 128, 256)


class ResNetFeatures(nn.Module):
    """Stem, layer1, layer2, layer3 outputs of a :class:`~robust_training.resnet.ResNet`.

    Inputs in [-1, 1] are mapped to ImageNet normalisation first, as torchvision's
    pretrained weights expect.
    """

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.net = resnet.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        n = self.net
        x = n.relu(n.bn1(n.conv1(x)))
        out = [x]
        for layer in (n.layer1, n.layer2, n.layer3):
            x = layer(x)
            out.append(x)
        return out


def resnet_features(arch: str = "resnet18", weights: str | os.PathLike | None = None
                    ) -> ResNetFeatures:
    """ResNet features, with weights from a torchvision checkpoint file when given."""
    from robust_training.resnet import build_resnet, load_torchvision_weights

    model = build_resnet(arch, num_classes=1000)
    if weights is not None:
        load_torchvision_weights(model, weights)
    return ResNetFeatures(model)


def style_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "gram") -> torch.Tensor:
    """Per-batch mean style distance between feature maps ``a`` and ``b``."""
    if kind == "gram":
        return (gram(a) - gram(b)).pow(2).sum(dim=(1, 2)).mean()
    if kind == "meanstd":
        ma, mb = a.mean(dim=(2, 3)), b.mean(dim=(2, 3))
        sa, sb = a.std(dim=(2, 3)), b.std(dim=(2, 3))
        return ((ma - mb).pow(2) + (sa - sb).pow(2)).mean(dim=1).mean()
    raise CausalKitError(f"unknown style distance {kind!r}; use 'gram' or 'meanstd'")


def style_transfer(content: torch.Tensor, style: torch.Tensor, features: nn.Module, *,
                   steps: int = 20, lr: float = 0.1, content_weight: float = 1e4,
                   style_weight: float = 1e4, content_layers: Sequence[int] = (-1,),
                   style_layers: Sequence[int] | None = None, kind: str = "gram"
                   ) -> torch.Tensor:
    """``T(I, X)``: images with the content of ``content`` and the style of ``style``.

    Parameters
    ----------
    content, style
        Float images in [-1, 1], ``(N, 3, H, W)`` each (paired row by row).
    features
        A module returning a list of feature maps (see :func:`random_features`).
    steps, lr
        Adam steps on the pixels, starting from ``content``.
    content_weight, style_weight
        Weights of the content match and the style match. The defaults (equal weights,
        20 steps of lr 0.1) were picked by eye on double-colored MNIST with random
        features: the background moves most of the way to the style's colour while the
        digit stays legible; a 10x smaller content weight erases thin strokes.
    content_layers, style_layers
        Indices into the feature list (default style: all layers).
    kind
        ``"gram"`` or ``"meanstd"`` (see :func:`style_distance`).

    Returns
    -------
    torch.Tensor
        Detached images in [-1, 1], same shape as ``content``.
    """
    if content.shape != style.shape:
        raise CausalKitError(f"content {tuple(content.shape)} and style "
                             f"{tuple(style.shape)} must have the same shape (paired rows)")
    if steps < 0:
        raise CausalKitError(f"steps must be >= 0, got {steps}")
    with torch.no_grad():
        fc, fs = features(content), features(style)
    style_layers = range(len(fs)) if style_layers is None else style_layers
    out = content.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([out], lr=lr)
    for _ in range(steps):
        fo = features(out)
        c = sum(F.mse_loss(fo[i], fc[i]) for i in content_layers)
        s = sum(style_distance(fo[i], fs[i], kind) for i in style_layers)
        loss = content_weight * c + style_weight * s
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            out.clamp_(-1.0, 1.0)
    return out.detach()


def transfer_pool(real: torch.Tensor, generated: torch.Tensor, features: nn.Module, *,
                  n: int, seed: int = 0, batch_size: int = 256, progress: bool = False,
                  **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair ``n`` random real images with random generated ones and transfer.

    Returns the transferred images (float in [-1, 1]) and the indices of the real images
    used, so the caller labels each output with its real image's label.
    """
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    ri = torch.randint(0, real.shape[0], (n,), generator=g)
    gi = torch.randint(0, generated.shape[0], (n,), generator=g)
    outs = []
    for i in tqdm(range(0, n, batch_size), disable=not progress, desc="transfer"):
        outs.append(style_transfer(real[ri[i:i + batch_size]], generated[gi[i:i + batch_size]],
                                   features, **kwargs))
    return torch.cat(outs), ri


class TransferFeatures(nn.Module):
    """A feature net for :func:`statistics_transfer` and the maps it matches.

    ``net`` maps images in ``[0, 1]`` to a list of feature maps (doing its own input
    normalisation); ``content_layers`` and ``style_layers`` index that list. ``spec``
    and ``digest`` name the features in a run's settings (``digest``: the weights
    file's SHA-256, or ``None`` for seeded random weights).
    """

    def __init__(self, net: nn.Module, *, content_layers: Sequence[int],
                 style_layers: Sequence[int], spec: str, digest: str | None = None) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.content_layers = tuple(int(i) for i in content_layers)
        self.style_layers = tuple(int(i) for i in style_layers)
        if not self.content_layers or not self.style_layers:
            raise CausalKitError("a transfer needs at least one content and one style layer")
        self.spec, self.digest = spec, digest

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(x)


def vgg19_transfer_features(weights: str | os.PathLike | None = None) -> TransferFeatures:
    """The official features: VGG19's conv1_1 .. conv3_1 (before ReLU), content at
    conv2_2. ``weights`` is a torchvision-layout VGG19 state dict (strict keys and
    shapes); ``None`` leaves torch's random initialisation (benchmarks and tests)."""
    from generators.perceptual import vgg_features

    net = vgg_features("vgg19", weights, layers=VGG19_STYLE_LAYERS)
    digest = None if weights is None else sha256_file(weights)
    return TransferFeatures(net, content_layers=(VGG19_STYLE_LAYERS.index(VGG19_CONTENT_LAYER),),
                            style_layers=range(len(VGG19_STYLE_LAYERS)),
                            spec="vgg19" if weights is None else f"vgg19:{weights}",
                            digest=digest)


_WARNED: set[str] = set()


def transfer_features(spec: str = "random") -> TransferFeatures:
    """The features a spec names: ``"vgg19:PATH"`` (GenInt's; a torchvision-layout state
    dict) or ``"random[:SEED]"`` (offline fallback; prints a warning once per process).

    The random net (:class:`~generators.perceptual.RandomFeatures`, widths 32, 64, 128,
    256) matches the statistics of all four of its stages and the content at its second
    (half resolution, where VGG19's conv2_2 is).
    """
    if not isinstance(spec, str):
        raise CausalKitError(f"transfer features spec must be a string, got {spec!r}; use "
                             "'vgg19:PATH' or 'random[:SEED]'")
    name, _, arg = spec.partition(":")
    if name == "random":
        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise CausalKitError(f"random features take an integer seed ('random:0'), got "
                                 f"{arg!r}") from None
        if "random" not in _WARNED:
            _WARNED.add("random")
            print("warning: no VGG19 weights given; the transfer uses random features (a "
                  "texture-statistics stand-in). Pass 'vgg19:PATH' for GenInt's transfer.",
                  file=sys.stderr)
        return TransferFeatures(random_features(seed, RANDOM_WIDTHS), content_layers=(1,),
                                style_layers=range(len(RANDOM_WIDTHS)), spec=f"random:{seed}")
    if name == "vgg19":
        if not arg:
            raise CausalKitError("vgg19 needs a weights file: 'vgg19:PATH' (torchvision's "
                                 "vgg19 state dict), or use 'random' offline")
        if not Path(arg).is_file():
            raise DataError(f"vgg19 weights file {arg} does not exist; pass the path of "
                            "torchvision's vgg19 state dict (vgg19-dcbb9e9d.pth)")
        return vgg19_transfer_features(arg)
    raise CausalKitError(f"unknown transfer features {spec!r}; use 'vgg19:PATH' or "
                         "'random[:SEED]'")


def statistics_transfer(content: torch.Tensor, style: torch.Tensor,
                        features: TransferFeatures | str = "random", *, steps: int = 50,
                        content_weight: float = CONTENT_WEIGHT,
                        style_weight: float = STYLE_WEIGHT, lr: float = 1.0,
                        history_size: int = 100, device: torch.device | str | None = None
                        ) -> torch.Tensor:
    """GenInt's transfer: ``content`` re-rendered with the feature statistics of ``style``.

    Parameters
    ----------
    content, style
        Float images in ``[-1, 1]``, ``(B, 3, H, W)`` each, paired row by row.
    features
        A :class:`TransferFeatures` or a spec for :func:`transfer_features`.
    steps
        Evaluations of the loss (and L-BFGS updates), in calls of ten iterations; the
        official code draws 20..70 per batch. ``0`` returns ``content``.
    content_weight, style_weight
        The official 0.1 and 1e6 by default (see the module docstring).
    lr, history_size
        L-BFGS's step size and memory (torch's defaults are the official ones).
    device
        Where the optimisation runs (default: ``content``'s device); the whole batch
        is optimised at once.

    Returns
    -------
    torch.Tensor
        Detached images in ``[-1, 1]`` on ``device``, the shape of ``content``.
    """
    if content.ndim != 4 or content.shape[1] != 3 or content.shape != style.shape:
        raise CausalKitError(f"content {tuple(content.shape)} and style "
                             f"{tuple(style.shape)} must be RGB batches (B, 3, H, W) of one "
                             "shape, paired row by row")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise CausalKitError(f"steps must be an integer >= 0, got {steps!r}")
    if isinstance(features, str):
        features = transfer_features(features)
    if not isinstance(features, TransferFeatures):
        raise CausalKitError(f"features must be a TransferFeatures or a spec string, got "
                             f"{type(features).__name__}; use transfer_features('vgg19:PATH')")
    device = content.device if device is None else torch.device(device)
    net = features.to(device)
    x0 = (content.detach().to(device, torch.float32) + 1) / 2
    s0 = (style.detach().to(device, torch.float32) + 1) / 2
    if steps == 0:
        return x0.clamp(0, 1) * 2 - 1
    with torch.no_grad():
        fc, fs = net(x0), net(s0)
        content_targets = [fc[i] for i in features.content_layers]
        style_targets = [gram(fs[i]) for i in features.style_layers]
    del fc, fs
    x = x0.clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=lr, max_iter=LBFGS_ITERATIONS, history_size=history_size)
    evals = 0

    def closure() -> torch.Tensor:
        nonlocal evals
        with torch.no_grad():
            x.clamp_(0, 1)
        opt.zero_grad(set_to_none=False)
        maps = net(x)
        style_loss = sum(F.mse_loss(gram(maps[i]), t)
                         for i, t in zip(features.style_layers, style_targets, strict=True))
        content_loss = sum(F.mse_loss(maps[i], t)
                           for i, t in zip(features.content_layers, content_targets,
                                           strict=True))
        loss = style_weight * style_loss + content_weight * content_loss
        loss.backward()
        evals += 1
        return loss

    while evals < steps:
        group = opt.param_groups[0]
        group["max_iter"] = min(LBFGS_ITERATIONS, steps - evals)
        group["max_eval"] = group["max_iter"] * 5 // 4
        opt.step(closure)
    with torch.no_grad():
        x.clamp_(0, 1)
    return (x.detach() * 2 - 1)
