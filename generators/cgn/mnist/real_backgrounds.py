"""A background mechanism made of real images: the CGN's masks cut the digits out.

A CGN's background mechanism ``B := f_text2(Y3, U3)`` learns each class's background
from the training images, but a small generator smooths it: on Wildlife MNIST the
leaf veins of some classes come out as blurred smudges, and a classifier trained on
such counterfactuals mistakes the real veins for strokes. The real backgrounds are in
the training images already, behind their digits. Since the shape mechanism is
independent of the background mechanism, the background can as well be replaced by a
non-parametric one:

``B := R(Y3, J)``: the real training image ``J`` (uniform over the images of class
``Y3``) with its digit cut out by the CGN's own abducted mask, widened by one pixel;
the hole is filled from a second and a third image of the class, and what all three
digits cover from ``f_text2(Y3, U3)``.

This is a do on the background *node* whose values are computed batch by batch,
``{"B": Do(PerBatch(...))}`` (:meth:`RealBackgrounds.intervention`), not on its label:
the values read the label ``Y3`` (so the node keeps its edge from ``Y3``), the
counterfactual still sets that label and keeps the shape and texture noise. The
composite then has a real background, the CGN's digit shape and texture. What it costs:
the fills leave seams along the cut-out digits, and where the abducted mask misses a
part of a digit, that part stays in the background (it shows the background's class).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from causalkit.errors import CausalKitError
from causalkit.interventions import Batch, Do, PerBatch
from generators.images import to_float

__all__ = ["RealBackgrounds", "FILLS", "DILATION"]

#: real images layered per background; what none covers comes from the CGN
FILLS = 3
#: pixels the abducted mask is widened by before the digit is cut out (its edge is soft)
DILATION = 1


class RealBackgrounds:
    """Real training images with their digits cut out, drawn by class.

    Parameters
    ----------
    images : uint8 array (N, 3, H, W)
        The real images the counterfactuals are abducted from.
    labels : int array (N,)
        Their classes (the backgrounds' labels: in the training data the background
        follows the label).
    masks : float tensor (N, 1, H, W)
        The CGN's abducted masks of ``images`` (the shape mechanism at the encoder's
        posterior mean), in [0, 1].
    n_classes : int
        Number of classes; every class needs at least one image.
    """

    def __init__(self, images: Any, labels: Any, masks: torch.Tensor,
                 n_classes: int = 10) -> None:
        self.images = torch.as_tensor(np.asarray(images))
        labels = np.asarray(labels, dtype=np.int64)
        if len(self.images) != len(labels) or len(masks) != len(labels):
            raise CausalKitError(f"need one mask and one label per image, got "
                                 f"{len(self.images)} images, {len(labels)} labels and "
                                 f"{len(masks)} masks")
        digit = F.max_pool2d((masks > 0.5).float(), 2 * DILATION + 1, stride=1,
                             padding=DILATION)
        self.valid = digit.cpu() < 0.5  # (N, 1, H, W): a background pixel
        self.by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
        empty = [c for c, idx in enumerate(self.by_class) if len(idx) == 0]
        if empty:
            raise CausalKitError(f"real backgrounds need images of every class; none of "
                                 f"class(es) {empty}")

    def draw(self, classes: np.ndarray, fallback: torch.Tensor,
             rng: np.random.Generator) -> torch.Tensor:
        """Backgrounds of ``classes`` in [-1, 1], like ``fallback`` (the CGN's own
        backgrounds of the same classes, which fill what no real image shows)."""
        out = fallback.clone()
        todo = torch.ones(len(classes), 1, *out.shape[2:], dtype=torch.bool)
        for _ in range(FILLS):
            pick = np.array([self.by_class[c][rng.integers(len(self.by_class[c]))]
                             for c in classes])
            take = todo & self.valid[pick]
            real = to_float(self.images[pick]).to(out.device)
            out = torch.where(take.to(out.device), real, out)
            todo &= ~take
        return out

    def intervention(self, *, label: str = "Y3") -> Do:
        """The real backgrounds as an intervention on the background node ``B``.

        ``Do(PerBatch(f))``: for each batch, ``f`` draws the backgrounds of the classes in
        the batch's ``label`` node from the intervention's own stream, filling what no
        real image shows with the CGN's own background (the node's natural value).
        """

        def values(batch: Batch) -> torch.Tensor:
            return self.draw(batch.parents[label], batch.natural(), batch.rng)

        return Do(PerBatch(values))
