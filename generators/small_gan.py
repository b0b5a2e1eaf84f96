"""A small class-conditional GAN for 3x32x32 images, trainable on a CPU.

It lets the GenInt pipeline (directions, strategies, interventional training) run end to
end offline, e.g. on double-colored MNIST. The network is DCGAN-like:

* ``embeddings`` -- a bias-free linear map of the one-hot class to a class embedding
  (so soft labels work as weighted embeddings);
* ``gen_z`` -- the **affine first layer** on ``cat(z, embedding)``, as in BigGAN, so the
  GANSpace SVD shortcut applies: its output is ``W_z z + (W_y e(y) + b)`` and the top
  principal directions of its activations in z-space are the top right singular vectors
  of the z-block ``W_z = gen_z.weight[:, :z_dim]``;
* ``blocks.<i>`` -- upsample, 3x3 convolution, conditional BatchNorm (a class-dependent
  scale and bias), leaky ReLU (4 -> 8 -> 16 -> 32 pixels); with ``block_latent``, BigGAN's
  hierarchical latent: ``z`` is cut into four equal chunks, the first feeds ``gen_z`` and
  chunk ``i + 1`` joins the embedding in block ``i``'s scale and bias, so the noise
  reaches the late, colour-setting layers as the class does, and an edit of the last
  chunk changes those layers alone;
* ``to_rgb`` -- a 3x3 convolution and tanh.

BatchNorm keeps training stable (without it, short runs collapsed to one colour); the
generator is used in eval mode only, with running statistics that
:func:`calibrate_batchnorm` recomputes as exact averages over many batches after
training, so an image never depends on the rest of its batch. :class:`SmallGANGenerator` wraps the
network behind the :class:`~generators.base.ConditionalGenerator` protocol;
:func:`save_small_gan` / :func:`load_small_gan` store it as a directory
(``config.json`` + ``generator.pt``) with a strict key check.

Examples
--------
>>> g = build_small_gan(SmallGANConfig(z_dim=8, ngf=8), seed=0)
>>> z = g.sample_noise(2, truncation=0.7, seed=1)
>>> g(z, [3, 4], truncation=0.7).shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write, atomic_write_text, read_json
from causalkit.weights import load_weights
from generators.base import ConditionalGenerator, default_device

__all__ = ["SmallGANConfig", "SmallGANNet", "SmallGANGenerator", "build_small_gan",
           "save_small_gan", "load_small_gan", "calibrate_batchnorm", "chunk_sensitivity",
           "register", "load_spec",
           "CONFIG_NAME", "WEIGHTS_NAME", "AFFINE_LAYER"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "generator.pt"
#: Chunks of ``z`` under ``block_latent``: one for ``gen_z``, one per block.
LATENT_CHUNKS = 4
#: Name of the affine first layer (input ``cat(z, class embedding)``).
AFFINE_LAYER = "gen_z"


@dataclass(frozen=True)
class SmallGANConfig:
    """Architecture of the small GAN.

    Attributes
    ----------
    z_dim
        Latent size.
    num_classes
        Number of classes.
    emb_dim
        Size of the class embedding concatenated to ``z``.
    ngf
        Width: the 4x4 base has ``4 * ngf`` channels, then ``2 * ngf``, ``ngf``,
        ``ngf // 2`` after the three upsampling blocks.
    image_size
        Output side; fixed at 32 (three doublings of 4).
    block_latent
        BigGAN's hierarchical latent: ``z`` (``z_dim`` divisible by 4) is cut into four
        chunks, one for ``gen_z`` and one per block, whose norms are conditioned on
        ``cat(embedding, chunk)``. Without it ``z`` enters only the first layer while the
        class sets every block's scale and bias, so the class, not the noise, decides
        late features such as colour, and latent interventions can hardly move them.
    """

    z_dim: int = 32
    num_classes: int = 10
    emb_dim: int = 16
    ngf: int = 32
    image_size: int = 32
    block_latent: bool = False

    def __post_init__(self) -> None:
        for f in ("z_dim", "num_classes", "emb_dim", "ngf"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise CausalKitError(f"SmallGANConfig.{f} must be a positive int, got {v!r}")
        if self.ngf < 2:
            raise CausalKitError(f"SmallGANConfig.ngf must be >= 2, got {self.ngf}")
        if not isinstance(self.block_latent, bool):
            raise CausalKitError(f"SmallGANConfig.block_latent must be a bool, got "
                                 f"{self.block_latent!r}")
        if self.block_latent and self.z_dim % LATENT_CHUNKS:
            raise CausalKitError(f"block_latent cuts z into {LATENT_CHUNKS} chunks; z_dim="
                                 f"{self.z_dim} is not divisible by {LATENT_CHUNKS}")
        if self.image_size != 32:
            raise CausalKitError(f"the small GAN makes 32x32 images; got image_size="
                                 f"{self.image_size} (use 32)")

    @property
    def first_layer_z(self) -> int:
        """How many leading entries of ``z`` feed ``gen_z`` (all without block_latent)."""
        return self.z_dim // LATENT_CHUNKS if self.block_latent else self.z_dim

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SmallGANConfig:
        """Build from a dict, refusing unknown keys (they signal a different model)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"unknown small-GAN config keys {unknown}; expected a subset "
                            f"of {sorted(known)}")
        return cls(**d)


class CondBlock(nn.Module):
    """Upsample x2, conv 3x3, conditional BatchNorm (scale/bias from ``cond``), leaky ReLU."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(cout, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * cout)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        gamma, beta = self.affine(cond)[:, :, None, None].chunk(2, dim=1)
        return F.leaky_relu(h * (1.0 + gamma) + beta, 0.2)


class SmallGANNet(nn.Module):
    """The generator network ``(z, onehot) -> image`` in [-1, 1]."""

    def __init__(self, config: SmallGANConfig) -> None:
        super().__init__()
        self.config = config
        c0, ngf = 4 * config.ngf, config.ngf
        self.embeddings = nn.Linear(config.num_classes, config.emb_dim, bias=False)
        self.gen_z = nn.Linear(config.first_layer_z + config.emb_dim, c0 * 16)
        self.norm0 = nn.BatchNorm2d(c0)
        widths = [c0, 2 * ngf, ngf, max(ngf // 2, 1)]
        cond = config.emb_dim + (config.z_dim // LATENT_CHUNKS if config.block_latent else 0)
        self.blocks = nn.ModuleList(CondBlock(a, b, cond)
                                    for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        emb = self.embeddings(onehot)
        if self.config.block_latent:
            chunks = z.chunk(LATENT_CHUNKS, dim=1)
            conds = [torch.cat([emb, c], dim=1) for c in chunks[1:]]
        else:
            chunks, conds = (z,), [emb] * len(self.blocks)
        h = self.gen_z(torch.cat([chunks[0], emb], dim=1))
        h = F.leaky_relu(self.norm0(h.view(z.shape[0], -1, 4, 4)), 0.2)
        for block, cond in zip(self.blocks, conds, strict=True):
            h = block(h, cond)
        return torch.tanh(self.to_rgb(h))


class SmallGANGenerator(ConditionalGenerator):
    """The small GAN behind the generator protocol.

    Hookable layers: ``embeddings``, ``gen_z`` (the affine first layer), ``norm0``,
    ``blocks.<i>`` (and their ``conv`` / ``affine``), ``to_rgb``.

    Parameters
    ----------
    net
        A :class:`SmallGANNet`; it is put in eval mode.
    name
        A description for messages (e.g. the folder it came from).
    device
        Where to run; default CUDA when available.
    """

    #: The affine first layer, for the directions' SVD shortcut.
    affine_layer = AFFINE_LAYER

    def __init__(self, net: SmallGANNet, name: str = "small-gan",
                 device: str | torch.device | None = None) -> None:
        self.module = net.eval()
        self.config = net.config
        self.z_dim = net.config.z_dim
        self.num_classes = net.config.num_classes
        self.image_size = net.config.image_size
        self.name = name
        self.module.to(device if device is not None else default_device())

    def _forward(self, z: torch.Tensor, onehot: torch.Tensor,
                 truncation: float) -> torch.Tensor:
        # The truncation only scales the noise; this network has no per-truncation stats.
        return self.module(z, onehot)

    def z_weight(self) -> torch.Tensor:
        """The weight of the affine first layer on ``z`` (a copy, ``(out, z_dim)``).

        With ``block_latent`` only the first chunk reaches ``gen_z``; the columns of the
        other chunks are zero.
        """
        first = self.config.first_layer_z
        w = torch.zeros(self.module.gen_z.out_features, self.z_dim)
        w[:, :first] = self.module.gen_z.weight[:, :first].detach().cpu()
        return w


@torch.no_grad()
def calibrate_batchnorm(net: SmallGANNet, *, batches: int = 50, batch_size: int = 256,
                        seed: int = 0) -> SmallGANNet:
    """Recompute the BatchNorm running statistics as exact averages over fresh samples.

    The statistics of the (EMA) weights are what eval mode needs; the running averages
    collected during training belong to older weights. Draws ``batches`` batches of
    truncation-1 noise and uniform classes (seeded) and returns ``net`` in eval mode.
    """
    from generators.base import truncated_normal

    cfg = net.config
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = exact mean over the batches
    gen = torch.Generator().manual_seed(seed)
    dev = next(net.parameters()).device
    net.train()
    for _ in range(batches):
        z = truncated_normal(batch_size, cfg.z_dim, 1.0, generator=gen).to(dev)
        y = torch.randint(0, cfg.num_classes, (batch_size,), generator=gen)
        net(z, F.one_hot(y, cfg.num_classes).float().to(dev))
    for m in bns:
        m.momentum = 0.1
    return net.eval()


@torch.no_grad()
def chunk_sensitivity(generator: SmallGANGenerator, *, n: int = 500, seed: int = 0,
                      batch_size: int = 250) -> list[float]:
    """How much each chunk of ``z`` moves the image, for a ``block_latent`` small GAN.

    For ``n`` seeded latents (truncation 1, classes ``0, 1, ..., 9, 0, ...``) each chunk
    in turn is replaced by fresh noise; the result is the mean absolute pixel change
    (images in [-1, 1]) per chunk, first chunk (``gen_z``) first. A chunk near zero is
    ignored by the network, and latent directions inside it cannot intervene on anything.
    """
    from generators.base import truncated_normal

    cfg = generator.config
    if not cfg.block_latent:
        raise CausalKitError(f"{generator.name} has no block_latent chunks: z reaches only "
                             "the first layer")
    if n < 1 or batch_size < 1:
        raise CausalKitError(f"n and batch_size must be positive, got {n} and {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    z = truncated_normal(n, cfg.z_dim, 1.0, generator=gen)
    fresh = truncated_normal(n, cfg.z_dim, 1.0, generator=gen)
    y = [i % cfg.num_classes for i in range(n)]
    size = cfg.z_dim // LATENT_CHUNKS
    totals = [0.0] * LATENT_CHUNKS
    for lo in range(0, n, batch_size):
        zb, yb = z[lo:lo + batch_size], y[lo:lo + batch_size]
        base = generator.generate(zb, yb, truncation=1.0)
        for k in range(LATENT_CHUNKS):
            zk = zb.clone()
            zk[:, k * size:(k + 1) * size] = fresh[lo:lo + batch_size, k * size:(k + 1) * size]
            moved = generator.generate(zk, yb, truncation=1.0)
            totals[k] += float((moved - base).abs().mean(dim=(1, 2, 3)).sum())
    return [t / n for t in totals]


def build_small_gan(config: SmallGANConfig | None = None, *, seed: int = 0,
                    device: str | torch.device | None = None) -> SmallGANGenerator:
    """A randomly initialised small GAN (seeded: same seed, same weights)."""
    config = config or SmallGANConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallGANNet(config)
    return SmallGANGenerator(net, name="small-gan(random)", device=device)


def save_small_gan(generator: SmallGANGenerator | SmallGANNet, folder: str | os.PathLike,
                   extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` and ``generator.pt`` (state dict) into ``folder`` atomically.

    ``extra`` (JSON-serialisable, e.g. training provenance) is stored under
    ``"provenance"`` in the config file and ignored by the loader.
    """
    net = generator.module if isinstance(generator, SmallGANGenerator) else generator
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    atomic_write(folder / WEIGHTS_NAME, lambda fh: torch.save(state, fh))
    cfg: dict[str, Any] = {"model": "small-gan", **asdict(net.config)}
    if extra:
        cfg["provenance"] = extra
    atomic_write_text(folder / CONFIG_NAME, json.dumps(cfg, indent=2) + "\n")
    return folder


def load_small_gan(folder: str | os.PathLike, *,
                   device: str | torch.device | None = None) -> SmallGANGenerator:
    """Load a small GAN saved by :func:`save_small_gan` (strict keys, weights only)."""
    folder = Path(folder).expanduser()
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise DataError(f"{p} not found: a small-GAN directory holds {CONFIG_NAME} and "
                            f"{WEIGHTS_NAME} (train one with generators.small_gan_train)")
    fix = "save the generator again with save_small_gan (or retrain it)"
    cfg = read_json(cfg_path, what="small-GAN config", fix=fix)
    if cfg.pop("model", "small-gan") != "small-gan":
        raise DataError(f"{cfg_path} does not describe a small GAN; pass a folder written "
                        "by save_small_gan")
    cfg.pop("provenance", None)
    try:
        config = SmallGANConfig.from_dict(cfg)
        net = SmallGANNet(config)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise DataError(f"small-GAN config {cfg_path} is malformed "
                        f"({' '.join(str(exc).split())}); {fix}") from None
    load_weights(net, w_path, hint="Check that config.json belongs to these weights.")
    return SmallGANGenerator(net, name=f"small:{folder}", device=device)


def load_spec(arg: str, device: torch.device | str | None = None) -> SmallGANGenerator:
    """Loader for the generator registry: ``small:DIR`` -> :func:`load_small_gan`."""
    if not arg:
        raise CausalKitError("small needs a folder: small:DIR (a directory written by "
                             "save_small_gan, e.g. runs/small_gan/generator)")
    return load_small_gan(arg, device=device)


def register() -> None:
    """Register the ``small`` scheme in :mod:`generators.registry` (``small:DIR``).

    The registry can also list it lazily with the entry
    ``"small": "generators.small_gan:load_spec"``.
    """
    from generators.registry import register_generator

    register_generator("small", "generators.small_gan:load_spec", replace=True)
