"""Draw the texture-OOD page's random-feature figure: counterfactuals of one run with
and without random-feature textures.

Run from the repository root, on two finished runs of the same CGN and seed that differ
only in ``counterfactuals.random_background`` / ``random_texture``::

    python docs/_scripts/random_texture_figure.py RUN_WITHOUT RUN_WITH

writes ``docs/_static/random_texture_counterfactuals.png``: the first twenty
counterfactuals of each run (``counterfactuals.npz``), the run without on top.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from generators.cgn.counterfactuals import CounterfactualSet
from generators.images import save_grid

OUT = Path(__file__).resolve().parents[1] / "_static" / "random_texture_counterfactuals.png"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: random_texture_figure.py RUN_WITHOUT RUN_WITH", file=sys.stderr)
        return 2
    sets = [CounterfactualSet.load(Path(a) / "counterfactuals.npz") for a in argv]
    for name in ("shape", "texture", "background"):
        if not np.array_equal(getattr(sets[0], name)[:20], getattr(sets[1], name)[:20]):
            print(f"the two runs' counterfactuals differ in their {name} labels: pass two "
                  "runs of the same CGN and seed", file=sys.stderr)
            return 2
    grid = torch.cat([torch.as_tensor(s.images[:20]) for s in sets])
    save_grid(grid, OUT, nrow=20, upscale=3)
    print(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
