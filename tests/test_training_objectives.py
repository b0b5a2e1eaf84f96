"""Each registered objective's loss equals its formula on a fixed batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import robust_training.objectives_genint  # noqa: F401 - registers the GenInt family
from causalkit.errors import CausalKitError
from robust_training.methods import METHODS
from robust_training.objectives import OBJECTIVES, get_objective
from robust_training.streams import STREAM_IDS, MultiStream, Stream


class Linear(torch.nn.Module):
    """A deterministic BN-free model with every head, so formulas are easy to write."""

    def __init__(self, heads=("label",)):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.ParameterDict({h: torch.nn.Parameter(
            torch.randn(3 * 8 * 8, 10, generator=g) * 0.1) for h in heads})
        self.head_names = tuple(heads)

    def forward(self, x):
        f = F.avg_pool2d(x, 4).flatten(1)
        return {h: f @ w for h, w in self.w.items()}


def _batch(kinds=("real", "int", "transfer", "obs"), sizes=(6, 4, 3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = sum(sizes)
    stream = torch.cat([torch.full((n,), STREAM_IDS[k]) for k, n in
                        zip(kinds, sizes, strict=True)])
    y = torch.randint(0, 10, (rows,), generator=g)
    return {"x": torch.rand(rows, 3, 32, 32, generator=g) * 2 - 1,
            "y": y[:, None].repeat(1, 3), "stream": stream,
            "real": stream == STREAM_IDS["real"], "env": stream.clone()}


def _ce(model, batch, kind):
    sel = batch["stream"] == STREAM_IDS[kind]
    return F.cross_entropy(model(batch["x"][sel])["label"], batch["y"][sel, 0])


def test_every_cli_method_is_registered():
    assert {m.objective for table in METHODS.values() for m in table.values()} <= set(OBJECTIVES)


def test_erm_is_mean_ce():
    m, b = Linear(), _batch()
    loss, _ = get_objective("erm").loss(m, b, 0)
    ref = F.cross_entropy(m(b["x"])["label"], b["y"][:, 0])
    torch.testing.assert_close(loss, ref)


@pytest.mark.parametrize("lam", [0.0, 0.7, 3.0])
def test_genint_formula(lam):
    m, b = Linear(), _batch()
    loss, logs = get_objective("genint", lambda1=lam).loss(m, b, 0)
    ref = _ce(m, b, "real") + lam * _ce(m, b, "int")
    torch.testing.assert_close(loss, ref)
    assert logs["ce_int"] == pytest.approx(_ce(m, b, "int").item())


def test_genint_transfer_multiplies_lambda2_not_adds():
    m, b = Linear(), _batch()
    loss, _ = get_objective("genint-transfer", lambda1=0.5, lambda2=0.25).loss(m, b, 0)
    ref = _ce(m, b, "real") + 0.5 * _ce(m, b, "int") + 0.25 * _ce(m, b, "transfer")
    torch.testing.assert_close(loss, ref)
    buggy = _ce(m, b, "real") + 0.5 * _ce(m, b, "int") + (0.25 + _ce(m, b, "transfer"))
    assert not torch.isclose(loss, buggy)


def test_each_term_is_a_mean_over_its_own_stream():
    # Doubling the real stream's rows (duplicates) must not change the loss.
    m, b = Linear(), _batch(kinds=("real", "int"), sizes=(4, 4))
    real = b["stream"] == 0
    b2 = {k: torch.cat([v, v[real]]) for k, v in b.items()}
    obj = get_objective("genint", lambda1=2.0)
    torch.testing.assert_close(obj.loss(m, b, 0)[0], obj.loss(m, b2, 0)[0])


def test_gan_aug_formula():
    m, b = Linear(), _batch()
    loss, _ = get_objective("gan-aug", lambda_gen=0.3).loss(m, b, 0)
    torch.testing.assert_close(loss, _ce(m, b, "real") + 0.3 * _ce(m, b, "obs"))


def test_missing_stream_is_a_clear_error():
    m, b = Linear(), _batch(kinds=("real",), sizes=(5,))
    with pytest.raises(CausalKitError, match="'int' stream"):
        get_objective("genint").loss(m, b, 0)


def test_mixup_formula_and_alpha_default():
    obj = get_objective("mixup", seed=3)
    assert obj.hparams["alpha"] == 0.4
    m, b = Linear(), _batch(kinds=("real",), sizes=(8,))
    loss, logs = obj.loss(m, b, 5)
    lam, perm = obj.draw(8, 5)
    assert logs["lam"] == lam and 0.0 <= lam <= 1.0
    logits = m(lam * b["x"] + (1 - lam) * b["x"][perm])["label"]
    y = b["y"][:, 0]
    ref = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    torch.testing.assert_close(loss, ref)
    # Different steps draw different mixes; the same step the same one.
    assert obj.draw(8, 6)[0] != lam and obj.draw(8, 5)[0] == lam


def test_mixup_lambda_follows_beta():
    obj = get_objective("mixup")
    lams = np.array([obj.draw(4, s)[0] for s in range(4000)])
    # Beta(0.4, 0.4): mean 0.5, variance ab/((a+b)^2 (a+b+1)) = 0.16/(0.64*1.8)
    assert lams.mean() == pytest.approx(0.5, abs=0.02)
    assert lams.var() == pytest.approx(0.16 / (0.64 * 1.8), abs=0.01)


def test_irm_formula():
    m, b = Linear(), _batch(kinds=("real", "int"), sizes=(6, 6))
    obj = get_objective("irm", penalty_weight=10.0, anneal_steps=2)
    logits = m(b["x"])["label"]
    risks, pens = [], []
    for e in (0, 1):
        sel = b["env"] == e
        s = torch.ones((), requires_grad=True)
        r = F.cross_entropy(logits[sel] * s, b["y"][sel, 0])
        pens.append(torch.autograd.grad(r, [s], create_graph=True)[0] ** 2)
        risks.append(r)
    risk, pen = torch.stack(risks).mean(), torch.stack(pens).mean()
    torch.testing.assert_close(obj.loss(m, b, 0)[0], risk + pen)  # before the schedule
    torch.testing.assert_close(obj.loss(m, b, 5)[0], (risk + 10.0 * pen) / 10.0)


def test_cgn_heads_formula():
    heads = ("shape", "texture", "background")
    m = Linear(heads)
    b = _batch(kinds=("real", "cf"), sizes=(4, 6))
    g = torch.Generator().manual_seed(1)
    cf = b["stream"] == STREAM_IDS["cf"]
    b["y"][cf] = torch.randint(0, 10, (int(cf.sum()), 3), generator=g)
    out = m(b["x"])
    gen = sum(F.cross_entropy(out[h][cf], b["y"][cf, i]) for i, h in enumerate(heads))
    mean = torch.stack([out[h][~cf] for h in heads]).mean(0)
    ref = gen * cf.float().mean() + F.cross_entropy(mean, b["y"][~cf, 0]) * (~cf).float().mean()
    torch.testing.assert_close(get_objective("cgn-heads").loss(m, b, 0)[0], ref)


def test_multistream_batches_are_deterministic_and_sized():
    g = torch.Generator().manual_seed(0)
    real = Stream("real", torch.randint(0, 255, (50, 3, 8, 8), generator=g, dtype=torch.uint8),
                  torch.arange(50) % 10, batch_size=8)
    gen = Stream("int", torch.zeros(7, 3, 8, 8, dtype=torch.uint8), torch.arange(7) % 10,
                 batch_size=5)
    ms = MultiStream([real, gen], seed=1)
    b1, b2 = ms.batch(3), MultiStream([real, gen], seed=1).batch(3)
    for k in b1:
        assert torch.equal(b1[k], b2[k])
    assert b1["x"].shape[0] == 13 and int((b1["stream"] == 1).sum()) == 5
    # Ranks take disjoint slices that together make the global batch.
    r0, r1 = ms.batch(3, rank=0, world=2), ms.batch(3, rank=1, world=2)
    assert r0["x"].shape[0] + r1["x"].shape[0] == 13
    # An epoch of the real stream visits every image once.
    seen = torch.cat([ms._indices(0, real, s) for s in range(50 // 8)])
    assert len(set(seen.tolist())) == len(seen)
    with pytest.raises(CausalKitError, match="distinct"):
        MultiStream([real, real])
    with pytest.raises(CausalKitError, match="unknown stream kind"):
        Stream("fake", real.images, real.labels[:, 0], 4)
