"""BigGAN-deep (pytorch-pretrained-biggan) as a :class:`~generators.base.ConditionalGenerator`.

Three ways to get one:

* :func:`load_biggan_dir` -- a folder with ``config.json`` and ``pytorch_model.bin``. The
  weights are loaded with ``torch.load(weights_only=True)`` and a **strict** key check that
  lists missing, unexpected and wrongly shaped tensors (the package itself loads with
  ``strict=False`` and silently ignores them).
* :func:`load_biggan` with a name (``biggan-deep-128/256/512``) -- the files are fetched
  once into ``$CAUSALKIT_DATA/biggan/<name>/`` and later loads make no network call.
* :func:`tiny_biggan` -- a 32x32, 10-class random-weights model for tests and docs, saved
  and reloaded through :func:`load_biggan_dir`.

Truncation and BatchNorm
------------------------
BigGAN-deep's BatchNorms never use batch statistics: each stores means and variances for
``n_stats`` (51) truncations ``0, 0.02, ..., 1`` and the truncation passed to ``forward``
picks them, so an image does not depend on the rest of its batch. The package's
interpolation between two stored truncations weighs them the wrong way round
(``coef * stats[i] + (1 - coef) * stats[i + 1]``, where ``coef`` is the distance from
``i``); the adapter replaces it with linear interpolation. On the 51 stored truncations
(0.02 steps, which includes the usual 0.2, 0.4, 0.5, 1) both agree exactly.
:func:`calibrate_batchnorm_stats` computes such statistics for random-weight models.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

from causalkit.errors import CausalKitError, DataError
from causalkit.io import atomic_write, atomic_write_text, read_json
from causalkit.weights import load_weights
from generators.base import ConditionalGenerator, default_device

__all__ = ["BigGANGenerator", "load_biggan", "load_biggan_dir", "save_biggan",
           "build_biggan", "tiny_config", "tiny_biggan", "save_tiny_biggan",
           "calibrate_batchnorm_stats", "fetch_pretrained", "PRETRAINED",
           "WEIGHTS_NAME", "CONFIG_NAME"]

WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"

_URL = "https://s3.amazonaws.com/models.huggingface.co/biggan/{name}-{file}"
#: Names loadable with :func:`load_biggan`, and the remote file name of each part.
#: Checksums are recorded at first download (the package publishes none); pin them with
#: ``fetch_pretrained(..., sha256={...})`` when you know them.
PRETRAINED = {name: {CONFIG_NAME: "config.json", WEIGHTS_NAME: "pytorch_model.bin"}
              for name in ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")}


# ---------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------
class BigGANGenerator(ConditionalGenerator):
    """A pytorch-pretrained-biggan ``BigGAN`` behind the generator protocol.

    Hookable layers include ``generator.gen_z`` (the affine first layer, input
    ``cat(z, class_embedding)``), ``generator.layers.<i>`` (blocks) and ``embeddings``.

    Parameters
    ----------
    model
        A ``pytorch_pretrained_biggan.BigGAN``; it is put in eval mode and its
        BatchNorms are switched to interpolated stored statistics.
    name
        A description for messages (e.g. the folder it came from).
    device
        Where to run; default CUDA when available.
    """

    def __init__(self, model: nn.Module, name: str = "biggan",
                 device: str | torch.device | None = None) -> None:
        cfg = model.config
        self.module = model.eval()
        self.config = cfg
        self.z_dim = int(cfg.z_dim)
        self.num_classes = int(cfg.num_classes)
        self.image_size = _output_size(cfg)
        self.name = name
        for mod in model.modules():
            if _is_biggan_bn(mod):
                mod.forward = types.MethodType(_stored_stats_forward, mod)
        self.to(device if device is not None else default_device())

    def _forward(self, z: torch.Tensor, onehot: torch.Tensor,
                 truncation: float) -> torch.Tensor:
        # Spectral norm recomputes (and updates) its weights in train mode; keep eval.
        if self.module.training:
            self.module.eval()
        embed = self.module.embeddings(onehot)
        return self.module.generator(torch.cat((z, embed), dim=1), truncation)

    def z_weight(self) -> torch.Tensor:
        """The effective (spectrally normalised) weight of ``gen_z`` on ``z``: (out, z_dim).

        ``gen_z`` is affine in ``cat(z, embedding)``; its first ``z_dim`` columns act on
        ``z``. Used by the exact direction shortcut.
        """
        lin = self.module.generator.gen_z
        w, u, v = lin.weight_orig, lin.weight_u, lin.weight_v
        sigma = torch.dot(u, torch.mv(w, v))
        return (w / sigma)[:, : self.z_dim].detach()

    #: Name of the affine first layer (its input is ``cat(z, embedding)``).
    affine_layer = "generator.gen_z"


def _is_biggan_bn(mod: nn.Module) -> bool:
    return type(mod).__name__ == "BigGANBatchNorm"


def _stats_at(bn: nn.Module, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Stored statistics at ``truncation``, linearly interpolated between grid points."""
    pos = truncation / bn.step_size
    lo = round(pos)
    if abs(pos - lo) > 1e-6:  # off-grid: interpolate (the snap absorbs 0.4/0.02 = 20.0000..4)
        lo = math.floor(pos)
        w = pos - lo
        return ((1 - w) * bn.running_means[lo] + w * bn.running_means[lo + 1],
                (1 - w) * bn.running_vars[lo] + w * bn.running_vars[lo + 1])
    return bn.running_means[lo], bn.running_vars[lo]


def _stored_stats_forward(self: nn.Module, x: torch.Tensor, truncation: float,
                          condition_vector: torch.Tensor | None = None) -> torch.Tensor:
    """BigGANBatchNorm.forward with correct interpolation; never batch statistics."""
    mean, var = _stats_at(self, truncation)
    if self.conditional:
        weight = 1 + self.scale(condition_vector)[:, :, None, None]
        bias = self.offset(condition_vector)[:, :, None, None]
        return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None]
                                                              + self.eps) * weight + bias
    return nn.functional.batch_norm(x, mean, var, self.weight, self.bias, training=False,
                                    momentum=0.0, eps=self.eps)


# ---------------------------------------------------------------------------------------
# Config validation and construction
# ---------------------------------------------------------------------------------------
_REQUIRED = ("z_dim", "channel_width", "num_classes", "layers", "output_dim",
             "attention_layer_position")


def _output_size(cfg: Any) -> int:
    return 4 * 2 ** sum(1 for layer in cfg.layers if layer[0])


def _config_from_dict(raw: dict[str, Any], source: str) -> Any:
    """Validate a BigGAN config dict (the package would silently default missing keys)."""
    from pytorch_pretrained_biggan import BigGANConfig

    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise DataError(f"{source} lacks config keys {missing}; a BigGAN config.json needs "
                        f"{list(_REQUIRED)}")
    cfg = BigGANConfig.from_dict(raw)
    for key in ("z_dim", "channel_width", "num_classes", "n_stats"):
        value = getattr(cfg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"{source}: {key} must be a positive integer, got {value!r}")
    if cfg.n_stats < 2:
        raise DataError(f"{source}: n_stats must be >= 2, got {cfg.n_stats}")
    layers = cfg.layers
    try:
        layers = [(bool(a), int(b), int(c)) for a, b, c in layers]
    except (TypeError, ValueError):
        raise DataError(f"{source}: layers must be a list of [upsample, in, out] triples, "
                        f"got {cfg.layers!r}") from None
    if not layers or layers[0][1] != 16 or layers[-1][2] != 1:
        raise DataError(f"{source}: layers must start with 16 input channel units (gen_z "
                        "makes 16*channel_width) and end with 1 output unit")
    for i, (_, cin, cout) in enumerate(layers):
        if cout not in (cin, cin // 2) or (i and layers[i - 1][2] != cin):
            raise DataError(f"{source}: layer {i} {layers[i]} does not chain: each block "
                            "keeps or halves the channels of the previous one")
    cfg.layers = layers
    if not 0 <= cfg.attention_layer_position <= len(layers):
        raise DataError(f"{source}: attention_layer_position "
                        f"{cfg.attention_layer_position} is outside 0..{len(layers)}")
    pos = cfg.attention_layer_position
    if pos < len(layers) and cfg.channel_width * layers[pos][1] < 8:
        raise DataError(f"{source}: self-attention needs >= 8 channels at position "
                        f"{cfg.attention_layer_position}")
    if _output_size(cfg) != cfg.output_dim:
        raise DataError(f"{source}: output_dim {cfg.output_dim} does not match the "
                        f"{sum(1 for x in layers if x[0])} upsampling layers "
                        f"(which give {_output_size(cfg)})")
    return cfg


def build_biggan(config: dict[str, Any] | Any) -> nn.Module:
    """An (uninitialised-statistics) ``BigGAN`` module from a config dict or object."""
    from pytorch_pretrained_biggan import BigGAN

    raw = config if isinstance(config, dict) else config.to_dict()
    return BigGAN(_config_from_dict(dict(raw), "config"))


# ---------------------------------------------------------------------------------------
# Strict loading and saving
# ---------------------------------------------------------------------------------------
def load_biggan_dir(path: str | os.PathLike,
                    device: str | torch.device | None = None) -> BigGANGenerator:
    """Load a BigGAN from a folder holding ``config.json`` and ``pytorch_model.bin``.

    The config is validated, the weights are read with ``weights_only=True`` and must
    match the model exactly (every key present, none extra, every shape right).

    Raises
    ------
    DataError
        A file is missing or unreadable, or the keys/shapes do not match (the message
        lists them).
    """
    path = Path(path)
    cfg_path, w_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise DataError(f"{p} not found; a BigGAN folder needs {CONFIG_NAME} and "
                            f"{WEIGHTS_NAME} (or pass a name such as biggan-deep-256)")
    raw = read_json(cfg_path, what="BigGAN config",
                    fix="pass the config.json that came with the weights")
    model = build_biggan(_config_from_dict(raw, str(cfg_path)))
    load_weights(model, w_path, what="its config.json",
                 hint="Check that config.json belongs to these weights (e.g. the same "
                 "biggan-deep resolution) and that the file is a BigGAN state dict.")
    return BigGANGenerator(model, name=str(path), device=device)


def save_biggan(model: nn.Module | BigGANGenerator, path: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``pytorch_model.bin`` (atomically) into folder ``path``."""
    module = model.module if isinstance(model, BigGANGenerator) else model
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    atomic_write(path / WEIGHTS_NAME, lambda fh: torch.save(state, fh))
    atomic_write_text(path / CONFIG_NAME, module.config.to_json_string())
    return path


def fetch_pretrained(name: str, *, root: str | os.PathLike | None = None,
                     base_url: str | None = None, sha256: dict[str, str] | None = None,
                     offline: bool = False, progress: bool = True) -> Path:
    """Folder ``<root>/biggan/<name>`` with the named model's files, downloading if absent.

    Once both files are cached this makes no network call. ``base_url`` replaces the
    package's S3 address (files are ``{base_url}/{name}-{config.json|pytorch_model.bin}``).
    """
    from generators.cache import cache_root, cached_file

    if name not in PRETRAINED:
        raise CausalKitError(f"unknown BigGAN {name!r}; choose one of {sorted(PRETRAINED)} "
                             "or give a folder with config.json and pytorch_model.bin")
    folder = Path(root) if root is not None else cache_root()
    folder = folder / "biggan" / name
    for local, remote in PRETRAINED[name].items():
        url = (f"{base_url.rstrip('/')}/{name}-{remote}" if base_url
               else _URL.format(name=name, file=remote))
        cached_file(url, folder / local, sha256=(sha256 or {}).get(local),
                    offline=offline, progress=progress)
    return folder


def load_biggan(name_or_path: str | os.PathLike, device: str | torch.device | None = None,
                **fetch_kwargs: Any) -> BigGANGenerator:
    """Load a BigGAN by name (``biggan-deep-256``; cached, offline once cached) or folder."""
    if str(name_or_path) in PRETRAINED:
        folder = fetch_pretrained(str(name_or_path), **fetch_kwargs)
        gen = load_biggan_dir(folder, device=device)
        gen.name = str(name_or_path)
        return gen
    if not Path(name_or_path).is_dir():
        raise CausalKitError(f"{name_or_path!r} is neither a BigGAN name "
                             f"({', '.join(sorted(PRETRAINED))}) nor an existing folder")
    return load_biggan_dir(name_or_path, device=device)


# ---------------------------------------------------------------------------------------
# Random-weight models: initialisation, per-truncation statistics, the tiny config
# ---------------------------------------------------------------------------------------
#: Singular-value decay of the tiny model's z-block (see :func:`init_random_weights`).
TINY_Z_DECAY = 0.8


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A 32x32, 10-class, z_dim 8, channel_width 4 BigGAN-deep config (for tests/docs)."""
    cfg = dict(output_dim=32, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=10,
               layers=[(True, 16, 8), (True, 8, 4), (True, 4, 2), (False, 2, 1)],
               attention_layer_position=2, eps=1e-4, n_stats=51)
    cfg.update(overrides)
    return cfg


@torch.no_grad()
def init_random_weights(model: nn.Module, seed: int,
                        z_spectrum_decay: float | None = None) -> nn.Module:
    """Seeded random weights for every tensor (no global RNG state is touched).

    Covers ``generator.bn.weight`` / ``bias``, which the package leaves uninitialised
    (``torch.Tensor(n)``), and spectral-norm ``u``/``v`` vectors.

    ``z_spectrum_decay`` (e.g. 0.8) gives the z-block of ``gen_z`` random singular
    vectors with singular values ``decay ** j``. A plain random tall matrix has an almost
    flat spectrum, so its principal directions are not identifiable from samples; trained
    generators have a few dominant directions (GANSpace), and this mimics that.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict(keep_vars=True).items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("running_means", "running_vars"):
            continue  # set by calibrate_batchnorm_stats
        if name == "generator.bn.weight":
            tensor.fill_(1.0)
        elif leaf == "bias" or name == "generator.bn.bias":
            tensor.zero_()
        elif leaf in ("weight_u", "weight_v"):
            v = torch.randn(tensor.shape, generator=gen)
            tensor.copy_(v / v.norm())
        elif leaf == "gamma":  # self-attention gate: small but non-zero so it matters
            tensor.fill_(0.2)
        else:
            fan_in = tensor[0].numel() if tensor.dim() > 1 else tensor.numel()
            tensor.copy_(torch.randn(tensor.shape, generator=gen) / math.sqrt(fan_in))
    if z_spectrum_decay is not None:
        w = model.generator.gen_z.weight_orig
        zd = model.config.z_dim
        left = torch.linalg.qr(torch.randn(w.shape[0], zd, generator=gen))[0]
        right = torch.linalg.qr(torch.randn(zd, zd, generator=gen))[0]
        # Top singular value 1.5x the class block's, so that z, not only y, shapes images.
        top = 1.5 * torch.linalg.matrix_norm(w[:, zd:], ord=2)
        s = top * z_spectrum_decay ** torch.arange(zd, dtype=torch.float32)
        w[:, :zd] = left @ torch.diag(s) @ right.T
    # One power-iteration step so that u and v are consistent with the weights.
    for mod in model.modules():
        if hasattr(mod, "weight_orig") and hasattr(mod, "weight_u"):
            w = mod.weight_orig.reshape(mod.weight_orig.shape[0], -1)
            for _ in range(20):
                mod.weight_v.copy_(nn.functional.normalize(w.t() @ mod.weight_u, dim=0))
                mod.weight_u.copy_(nn.functional.normalize(w @ mod.weight_v, dim=0))
    return model


@torch.no_grad()
def calibrate_batchnorm_stats(model: nn.Module, *, n: int = 256, seed: int = 0) -> nn.Module:
    """Fill every BatchNorm's per-truncation statistics from samples ("standing stats").

    For each stored truncation ``t_i = i / (n_stats - 1)`` one batch of ``n`` latents
    ``t_i * truncnorm(-2, 2)`` with random classes goes through the network; each
    BatchNorm records the mean and variance of its input (after the earlier layers were
    normalised with their new statistics) into slot ``i``. This is how BigGAN's stored
    statistics are produced; random-weight models need it to give non-degenerate images.
    """
    from generators.base import truncated_normal

    cfg = model.config
    model.eval()
    bns = [m for m in model.modules() if _is_biggan_bn(m)]
    gen = torch.Generator().manual_seed(seed)
    z = truncated_normal(n, cfg.z_dim, 1.0, generator=gen)
    y = torch.randint(cfg.num_classes, (n,), generator=gen)
    onehot = nn.functional.one_hot(y, cfg.num_classes).float()
    device = next(model.parameters()).device
    z, onehot = z.to(device), onehot.to(device)
    slot = {"i": 0}

    def recording_forward(self, x, truncation, condition_vector=None):
        i = slot["i"]
        self.running_means[i] = x.mean(dim=(0, 2, 3))
        self.running_vars[i] = x.var(dim=(0, 2, 3), unbiased=False)
        return _stored_stats_forward(self, x, i * self.step_size, condition_vector)

    saved = [m.__dict__.get("forward") for m in bns]
    try:
        for m in bns:
            m.forward = types.MethodType(recording_forward, m)
        for i in range(cfg.n_stats):
            slot["i"] = i
            t = i / (cfg.n_stats - 1)
            cond = torch.cat((z * t, model.embeddings(onehot)), dim=1)
            model.generator(cond, max(t, 1e-6))
    finally:
        for m, f in zip(bns, saved, strict=True):
            if f is None:
                del m.forward
            else:
                m.forward = f
    return model


def save_tiny_biggan(path: str | os.PathLike, seed: int = 0, **overrides: Any) -> Path:
    """Build, initialise (seeded), calibrate and save the tiny BigGAN into folder ``path``."""
    model = build_biggan(tiny_config(**overrides))
    init_random_weights(model, seed, z_spectrum_decay=TINY_Z_DECAY)
    calibrate_batchnorm_stats(model, seed=seed, n=64)
    return save_biggan(model, path)


@functools.lru_cache(maxsize=4)
def _tiny_files(seed: int) -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory(prefix="tiny_biggan_") as tmp:
        save_tiny_biggan(tmp, seed)
        return ((Path(tmp) / CONFIG_NAME).read_bytes(), (Path(tmp) / WEIGHTS_NAME).read_bytes())


def tiny_biggan(seed: int = 0, device: str | torch.device | None = "cpu",
                **overrides: Any) -> BigGANGenerator:
    """The tiny random-weights BigGAN (32x32, 10 classes, z_dim 8), via the strict loader.

    It is saved to a temporary folder and loaded with :func:`load_biggan_dir`, so it
    exercises the same path as real weights. Same seed, same weights.
    """
    with tempfile.TemporaryDirectory(prefix="tiny_biggan_") as tmp:
        if overrides:
            save_tiny_biggan(tmp, seed, **overrides)
        else:  # building (calibration) takes seconds; the saved bytes are cached
            config_bytes, weight_bytes = _tiny_files(seed)
            (Path(tmp) / CONFIG_NAME).write_bytes(config_bytes)
            (Path(tmp) / WEIGHTS_NAME).write_bytes(weight_bytes)
        gen = load_biggan_dir(tmp, device=device)
    gen.name = f"tiny:{seed}"
    return gen


def random_biggan(config: dict[str, Any], seed: int = 0, *, calibrate: bool = True,
                  device: str | torch.device | None = None) -> BigGANGenerator:
    """A random-weights BigGAN of any architecture (e.g. for benchmarks), in memory."""
    model = init_random_weights(build_biggan(config), seed)
    if calibrate:
        calibrate_batchnorm_stats(model, seed=seed, n=64)
    return BigGANGenerator(model, name=f"random:{seed}", device=device)

