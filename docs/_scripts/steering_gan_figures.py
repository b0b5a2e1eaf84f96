"""Draw the figures of docs/steering_gan.md from the tiny random-weights BigGAN.

    python docs/_scripts/steering_gan_figures.py   # writes docs/_static/steering_gan_*.png
"""

from __future__ import annotations

from pathlib import Path

import torch

from causalkit.interventions import LatentStrategy
from generators.biggan import tiny_biggan
from generators.directions import shortcut_directions
from generators.images import save_grid
from generators.strategies import InterventionSampler, Observational
from generators.strips import direction_strips

STATIC = Path(__file__).resolve().parents[1] / "_static"


def main() -> None:
    torch.set_num_threads(1)
    gen = tiny_biggan(0)
    dirs = shortcut_directions(gen)
    strips = direction_strips(gen, dirs, label=3, seed=0, directions=[0, 1, 2, 7], steps=7)
    print(save_grid(strips, STATIC / "steering_gan_strips.png", upscale=3))

    labels = [3] * 8
    obs, _ = InterventionSampler(gen, Observational(0.2)).sample(labels, seed=1)
    inter_sampler = InterventionSampler(gen, LatentStrategy(1.0, 8, 1.0, per_sample=5), dirs)
    inter, _ = inter_sampler.sample(labels, seed=1)
    print(save_grid(torch.stack([obs, inter]), STATIC / "steering_gan_samples.png",
                    upscale=3))

    # Same seed, three classes: identical latents and offsets in every column.
    rows = [inter_sampler.sample([c] * 8, seed=2)[0] for c in (0, 3, 7)]
    print(save_grid(torch.stack(rows), STATIC / "steering_gan_classes.png", upscale=3))


if __name__ == "__main__":
    main()
