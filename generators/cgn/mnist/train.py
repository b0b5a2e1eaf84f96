"""Training of the MNIST CGN: resumable, logged, seeded.

``train_cgn(images, labels, config, out)`` trains a :class:`MnistCGN` against real
images with the LSGAN loss, the binary-entropy mask loss, the mask-size hinge and the
pretrained-free texture loss. Everything it writes lives under ``out``:

* ``checkpoint.pt``  -- generator, discriminator, optimisers, iteration and every random
  state, written atomically every ``checkpoint_every`` iterations; a new call with the
  same ``out`` resumes from it, and a run killed at any point and resumed ends with the
  same parameters as an uninterrupted run;
* ``log.jsonl``      -- one JSON line per ``log_every`` iterations: the losses, the mean
  mask value and the fraction of mask pixels above 0.5 (a collapsed mask shows as a mean
  near 0 or 1);
* ``samples/iter_XXXXXX.png`` -- grids (rows: image, mask, foreground, background; one
  column per class) from a fixed noise, every ``sample_every`` iterations;
* ``generator.pt``   -- the final generator state_dict (``checkpoint.load_generator``);
* ``encoder.pt``     -- with ``lambda_recon > 0``, the encoder's state_dict
  (:func:`generators.cgn.mnist.encoder.load_encoder`), for counterfactuals of real images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from causalkit import resume
from causalkit.errors import CausalKitError
from causalkit.io import atomic_write, load_torch
from causalkit.logs import append_record, cut_log
from causalkit.precision import autocast, check_precision
from causalkit.weights import as_state_dict, check_state_dict
from generators.base import default_device
from generators.cgn.mnist.colour import colour_histograms, colour_posterior
from generators.cgn.mnist.discriminator import make_discriminator
from generators.cgn.mnist.encoder import MnistCGNEncoder, kl_standard_normal
from generators.cgn.mnist.losses import (
    RandomTextureLoss,
    binary_entropy_loss,
    contrast_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mask_border_loss,
    mask_posterior_loss,
    mask_size_loss,
    mask_tv_loss,
)
from generators.cgn.mnist.matching import best_shift
from generators.cgn.mnist.model import CGNOutput, MnistCGN
from generators.images import save_grid, to_float

__all__ = ["CGNTrainConfig", "VARIANT_PRESETS", "RECIPES", "preset", "train_cgn"]


@dataclass(frozen=True)
class CGNTrainConfig:
    """Hyper-parameters of a CGN training run (defaults: the colored-MNIST preset).

    ``lambda_mask`` weighs the binary-entropy loss, ``lambda_size`` the mask-size hinge
    (``tau``), ``lambda_texture`` the random-feature texture loss (0 disables it, for the
    ablation). ``lambda_recon`` > 0 adds an encoder and the VAE-GAN reconstruction term
    of :mod:`generators.cgn.mnist.encoder` (per-pixel squared error plus ``beta_kl`` times the
    KL divergence per pixel; ``nef`` is the encoder width); ``recon_pool`` > 1 compares
    ``k x k`` average-pooled images there, and ``lambda_tv`` weighs the mask's total
    variation (both for textured data, where the texture mechanisms cannot match a
    texture's phase pixel by pixel). ``recon_features`` > 0 adds a phase-free
    reconstruction term: the locally pooled responses of the texture loss's random
    filters, so a composite must put the right *kind* of texture (stripes, veins) in
    each place, not only the right colour. ``recon_match`` = K > 0 infers the texture
    mechanisms' discrete noise in the reconstruction: of K prior draws per class and
    every cyclic shift, the one that best explains the image
    (:mod:`generators.cgn.mnist.matching`), so a stripe is compared with the observed stripe
    at its best alignment. ``recon_colour`` > 0 weighs a target for the abducted
    mask: each pixel's posterior of coming from the foreground texture, given the
    colour histograms of prior draws of both texture mechanisms for the image's class
    (:mod:`generators.cgn.mnist.colour`). ``shape_init`` names a CGN ``generator.pt`` (same width)
    whose shape mechanism and label embedding this run starts from, e.g. a CGN trained
    on another variant of the same digits: the masks then begin as digits, and the
    reconstruction only has to place them. ``iterations`` counts generator/discriminator
    update pairs.
    """

    iterations: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    lr_d: float | None = None  # discriminator learning rate; None = lr
    beta1: float = 0.5
    beta2: float = 0.999
    disc: str = "linear"
    ndf: int = 0  # 0 = the discriminator's default width
    ngf: int = 32  # generator width; 32 = the official one (and its checkpoints)
    init_type: str = "orthogonal"
    init_gain: float = 0.1
    lambda_mask: float = 0.1
    lambda_size: float = 1.0
    tau: float = 0.1
    mask_max: float | None = None  # upper bound of the size hinge; None = 1 - tau
    lambda_border: float = 0.0  # weight of the mask-border prior (0 = the paper)
    lambda_contrast: float = 0.0  # weight of the figure-ground contrast hinge (0 = paper)
    lambda_tv: float = 0.0  # weight of the mask's total variation (0 = the paper)
    bg_warmup: int = 0  # first iterations in which only the background rebuilds the image
    norm_lr_mult: float = 1.0  # learning-rate factor of the generator's BatchNorm shifts
    lambda_texture: float = 1.0
    lambda_recon: float = 0.0  # 0 = the paper's purely adversarial training
    recon_pool: int = 1  # reconstruct avg-pooled images (k x k): shape, not texture detail
    recon_features: float = 0.0  # weight of the local texture-energy reconstruction term
    recon_match: int = 0  # > 0: abduct the textures' draw (of this many per class) and shift
    recon_colour: float = 0.0  # weight of the abducted mask's colour-posterior target
    shape_init: str = ""  # a CGN generator.pt whose shape mechanism starts this run
    shape_lr_mult: float = 1.0  # lr factor of f_shape (0 = frozen; label_emb still trains)
    beta_kl: float = 0.1
    nef: int = 32
    #: "fp32", or "bf16": forward passes under bfloat16 autocast (causalkit.precision)
    precision: str = "fp32"
    seed: int = 0
    log_every: int = 25
    sample_every: int = 500
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "log_every", "sample_every",
                     "checkpoint_every", "recon_pool"):
            if getattr(self, name) < 1:
                raise CausalKitError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("recon_features", "shape_lr_mult", "recon_match", "recon_colour"):
            if not getattr(self, name) >= 0:
                raise CausalKitError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_precision(self.precision)


#: prior draws per class for the colour histograms of ``recon_colour`` when
#: ``recon_match`` (whose draws it reuses) is off
COLOUR_DRAWS = 8

#: per-variant settings taken from the official configs (discriminator, init, mask weight)
VARIANT_PRESETS: dict[str, dict[str, Any]] = {
    "colored": dict(disc="linear", init_type="orthogonal", init_gain=0.1, lambda_mask=0.1),
    "double-colored": dict(disc="linear", init_type="orthogonal", init_gain=0.2,
                           lambda_mask=0.3),
    "wildlife": dict(disc="conv", init_type="normal", init_gain=0.03, lambda_mask=0.3),
}


#: training recipes on top of a variant preset. "paper": the official losses and learning
#: rate (~47k iterations). "fast": adds the encoder's reconstruction term
#: (generators.cgn.mnist.encoder), a 5x generator learning rate with 10x on the BatchNorm
#: shifts (which alone set the mean colours), a size hinge capping the mask at half the
#: image, a frame-is-background prior (both against the inverted mask) and a
#: figure-ground contrast hinge (against both textures dying black). With a random mask
#: the composite is symmetric in foreground and background, and many classes settled
#: on the inverted solution; ``bg_warmup`` first lets the background mechanism alone
#: rebuild the images, so it learns the ground before the mask and the foreground
#: start, which breaks the symmetry the right way round. About 1k iterations on a CPU.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "fast": dict(lambda_recon=10.0, lr=1e-3, lr_d=2e-4, mask_max=0.5, norm_lr_mult=10.0,
                 lambda_border=1.0, lambda_contrast=1.0, bg_warmup=100),
}


def preset(variant: str, recipe: str = "paper", **overrides: Any) -> CGNTrainConfig:
    """The config of ``variant`` ("colored", "double-colored", "wildlife") under
    ``recipe`` (a key of :data:`RECIPES`), with overrides."""
    if variant not in VARIANT_PRESETS:
        raise CausalKitError(f"unknown variant {variant!r}; choose one of "
                             f"{sorted(VARIANT_PRESETS)}")
    if recipe not in RECIPES:
        raise CausalKitError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    unknown = sorted(set(overrides) - set(config_fields()))
    if unknown:
        raise CausalKitError(f"CGNTrainConfig has no field(s) {unknown}; fields are "
                             f"{config_fields()}")
    return replace(CGNTrainConfig(),
                   **{**VARIANT_PRESETS[variant], **RECIPES[recipe], **overrides})


def _epoch_perm(n: int, seed: int, epoch: int) -> torch.Tensor:
    # a pure function of (seed, epoch): resuming needs no data-order state
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _batch_indices(n: int, batch: int, seed: int, it: int) -> torch.Tensor:
    per_epoch = max(1, n // batch)
    epoch, pos = divmod(it, per_epoch)
    return _epoch_perm(n, seed, epoch)[pos * batch:(pos + 1) * batch]


def _grid(cgn: MnistCGN, seed: int, n_classes: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 12345)
    was_training = cgn.training
    cgn.eval()
    with torch.no_grad():
        out = cgn(torch.arange(n_classes, device=cgn.device), generator=g)
    cgn.train(was_training)
    return torch.cat([out.image, out.mask.expand(-1, 3, -1, -1) * 2 - 1,
                      out.foreground, out.background]).cpu()


def _generator_groups(cgn: MnistCGN, enc: nn.Module | None,
                      config: CGNTrainConfig) -> list[dict[str, Any]]:
    # A BatchNorm shift alone sets each texture's mean colour, and Adam moves a
    # parameter by about lr per step: at lr 2e-4 a black background needs ~10k steps.
    # norm_lr_mult lets those shifts move faster (not the scales: large scales saturate
    # the tanh, and a saturated texture gets no gradient back).
    # shape_lr_mult scales the shape mechanism's rate (0 freezes a shape_init'ed one).
    shifts = {id(m.bias) for m in cgn.modules() if isinstance(m, nn.BatchNorm2d)}
    shape = {id(p) for p in cgn.f_shape.parameters()}
    split_shape = config.shape_lr_mult != 1.0  # else the groups of older checkpoints
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in list(cgn.parameters()) + (list(enc.parameters()) if enc is not None else []):
        groups.setdefault((id(p) in shifts, split_shape and id(p) in shape), []).append(p)
    return [{"params": ps, "lr": config.lr * (config.norm_lr_mult if is_shift else 1.0)
             * (config.shape_lr_mult if in_shape else 1.0)}
            for (is_shift, in_shape), ps in groups.items()]


def _mask_losses(out: CGNOutput, config: CGNTrainConfig,
                 prefix: str = "") -> dict[str, torch.Tensor]:
    mask = out.mask
    losses = {
        "mask_entropy": config.lambda_mask * binary_entropy_loss(mask),
        "mask_size": config.lambda_size * mask_size_loss(mask, config.tau, config.mask_max),
    }
    if config.lambda_border:
        losses["mask_border"] = config.lambda_border * mask_border_loss(mask)
    if config.lambda_tv:
        losses["mask_tv"] = config.lambda_tv * mask_tv_loss(mask)
    if config.lambda_contrast:
        losses["contrast"] = config.lambda_contrast * contrast_loss(out.foreground,
                                                                    out.background)
    return {prefix + k: v for k, v in losses.items()}


def _recon_losses(cgn: MnistCGN, enc: MnistCGNEncoder, texture: RandomTextureLoss,
                  x: torch.Tensor, y: torch.Tensor, config: CGNTrainConfig,
                  gen: torch.Generator, warmup: bool = False) -> dict[str, torch.Tensor]:
    # rebuild real images from their inferred noise; the mask losses apply here too
    mu, logvar = enc(x, y)
    u = list(enc.sample(mu, logvar, gen).unbind(1))
    u += [cgn.sample_noise(len(x), gen) for _ in range(3 - len(u))]  # prior for the rest
    # the colour target alone needs no draws in the warm-up, where it is off
    use_colour = bool(config.recon_colour) and not warmup
    draws = config.recon_match or (COLOUR_DRAWS if use_colour else 0)
    if draws:
        classes, slot = torch.unique(y, return_inverse=True)
        banks = _texture_draws(cgn, classes, draws, gen)
    if config.recon_match:
        out = _matched_output(cgn, x, y, u[0], banks, slot, warmup)
    else:
        out = cgn(y, u=tuple(u), generator=gen)
    pixels = x[0].numel()

    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # On textured data (Wildlife) the texture mechanisms cannot match the phase of a
        # stripe, so a pixel-wise error makes the mask follow dark texture pixels
        # instead of the digit; pooled images compare the shape and the mean colours.
        k = config.recon_pool
        return F.mse_loss(F.avg_pool2d(a, k), F.avg_pool2d(b, k)) if k > 1 else F.mse_loss(a, b)

    if warmup:  # the background mechanism alone explains the image (see bg_warmup)
        return {"recon": config.lambda_recon * mse(out.background, x)}
    losses = {
        "recon": config.lambda_recon * (mse(out.image, x)
                                        + config.beta_kl * kl_standard_normal(mu, logvar)
                                        / pixels),
        **_mask_losses(out, config, prefix="recon_"),
    }
    if config.recon_features:
        losses["recon_features"] = (config.lambda_recon * config.recon_features
                                    * F.mse_loss(_texture_energy(texture, out.image),
                                                 _texture_energy(texture, x)))
    if use_colour:
        fg, bg = (colour_histograms(images) for _, images in banks)
        losses["recon_colour"] = config.recon_colour * mask_posterior_loss(
            out.mask, colour_posterior(x, fg[slot], bg[slot]))
    return losses


def _texture_draws(cgn: MnistCGN, classes: torch.Tensor, k: int,
                   gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # k prior draws per class of the texture and the background mechanism, unshifted
    # and without gradients: [(noise (G, k, D), images (G, k, C, H, W))] for each
    out = []
    for net in (cgn.texture, cgn.background):
        noise = cgn.sample_noise(len(classes) * k, gen).view(len(classes), k, -1)
        with torch.no_grad():
            images = net(classes.repeat_interleave(k), noise.flatten(0, 1))
        out.append((noise, images.view(len(classes), k, *images.shape[1:])))
    return out


def _matched_output(cgn: MnistCGN, x: torch.Tensor, y: torch.Tensor, u_shape: torch.Tensor,
                    banks: list[tuple[torch.Tensor, torch.Tensor]], slot: torch.Tensor,
                    warmup: bool) -> CGNOutput:
    # abduct the textures' discrete noise: of the prior draws per class and mechanism
    # (_texture_draws; image i is of class slot[i]) and all cyclic shifts, the one that
    # best explains the image where that mechanism shows (generators.cgn.mnist.matching);
    # then recompute only that draw with gradients. The draws are shared by the
    # images of a class: k per class, not per image, is what keeps the search at a
    # fraction of an iteration's cost.
    mask = cgn.shape(y, u_shape)
    weight = torch.zeros_like(mask) if warmup else mask.detach()
    picked = []
    for net, w, (noise, bank) in zip((cgn.texture, cgn.background), (weight, 1 - weight),
                                     banks, strict=True):
        index, offsets = best_shift(x, bank, w, slot=slot)
        picked.append(net(y, noise[slot, index.to(x.device)], offsets))
    return CGNOutput(mask, *picked)


def _init_shape(cgn: MnistCGN, path: str, ngf: int) -> None:
    if not Path(path).is_file():
        raise CausalKitError(f"shape_init: {path} is not a file; give a CGN generator.pt")
    state = as_state_dict(load_torch(path, what="shape_init"), source=f"shape_init {path}")

    def shape_part(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v for k, v in sd.items() if k.split(".")[0] in ("f_shape", "label_emb")}

    keep = shape_part(state)
    check_state_dict(shape_part(cgn.state_dict()), keep, source=f"shape_init {path}",
                     what="this CGN's shape mechanism", hint=f"Was it trained with ngf={ngf}?")
    cgn.load_state_dict(keep, strict=False)


def _texture_energy(texture: RandomTextureLoss, x: torch.Tensor) -> torch.Tensor:
    # rectified responses of the random filters, averaged over 4 x 4 windows: which
    # kind of texture is where, without the phase a shifted texture cannot match
    return F.avg_pool2d(texture.features(x)[0], 4, stride=2, padding=1)


def train_cgn(images: torch.Tensor, labels: torch.Tensor, config: CGNTrainConfig,
              out: str | os.PathLike, *, device: str | torch.device | None = None,
              progress: bool = True,
              callback: Callable[[int], None] | None = None) -> tuple[MnistCGN, list[dict]]:
    """Train (or resume training) a CGN on real images.

    Parameters
    ----------
    images : uint8 tensor (N, 3, 32, 32)
        Real training images at rest (converted to [-1, 1] per batch).
    labels : int tensor (N,)
        Their class labels (0..9), the conditioning of the discriminator.
    config : CGNTrainConfig
        Hyper-parameters; see :func:`preset` for the per-variant ones.
    out : path
        Run folder (checkpoint, log, sample grids). An existing checkpoint there is
        resumed; its config must equal ``config``.
    device : str or torch.device, optional
        Defaults to CUDA when available.
    progress : bool
        Show a tqdm bar.
    callback : callable(iteration), optional
        Called after each completed iteration (tests use it to simulate a kill).

    Returns
    -------
    (MnistCGN, list of dict)
        The trained generator (eval mode) and the log records of the whole run.
    """
    from causalkit.progress import postfix
    from causalkit.progress import progress as progress_bar

    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise CausalKitError(f"images must be uint8 (N, 3, 32, 32), got {images.dtype} "
                             f"{tuple(images.shape)}; convert with generators.images")
    if len(labels) != len(images):
        raise CausalKitError(f"{len(images)} images but {len(labels)} labels")
    if len(images) < config.batch_size:
        raise CausalKitError(f"need at least batch_size={config.batch_size} images, "
                             f"got {len(images)}")
    device = torch.device(device) if device is not None else default_device()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "checkpoint.pt", out / "log.jsonl"
    labels = torch.as_tensor(labels).long()

    torch.manual_seed(config.seed)  # dropout draws from the global stream; saved below
    cgn = MnistCGN(ngf=config.ngf, init_type=config.init_type, init_gain=config.init_gain,
                   seed=config.seed).to(device)
    disc = make_discriminator(config.disc, ndf=config.ndf or None).to(device)
    texture = RandomTextureLoss(seed=config.seed).to(device)
    enc = (MnistCGNEncoder(cgn.n_classes, cgn.latent_dim, config.nef, seed=config.seed)
           .to(device) if config.lambda_recon else None)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(_generator_groups(cgn, enc, config), betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr_d or config.lr, betas=betas)
    gen = torch.Generator().manual_seed(config.seed)  # noise, labels, shuffling
    start, history = 0, []

    # a field added after the checkpoint was written counts as its default
    state = resume.load_checkpoint(ckpt_path, config=asdict(config), what="another config",
                                   defaults=asdict(CGNTrainConfig()))
    if state is not None:
        cgn.load_state_dict(state["generator"])
        if enc is not None:
            enc.load_state_dict(state["encoder"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["gen_state"])
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and "cuda_rng" in state:
            torch.cuda.set_rng_state_all(list(state["cuda_rng"]))
        start = int(state["iteration"])
    elif config.shape_init:  # a resumed run has its own shape mechanism already
        _init_shape(cgn, config.shape_init, config.ngf)
    # drop log lines written after the checkpoint (or by a run killed before its first
    # one) and a line torn by the kill
    history = cut_log(log_path, start, key="iteration")

    def save_checkpoint(it: int) -> None:
        state = {
            "config": asdict(config), "iteration": it,
            "generator": cgn.state_dict(), "discriminator": disc.state_dict(),
            **({"encoder": enc.state_dict()} if enc is not None else {}),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "gen_state": gen.get_state(), "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        resume.save_checkpoint(ckpt_path, state)

    cgn.train()
    disc.train()
    gen_params = [p for group in opt_g.param_groups for p in group["params"]]
    disc_params = list(disc.parameters())
    # Without random layers the discriminator scores the same fakes identically in
    # both steps, so its step reuses the generator step's forward (a third of its cost
    # on Wildlife MNIST); with dropout it draws a fresh forward, as it always did.
    reuse_fake = not any(isinstance(m, nn.Dropout) for m in disc.modules())
    amp = autocast(device, config.precision)  # forward passes only; backward follows them
    bar = progress_bar(range(start, config.iterations), initial=start,
                       total=config.iterations, enabled=progress, desc="CGN")
    t0 = time.perf_counter()
    for it in bar:
        idx = _batch_indices(len(images), config.batch_size, config.seed, it)
        x_real = to_float(images[idx]).to(device)
        y_real = labels[idx].to(device)
        y_gen = torch.randint(0, cgn.n_classes, (config.batch_size,), generator=gen).to(device)

        # generator step: one shared u for the three mechanisms, as the official training
        warmup = enc is not None and it < config.bg_warmup
        with amp:
            out_g = cgn(y_gen, generator=gen)
            x_gen = out_g.image
            d_fake = None if warmup else disc(x_gen, y_gen)
            losses = {} if warmup else {
                "adv": lsgan_generator_loss(d_fake),
                **_mask_losses(out_g, config),
            }
            if config.lambda_texture and not warmup:
                losses["texture"] = config.lambda_texture * texture(x_gen, x_real)
            if enc is not None:
                losses.update(_recon_losses(cgn, enc, texture, x_real, y_real, config, gen,
                                            warmup))
        opt_g.zero_grad(set_to_none=True)
        # inputs=: the discriminator's weights get no gradient from the generator's loss
        sum(losses.values()).backward(inputs=gen_params,
                                      retain_graph=reuse_fake and d_fake is not None)
        opt_g.step()

        # discriminator step (the real batch first: the order of the dropout draws)
        with amp:
            d_real = disc(x_real, y_real)
            if d_fake is None or not reuse_fake:
                d_fake = disc(x_gen.detach(), y_gen)
            d_loss = lsgan_discriminator_loss(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward(inputs=disc_params)  # never into the generator's graph
        opt_d.step()
        del d_fake, d_real  # frees the retained generator graph

        done = it + 1
        if done % config.log_every == 0 or done == config.iterations:
            mask = out_g.mask.detach()
            rec = {"iteration": done, "d": d_loss.item(),
                   **{k: v.item() for k, v in losses.items()},
                   "mask_mean": float(mask.mean()),
                   "mask_above_half": float((mask > 0.5).float().mean()),
                   "seconds": round(time.perf_counter() - t0, 3)}
            history.append(rec)
            with open(log_path, "a") as fh:
                append_record(fh, rec)
            # the adversarial loss starts after the background warm-up: shown from then
            bar.set_postfix(postfix(d=rec["d"], adv=rec.get("adv"), mask=rec["mask_mean"]))
        if done % config.sample_every == 0 or done == config.iterations:
            save_grid(_grid(cgn, config.seed, 10), out / "samples" / f"iter_{done:06d}.png",
                      nrow=10, upscale=2)
        if done % config.checkpoint_every == 0 or done == config.iterations:
            save_checkpoint(done)
        if callback is not None:
            callback(done)
    bar.close()
    atomic_write(out / "generator.pt", lambda fh: torch.save(cgn.state_dict(), fh))
    if enc is not None:
        atomic_write(out / "encoder.pt", lambda fh: torch.save(enc.eval().state_dict(), fh))
    return cgn.eval(), history


def config_fields() -> list[str]:
    """Names of the :class:`CGNTrainConfig` fields (for CLIs)."""
    return [f.name for f in fields(CGNTrainConfig)]
