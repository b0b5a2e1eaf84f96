"""The U^2-Net salient-object detector (Qin et al., Pattern Recognition 2020) in torch.

U^2-Net is a U-Net of U-Nets. Each of its eleven stages is a *residual U-block*
``RSU-L``: a small encoder-decoder of depth ``L`` whose output is added to its own
input convolution, so every stage sees both local detail and a wide context. The
outer U has six encoder stages (``stage1`` ... ``stage6``, halving the resolution
between them with ceil-mode max pooling) and five decoder stages (``stage5d`` ...
``stage1d``) that read the upsampled stage below concatenated with the encoder stage
of the same size. Six 3x3 side convolutions turn ``stage1d ... stage5d, stage6`` into
one-channel logits ``d1 ... d6``, each upsampled bilinearly to the input size, and a
1x1 convolution fuses them into ``d0``; ``sigmoid(d0)`` is the saliency map.

Two sizes share the structure: the full ``u2net`` (44.0 M parameters, stage widths 64
to 512) and the small ``u2netp`` (1.1 M parameters, every stage 64 wide with 16-channel
inner layers).

Every convolution of an RSU is a ``REBNCONV``: 3x3 convolution (dilated in the
deepest layers), batch norm, ReLU. The module and attribute names here are the
authors' (``model/u2net.py`` of xuebinqin/U-2-Net), so the state dict of a
:class:`U2Net` has exactly the keys of the authors' ``u2net.pth`` / ``u2netp.pth``
(``stage1.rebnconvin.conv_s1.weight``, ``stage1.rebnconvin.bn_s1.running_mean``,
..., ``side1.weight``, ``outconv.bias``). ``U2Net(kind, batch_norm=False)`` replaces
each batch norm by the identity: the layout of an exported model whose batch norms are
folded into the convolution biases, as in the ``u2netp.onnx`` of rembg
(:func:`generators.u2net.onnx_weights.load_u2net_onnx`); :meth:`U2Net.fold_batch_norm`
turns a trained model into that form (same outputs in eval mode, fewer operations).

Upsampling inside the network goes to the *size* of the tensor it is joined with
(bilinear, ``align_corners=False``), as the authors' current code and the exported
ONNX model do; so any input height and width works, not only multiples of 32.

Input and output
----------------
:meth:`U2Net.forward` takes float RGB in ``[0, 1]``, shape ``(B, 3, H, W)``, and
preprocesses it the way the authors' ``data_loader.ToTensorLab`` (and rembg, for the
ONNX model) do: each image is divided by its own maximum, then normalised per
channel with the ImageNet mean ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224,
0.225)``. It returns ``sigmoid(d0)``, ``(B, 1, H, W)`` in ``[0, 1]``, at the input's
size; nothing is resized. The authors trained and test at 320 x 320:
:func:`generators.u2net.saliency` resizes to that size and back, differentiably.
:meth:`U2Net.forward_raw` skips the preprocessing (the official CGN feeds BigGAN's raw
``[-1, 1]`` output that way), and :meth:`U2Net.side_logits` returns all seven logits.
Every operation is differentiable, so a loss on the saliency trains whatever drew the
input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from causalkit.errors import CausalKitError

__all__ = ["U2Net", "RSU", "RSU4F", "REBNCONV", "KINDS", "IMAGENET_MEAN", "IMAGENET_STD",
           "preprocess"]

#: the ImageNet statistics the authors normalise with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: (depth or "4F", inner width, output width) per stage; the input width follows
_STAGES = {
    "u2net": {
        "stage1": (7, 32, 64), "stage2": (6, 32, 128), "stage3": (5, 64, 256),
        "stage4": (4, 128, 512), "stage5": ("4F", 256, 512), "stage6": ("4F", 256, 512),
        "stage5d": ("4F", 256, 512), "stage4d": (4, 128, 256), "stage3d": (5, 64, 128),
        "stage2d": (6, 32, 64), "stage1d": (7, 16, 64),
    },
    "u2netp": {
        "stage1": (7, 16, 64), "stage2": (6, 16, 64), "stage3": (5, 16, 64),
        "stage4": (4, 16, 64), "stage5": ("4F", 16, 64), "stage6": ("4F", 16, 64),
        "stage5d": ("4F", 16, 64), "stage4d": (4, 16, 64), "stage3d": (5, 16, 64),
        "stage2d": (6, 16, 64), "stage1d": (7, 16, 64),
    },
}
#: the two architectures
KINDS = tuple(_STAGES)
_ENCODER = ("stage1", "stage2", "stage3", "stage4", "stage5", "stage6")
_DECODER = ("stage5d", "stage4d", "stage3d", "stage2d", "stage1d")


def _up_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class REBNCONV(nn.Module):
    """3x3 convolution (dilation ``dirate``), batch norm (or identity), ReLU."""

    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1, *,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.relu_s1 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """The residual U-block RSU-``depth`` (``depth`` in 4..7).

    ``rebnconvin`` maps the input to ``out_ch`` channels; ``rebnconv1 ...
    rebnconv{depth-1}`` form the encoder (max pooling between them), ``rebnconv{depth}``
    (dilation 2) the bottom, ``rebnconv{depth-1}d ... rebnconv1d`` the decoder; the
    block returns ``decoder output + rebnconvin(x)``.
    """

    def __init__(self, depth: int, in_ch: int, mid_ch: int, out_ch: int, *,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.depth = depth
        bn = {"batch_norm": batch_norm}
        self.rebnconvin = REBNCONV(in_ch, out_ch, **bn)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, **bn)
        for i in range(2, depth):
            setattr(self, f"rebnconv{i}", REBNCONV(mid_ch, mid_ch, **bn))
        setattr(self, f"rebnconv{depth}", REBNCONV(mid_ch, mid_ch, 2, **bn))
        for i in range(depth - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(2 * mid_ch, mid_ch, **bn))
        self.rebnconv1d = REBNCONV(2 * mid_ch, out_ch, **bn)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        skips, hx = [], hxin
        for i in range(1, self.depth):
            hx = getattr(self, f"rebnconv{i}")(hx)
            skips.append(hx)
            if i < self.depth - 1:
                hx = self.pool(hx)
        hx = getattr(self, f"rebnconv{self.depth}")(hx)
        for i in range(self.depth - 1, 0, -1):
            skip = skips[i - 1]
            hx = getattr(self, f"rebnconv{i}d")(torch.cat((_up_like(hx, skip), skip), 1))
        return hx + hxin


class RSU4F(nn.Module):
    """RSU-4 without pooling: dilations 1, 2, 4, 8 down and 4, 2, 1 up (full resolution)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, *,
                 batch_norm: bool = True) -> None:
        super().__init__()
        bn = {"batch_norm": batch_norm}
        self.rebnconvin = REBNCONV(in_ch, out_ch, **bn)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, 1, **bn)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, 2, **bn)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, 4, **bn)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, 8, **bn)
        self.rebnconv3d = REBNCONV(2 * mid_ch, mid_ch, 4, **bn)
        self.rebnconv2d = REBNCONV(2 * mid_ch, mid_ch, 2, **bn)
        self.rebnconv1d = REBNCONV(2 * mid_ch, out_ch, 1, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        return self.rebnconv1d(torch.cat((hx2d, hx1), 1)) + hxin


def preprocess(x: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """The authors' input normalisation of ``x`` in ``[0, 1]``: ``x / max(x)`` per image,
    then ``(x - mean) / std`` per channel with the ImageNet statistics."""
    peak = x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(eps)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x / peak - mean) / std


class U2Net(nn.Module):
    """U^2-Net (``kind="u2net"``) or its small version (``kind="u2netp"``).

    Parameters
    ----------
    kind : {"u2net", "u2netp"}
        The architecture.
    batch_norm : bool
        ``False`` builds the folded layout (no batch-norm layers; the convolutions'
        biases carry them), the layout of the exported ONNX model.
    """

    def __init__(self, kind: str = "u2netp", *, batch_norm: bool = True) -> None:
        super().__init__()
        if kind not in _STAGES:
            raise CausalKitError(f"unknown U^2-Net kind {kind!r}; use one of {list(KINDS)}")
        self.kind, self.batch_norm = kind, batch_norm
        widths, cin = _STAGES[kind], 3
        for name in _ENCODER:
            cin = self._stage(name, widths[name], cin)
        for name, skip in zip(_DECODER, _ENCODER[-2::-1], strict=True):
            self._stage(name, widths[name], cin + widths[skip][2])
            cin = widths[name][2]
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        for i, name in enumerate(("stage1d", "stage2d", "stage3d", "stage4d", "stage5d",
                                  "stage6"), start=1):
            setattr(self, f"side{i}", nn.Conv2d(widths[name][2], 1, 3, padding=1))
        self.outconv = nn.Conv2d(6, 1, 1)

    def _stage(self, name: str, spec: tuple, in_ch: int) -> int:
        depth, mid, out = spec
        bn = {"batch_norm": self.batch_norm}
        block = RSU4F(in_ch, mid, out, **bn) if depth == "4F" else RSU(depth, in_ch, mid,
                                                                        out, **bn)
        setattr(self, name, block)
        return out

    def side_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The fused logits ``d0`` and the side logits ``d1 ... d6``, each (B, 1, H, W),
        of an input ``x`` that is already preprocessed."""
        _check_input(x)
        feats, hx = [], x
        for i, name in enumerate(_ENCODER):
            hx = getattr(self, name)(hx if i == 0 else self.pool(hx))
            feats.append(hx)
        decoded, hx = [], feats[-1]
        for name, skip in zip(_DECODER, feats[-2::-1], strict=True):
            hx = getattr(self, name)(torch.cat((_up_like(hx, skip), skip), 1))
            decoded.append(hx)
        # side outputs read stage1d, stage2d, ..., stage5d, stage6
        sources = decoded[::-1] + [feats[-1]]
        d1 = self.side1(sources[0])
        sides = [d1] + [_up_like(getattr(self, f"side{i}")(sources[i - 1]), d1)
                        for i in range(2, 7)]
        d0 = self.outconv(torch.cat(sides, 1))
        return (d0, *sides)

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(d0)`` of ``x`` as given, without the input normalisation."""
        return torch.sigmoid(self.side_logits(x)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The saliency ``(B, 1, H, W)`` in ``[0, 1]`` of RGB images ``x`` in ``[0, 1]``."""
        _check_input(x)
        return self.forward_raw(preprocess(x))

    @torch.no_grad()
    def fold_batch_norm(self) -> U2Net:
        """A copy without batch norm whose convolutions absorb the running statistics.

        In eval mode it computes the same function (up to float rounding)."""
        if not self.batch_norm:
            raise CausalKitError("this U^2-Net has no batch norm to fold")
        folded = U2Net(self.kind, batch_norm=False).to(next(self.parameters()).device)
        state = {}
        for name, module in self.named_modules():
            if isinstance(module, REBNCONV):
                bn, conv = module.bn_s1, module.conv_s1
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                state[f"{name}.conv_s1.weight"] = conv.weight * scale.view(-1, 1, 1, 1)
                state[f"{name}.conv_s1.bias"] = (conv.bias - bn.running_mean) * scale + bn.bias
        for key, value in self.state_dict().items():
            if ".bn_s1." not in key and key not in state:
                state[key] = value
        folded.load_state_dict(state, strict=True)
        return folded.train(self.training)


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise CausalKitError(f"U^2-Net input must be (B, 3, H, W) RGB, got {shape}; "
                             "repeat a grey image to 3 channels")
    if not x.is_floating_point():
        raise CausalKitError(f"U^2-Net input must be float in [0, 1], got {x.dtype}; "
                             "divide uint8 images by 255")
