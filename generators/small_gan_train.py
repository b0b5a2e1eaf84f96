"""Training the small class-conditional GAN (:mod:`generators.small_gan`).

Hinge loss, a spectrally normalised projection discriminator (Miyato & Koyama, 2018) and
an exponential moving average (EMA) of the generator's weights, which is what gets saved
and sampled from: on short CPU runs the EMA generator is markedly cleaner than the raw one.

The run lives in one folder::

    OUT/state.pt         full training state (G, D, EMA, optimisers, RNG, iteration),
                         written atomically every ``checkpoint_every`` iterations
    OUT/log.jsonl        one JSON line per ``log_every`` iterations (losses, seconds)
    OUT/samples/*.png    a class-by-seed sample grid of the EMA generator
    OUT/generator/       the EMA generator as config.json + generator.pt (loadable with
                         :func:`generators.small_gan.load_small_gan`)

Calling :func:`train_small_gan` again on the same folder resumes from ``state.pt``;
because the data order and the noise come from a :class:`torch.Generator` whose state is
checkpointed, a resumed run continues the same stream.

Command line (double-colored MNIST, rho = 0.9)::

    python -m generators.small_gan_train --out runs/small_gan --iters 3000
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from causalkit.errors import CausalKitError, DataError
from causalkit.logs import append_record, cut_log
from causalkit.resume import load_checkpoint, save_checkpoint
from generators.base import default_device, truncated_normal
from generators.images import save_grid, to_float
from generators.small_gan import (
    LATENT_CHUNKS,
    SmallGANConfig,
    SmallGANNet,
    calibrate_batchnorm,
    save_small_gan,
)

__all__ = ["ProjectionDiscriminator", "TrainConfig", "train_small_gan", "sample_grid",
           "hinge_d_loss", "hinge_g_loss", "mode_seeking_loss", "load_training_data"]


class ProjectionDiscriminator(nn.Module):
    """Spectrally normalised conv net with a class projection head.

    ``D(x, y) = w . phi(x) + <E y, phi(x)>``, where ``phi`` sums the last feature map
    over space: the projection term makes the critic judge ``p(x | y)``, not ``p(x)``.
    """

    def __init__(self, num_classes: int = 10, ndf: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(3, ndf, 3, padding=1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(ndf, ndf, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(ndf, 2 * ndf, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * ndf, 4 * ndf, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
        )
        self.linear = spectral_norm(nn.Linear(4 * ndf, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, 4 * ndf))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        phi = self.features(x).sum(dim=(2, 3))
        return self.linear(phi).squeeze(1) + (self.embed(y) * phi).sum(dim=1)


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """``-mean(D(fake))``."""
    return -d_fake.mean()


def mode_seeking_loss(x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor,
                      z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MSGAN's regulariser (Mao et al., 2019): ``1 / (mean|x1 - x2| / mean|z1 - z2| + eps)``.

    Small when images of the same class move with ``z``; without it short runs collapsed
    to one image per class, leaving no within-class nuisance variation to steer.
    """
    ratio = (x1 - x2).abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (ratio + eps)


def _chunk_mode_seeking(g: SmallGANNet, fake: torch.Tensor, z1: torch.Tensor,
                        z2: torch.Tensor, y: torch.Tensor, nc: int,
                        gen: torch.Generator) -> torch.Tensor:
    """The mode-seeking term for one block's chunk of ``z`` alone.

    A trained block-latent GAN left its block chunks unused: the first chunk already gave
    all the diversity the critic asks for. Here ``z1`` takes chunk ``k`` (one of the
    blocks', drawn per step) from ``z2``, and the images must move with that chunk.
    The chunk starts with no effect (the norms' affine maps are zero-initialised), where
    MSGAN's ``eps = 1e-5`` would give a loss of 1e5 and a gradient of 1e10 that leaves
    Adam's second moments inflated for thousands of steps; ``eps = 0.1`` caps them at 10
    and 100.
    """
    k = int(torch.randint(1, LATENT_CHUNKS, (1,), generator=gen))
    size = z1.shape[1] // LATENT_CHUNKS
    part = slice(k * size, (k + 1) * size)
    z_swap = z1.clone()
    z_swap[:, part] = z2[:, part]
    swapped = g(z_swap, F.one_hot(y, nc).float())
    return mode_seeking_loss(fake, swapped, z1[:, part], z_swap[:, part], eps=0.1)


@dataclass
class TrainConfig:
    """Hyper-parameters of a small-GAN run (stored in the state and in the log)."""

    model: dict[str, Any] = field(default_factory=lambda: asdict(SmallGANConfig()))
    ndf: int = 32
    iters: int = 3000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    ema: float = 0.999
    mode_seeking: float = 0.1
    chunk_mode_seeking: float = 0.0
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 250
    sample_every: int = 500
    max_minutes: float | None = None
    calib_batches: int = 50

    def __post_init__(self) -> None:
        for f in ("iters", "batch_size", "log_every", "checkpoint_every", "sample_every"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise CausalKitError(f"TrainConfig.{f} must be a positive int, got {v!r}")
        if not 0.0 <= self.ema < 1.0:
            raise CausalKitError(f"TrainConfig.ema must be in [0, 1), got {self.ema}")
        self.betas = tuple(self.betas)
        if self.chunk_mode_seeking < 0:
            raise CausalKitError(f"TrainConfig.chunk_mode_seeking must be >= 0, got "
                                 f"{self.chunk_mode_seeking}")
        if self.chunk_mode_seeking > 0 and not self.model.get("block_latent"):
            raise CausalKitError("TrainConfig.chunk_mode_seeking needs a block_latent model "
                                 "(it asks each block's chunk of z to move the image); set "
                                 "model block_latent=True (--block-latent) or use 0")


@torch.no_grad()
def sample_grid(net: SmallGANNet, path: str | Path, *, per_class: int = 8, seed: int = 0,
                truncation: float = 1.0) -> Path:
    """Save a PNG grid: one row per class, ``per_class`` seeded samples per row."""
    cfg = net.config
    gen = torch.Generator().manual_seed(seed)
    z = truncated_normal(per_class, cfg.z_dim, truncation, generator=gen)
    z = z.repeat(cfg.num_classes, 1)  # the same noise in every row: shows class vs z
    y = torch.arange(cfg.num_classes).repeat_interleave(per_class)
    dev = next(net.parameters()).device
    x = net(z.to(dev), F.one_hot(y, cfg.num_classes).float().to(dev)).cpu()
    return save_grid(x, path, nrow=per_class, upscale=2)


#: TrainConfig fields that do not change the training trajectory (free to change on resume).
_FREE = ("iters", "max_minutes", "log_every", "checkpoint_every", "sample_every",
         "calib_batches")


def _state(it, g, d, ema, opt_g, opt_d, gen, config) -> dict[str, Any]:
    return {"iteration": it, "g": g.state_dict(), "d": d.state_dict(), "ema": ema.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "rng": gen.get_state(), "config": json.dumps(asdict(config))}


def train_small_gan(images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                    out: str | Path, *, device: str | torch.device = "cpu",
                    progress: bool = True, provenance: dict[str, Any] | None = None,
                    stop_after: int | None = None) -> dict[str, Any]:
    """Train (or resume) a small GAN on uint8 ``images`` ``(N, 3, 32, 32)`` and ``labels``.

    Parameters
    ----------
    images, labels
        The training set: uint8 NCHW images and int labels in ``[0, num_classes)``.
    config
        Hyper-parameters; a resumed run must use the same ones (checked).
    out
        The run folder (see the module docstring).
    device
        Where to train.
    progress
        Show a tqdm progress bar.
    provenance
        JSON-serialisable facts about the data, stored with the saved generator.
    stop_after
        Checkpoint and return once this many iterations are done (no generator is
        exported unless the run is complete); a later call resumes.

    Returns
    -------
    dict
        ``iterations``, ``seconds`` (this call), ``generator_dir`` and the last losses.
    """
    from causalkit.progress import progress as progress_bar

    images, labels = torch.as_tensor(images), torch.as_tensor(labels).long()
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, 32, 32):
        raise DataError(f"images must be uint8 (N, 3, 32, 32), got {images.dtype} "
                        f"{tuple(images.shape)}")
    mcfg = SmallGANConfig.from_dict(config.model)
    if labels.shape != (images.shape[0],) or int(labels.min()) < 0 or \
            int(labels.max()) >= mcfg.num_classes:
        raise DataError(f"labels must be {images.shape[0]} ints in [0, {mcfg.num_classes})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)  # initial weights only; the run's stream is `gen` below
    g, d = SmallGANNet(mcfg).to(device), ProjectionDiscriminator(mcfg.num_classes,
                                                                  config.ndf).to(device)
    ema = SmallGANNet(mcfg).to(device)
    ema.load_state_dict(g.state_dict())
    ema.requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=config.betas)
    gen = torch.Generator().manual_seed(config.seed)
    start_it = 0
    state_path = out / "state.pt"
    # Fields added later take their defaults, so states written before them still resume.
    st = load_checkpoint(state_path, config=asdict(config), what="a different TrainConfig",
                         defaults=asdict(TrainConfig()), free=_FREE,
                         hint="only iters, max_minutes and the logging intervals may change")
    if st is not None:
        g.load_state_dict(st["g"])
        d.load_state_dict(st["d"])
        ema.load_state_dict(st["ema"])
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        gen.set_state(st["rng"])
        start_it = int(st["iteration"])

    n, bs, nc = images.shape[0], config.batch_size, mcfg.num_classes
    t0 = time.perf_counter()
    last: dict[str, float] = {}
    end = config.iters if stop_after is None else min(config.iters, stop_after)
    bar = progress_bar(range(start_it, end), initial=start_it, total=config.iters,
                       enabled=progress, desc="small-gan")
    # the log ends where the checkpoint does: no iteration twice, no torn line
    cut_log(out / "log.jsonl", start_it, key="iteration")
    log_fh = open(out / "log.jsonl", "a")
    it = start_it
    try:
        for it in bar:
            idx = torch.randint(0, n, (bs,), generator=gen)
            real = to_float(images[idx]).to(device)
            y = labels[idx].to(device)
            z = truncated_normal(bs, mcfg.z_dim, 1.0, generator=gen).to(device)
            yf = torch.randint(0, nc, (bs,), generator=gen).to(device)
            oh = F.one_hot(yf, nc).float()
            # Discriminator step.
            with torch.no_grad():
                fake = g(z, oh)
            loss_d = hinge_d_loss(d(real, y), d(fake, yf))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # Generator step: fresh noise; the two halves share labels, so the
            # mode-seeking term can ask that different z give different images.
            z = truncated_normal(bs, mcfg.z_dim, 1.0, generator=gen).to(device)
            half = bs // 2
            yg = torch.cat([yf[:half], yf[:half], yf[2 * half:]])
            fake = g(z, F.one_hot(yg, nc).float())
            loss_g = hinge_g_loss(d(fake, yg))
            if config.mode_seeking > 0 and half > 0:
                loss_g = loss_g + config.mode_seeking * mode_seeking_loss(
                    fake[:half], fake[half:2 * half], z[:half], z[half:2 * half])
            if config.chunk_mode_seeking > 0 and half > 0:
                loss_g = loss_g + config.chunk_mode_seeking * _chunk_mode_seeking(
                    g, fake[:half], z[:half], z[half:2 * half], yg[:half], nc, gen)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            with torch.no_grad():
                for pe, pg in zip(ema.parameters(), g.parameters(), strict=True):
                    pe.lerp_(pg, 1.0 - config.ema)
            done = it + 1
            last = {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}
            if done % config.log_every == 0:
                rec = {"iteration": done, **last,
                       "seconds": round(time.perf_counter() - t0, 2)}
                append_record(log_fh, rec)
                bar.set_postfix(d=f"{last['loss_d']:.3f}", g=f"{last['loss_g']:.3f}")
            if done % config.sample_every == 0:
                preview = calibrate_batchnorm(copy.deepcopy(ema), seed=config.seed,
                                              batches=max(1, config.calib_batches // 5))
                sample_grid(preview, out / "samples" / f"iter_{done:06d}.png",
                            seed=config.seed)
            stop = (config.max_minutes is not None
                    and time.perf_counter() - t0 > 60.0 * config.max_minutes)
            if done % config.checkpoint_every == 0 or done == end or stop:
                save_checkpoint(state_path, _state(done, g, d, ema, opt_g, opt_d, gen, config))
            if stop:
                it = done
                break
        else:
            it = max(end, start_it)
    finally:
        log_fh.close()
        bar.close()
    if it < config.iters and stop_after is not None:
        return {"iterations": it, "seconds": round(time.perf_counter() - t0, 2), **last}
    gdir = out / "generator"
    calibrate_batchnorm(ema, batches=config.calib_batches, seed=config.seed)
    save_small_gan(ema.cpu(), gdir, extra={"iterations": it, "train_config": asdict(config),
                                           **(provenance or {})})
    sample_grid(ema, out / "samples" / "final.png", seed=config.seed)
    return {"iterations": it, "seconds": round(time.perf_counter() - t0, 2),
            "generator_dir": str(gdir), **last}


def load_training_data(variant: str = "double-colored-mnist", *, rho: float = 0.9,
                       seed: int = 0, source: str | None = None, n: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The training split of a :mod:`causalkit.datasets` variant as uint8 images + labels."""
    from causalkit.datasets import build_split

    split = build_split(variant, "train", rho=rho, seed=seed, source=source, n=n,
                        cache=False)  # building takes seconds; avoids stale caches
    meta = {"variant": variant, "rho": rho, "data_seed": seed,
            "source": split.meta.get("source_name"), "n": len(split)}
    return torch.from_numpy(split.images), torch.from_numpy(split.labels), meta


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--variant", default="double-colored-mnist")
    p.add_argument("--rho", type=float, default=0.9)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--source", default=None, help="MNIST source, e.g. mnist:DIR")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ngf", type=int, default=24)
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--z-dim", type=int, default=32)
    p.add_argument("--block-latent", action="store_true",
                   help="BigGAN's hierarchical latent: one chunk of z per block's norm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--mode-seeking", type=float, default=0.1)
    p.add_argument("--chunk-mode-seeking", type=float, default=0.0,
                   help="with --block-latent: weight of a mode-seeking term per block chunk")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--device", default=str(default_device()))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    images, labels, meta = load_training_data(a.variant, rho=a.rho, seed=a.data_seed,
                                              source=a.source)
    model = asdict(SmallGANConfig(z_dim=a.z_dim, ngf=a.ngf, block_latent=a.block_latent))
    cfg = TrainConfig(model=model, ndf=a.ndf, iters=a.iters, batch_size=a.batch_size,
                      seed=a.seed, max_minutes=a.max_minutes, lr_g=a.lr_g, lr_d=a.lr_d,
                      betas=(a.beta1, 0.999), ema=a.ema,
                      mode_seeking=a.mode_seeking, chunk_mode_seeking=a.chunk_mode_seeking)
    result = train_small_gan(images, labels, cfg, a.out, device=a.device, provenance=meta)
    print(json.dumps(result))
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
