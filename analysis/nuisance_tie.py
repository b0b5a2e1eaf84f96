"""How tightly a set of colored / double-colored MNIST images ties its colour to its label.

An intervention on the nuisances helps a classifier only if its samples no longer tie
the nuisance to the label. On the colour variants that tie is measurable without any
classifier, because the nuisance can be read off the pixels
(:func:`causalkit.datasets.nuisances.nuisance_classes`: the nearest palette colour of
the digit for colored MNIST, of the border for double-colored MNIST). :func:`colour_tie`
compares that nuisance class with the label in two ways:

* ``aligned`` -- the fraction of images whose nuisance class equals the label; with ten
  classes, 0.1 is independence and the training data's ``rho`` the bias;
* ``mi_bits`` -- the mutual information of nuisance class and label, in bits; 0 is
  independence, ``log2(10) = 3.32`` a one-to-one tie.

The two differ when the nuisance follows the label but not as the same index (a
permuted tie): ``aligned`` misses it, the mutual information does not.

Examples
--------
>>> from causalkit.datasets import build_split                  # doctest: +SKIP
>>> s = build_split("colored-mnist", "train", rho=0.9, n=2000)   # doctest: +SKIP
>>> colour_tie(s.images, s.labels, "colored-mnist")              # doctest: +SKIP
{'aligned': 0.9..., 'mi_bits': 2.6...}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["colour_tie"]


def colour_tie(images: Any, labels: Any, variant: str) -> dict[str, float]:
    """Agreement and mutual information (bits) of each image's colour class and label.

    Parameters
    ----------
    images
        uint8 ``(N, 3, H, W)`` or float in ``[-1, 1]`` (tensor or array).
    labels
        ``(N,)`` class labels.
    variant
        ``"colored-mnist"`` (reads the digit's colour) or ``"double-colored-mnist"``
        (reads the background's).

    Returns
    -------
    dict
        ``{"aligned": fraction, "mi_bits": bits}``, each rounded to 4 decimals.
    """
    from sklearn.metrics import mutual_info_score

    from causalkit.datasets.nuisances import nuisance_classes

    z = nuisance_classes(torch.as_tensor(images), variant).numpy()
    y = torch.as_tensor(labels).numpy()
    return {"aligned": round(float((z == y).mean()), 4),
            "mi_bits": round(float(mutual_info_score(y, z) / np.log(2)), 4)}
