"""The intervention vocabulary, LatentStrategy validation and parsing."""

from __future__ import annotations

import pytest

from causalkit.errors import CausalKitError
from causalkit.interventions import Do, Draw, LatentStrategy, Shift, as_intervention


def test_as_intervention():
    assert as_intervention(3) == Do(3)
    f = lambda n, rng: rng.random(n)  # noqa: E731
    assert as_intervention(f) == Draw(f)
    assert as_intervention(Shift(1.0)) == Shift(1.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"truncation": 0.0}, "truncation"), ({"truncation": 1.5}, "truncation"),
    ({"truncation": float("nan")}, "truncation"), ({"components": 0}, "components"),
    ({"components": 2.5}, "components"), ({"scale": 0}, "scale"), ({"scale": -1}, "scale"),
    ({"scale": float("inf")}, "scale"), ({"per_sample": 0}, "per_sample"),
])
def test_latent_strategy_rejects_out_of_range(kwargs, match):
    with pytest.raises(CausalKitError, match=match):
        LatentStrategy(**kwargs)


def test_latent_strategy_parse_roundtrip():
    s = LatentStrategy.parse("t=0.5, k=60, s=2, n=3")
    assert s == LatentStrategy(truncation=0.5, components=60, scale=2.0, per_sample=3)
    assert LatentStrategy.parse(str(s)).truncation == 0.5
    assert LatentStrategy.parse("t=1,k=1,s=1,centered=true").centered
    for bad in ("t=1,q=3", "t", "t=abc", "t=2,k=1,s=1"):
        with pytest.raises(CausalKitError):
            LatentStrategy.parse(bad)
    assert LatentStrategy.looks_like("t=1,k=60,s=1") and not LatentStrategy.looks_like("Z1,Z2")
