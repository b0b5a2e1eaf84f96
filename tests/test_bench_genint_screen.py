"""The nuisance-label tie that bench/genint_screen.py scores interventions with
(:func:`analysis.nuisance_tie.colour_tie`)."""

from __future__ import annotations

import pytest
import torch

from analysis.nuisance_tie import colour_tie as tie
from causalkit.datasets import build_split


@pytest.mark.parametrize("variant", ["colored-mnist", "double-colored-mnist"])
def test_tie_reads_the_bias_of_real_data(variant):
    def split(rho):
        return build_split(variant, "train", rho=rho, seed=0, source="embedded", n=2000,
                           cache=False)

    biased = split(0.9)
    x, y = torch.as_tensor(biased.images), torch.as_tensor(biased.labels)
    t = tie(x, y, variant)
    assert t["aligned"] > 0.6 and t["mi_bits"] > 1.0
    # The same images with shuffled labels: no tie left.
    shuffled = tie(x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))],
                   variant)
    assert shuffled["aligned"] < 0.2 and shuffled["mi_bits"] < 0.1
    # Colours drawn independently of the digit (rho = 0.1, i.e. uniform).
    free = split(0.1)
    assert tie(torch.as_tensor(free.images), torch.as_tensor(free.labels),
               variant)["mi_bits"] < 0.1
