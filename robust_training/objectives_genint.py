"""GenInt and its baselines as registered objectives (added to :data:`OBJECTIVES`).

Importing this module registers:

``genint``           ``L = CE(real) + lambda1 * CE(int)``
``genint-transfer``  ``L = CE(real) + lambda1 * CE(int) + lambda2 * CE(transfer)``
``gan-aug``          ``L = CE(real) + lambda_gen * CE(obs)`` (observational GAN samples)
``mixup``            mixup (Zhang et al., 2018) with ``alpha = 0.4`` on every row

Each ``CE(.)`` is the mean cross-entropy over the rows of its *own* stream (the batch's
``stream`` column, see :mod:`robust_training.streams`), so a stream's weight in the
loss is its lambda and not its share of the batch. The official GenInt code adds
``lambda2`` to the third term instead of multiplying by it; here it multiplies, as in
the paper's equation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from causalkit.errors import CausalKitError
from robust_training.objectives import Objective, register_objective
from robust_training.streams import STREAM_IDS

__all__ = ["StreamCE", "GenInt", "GenIntTransfer", "GANAugmentation", "Mixup",
           "stream_ce"]


def stream_ce(logits: torch.Tensor, batch: dict[str, torch.Tensor], kind: str,
              objective: str) -> torch.Tensor:
    """Mean cross-entropy (digit label) over the rows of stream ``kind``."""
    if "stream" not in batch:
        raise CausalKitError(f"objective {objective!r} needs a batch with a 'stream' column; "
                             "build batches with robust_training.streams.MultiStream")
    sel = batch["stream"] == STREAM_IDS[kind]
    if not bool(sel.any()):
        raise CausalKitError(f"objective {objective!r} needs rows of the {kind!r} stream but "
                             f"the batch has none; add a {kind!r} stream (or give it a "
                             "larger batch size under DDP)")
    return F.cross_entropy(logits[sel], batch["y"][sel, 0])


class StreamCE(Objective):
    """``sum_k w_k * CE(stream k)``; subclasses set :attr:`terms` (kind -> hparam name)."""

    #: stream kind -> name of its weight hyper-parameter (None: weight 1)
    terms: dict[str, str | None] = {"real": None}

    def loss(self, model, batch, step):
        logits = model(batch["x"])["label"]
        total, logs = 0.0, {}
        for kind, hp in self.terms.items():
            ce = stream_ce(logits, batch, kind, self.name)
            w = 1.0 if hp is None else float(self.hparams[hp])
            total = total + w * ce
            logs[f"ce_{kind}"] = ce.item()
        return total, logs


@register_objective("genint")
class GenInt(StreamCE):
    """GenInt (Mao et al., 2021): real data plus interventional samples."""

    terms = {"real": None, "int": "lambda1"}

    @classmethod
    def defaults(cls):
        return {"lambda1": 1.0}


@register_objective("genint-transfer")
class GenIntTransfer(StreamCE):
    """GenInt with the interventions transferred onto real images as a third stream."""

    terms = {"real": None, "int": "lambda1", "transfer": "lambda2"}

    @classmethod
    def defaults(cls):
        return {"lambda1": 1.0, "lambda2": 1.0}


@register_objective("gan-aug")
class GANAugmentation(StreamCE):
    """The GAN-augmentation baseline: real data plus observational generator samples."""

    terms = {"real": None, "obs": "lambda_gen"}

    @classmethod
    def defaults(cls):
        return {"lambda_gen": 1.0}


@register_objective("mixup")
class Mixup(Objective):
    """Mixup: ``x = lam x_i + (1 - lam) x_perm(i)``, loss ``lam CE(y) + (1 - lam) CE(y_perm)``.

    ``lam ~ Beta(alpha, alpha)`` and the permutation come from :meth:`draw`, a pure
    function of ``(seed, step, n)``, so a run is reproducible and resumable.
    """

    @classmethod
    def defaults(cls):
        return {"alpha": 0.4, "seed": 0}

    def draw(self, n: int, step: int) -> tuple[float, torch.Tensor]:
        """The mixing weight and the partner permutation of ``step`` for ``n`` rows."""
        rng = np.random.default_rng([int(self.hparams["seed"]), int(step)])
        a = float(self.hparams["alpha"])
        lam = float(rng.beta(a, a)) if a > 0 else 1.0
        return lam, torch.from_numpy(rng.permutation(n))

    def loss(self, model, batch, step):
        x, y = batch["x"], batch["y"][:, 0]
        lam, perm = self.draw(x.shape[0], step)
        perm = perm.to(x.device)
        logits = model(lam * x + (1.0 - lam) * x[perm])["label"]
        loss = lam * F.cross_entropy(logits, y) + (1.0 - lam) * F.cross_entropy(logits,
                                                                                 y[perm])
        return loss, {"lam": lam}
