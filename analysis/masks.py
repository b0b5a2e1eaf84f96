"""Scoring masks against the truth: how well a shape mechanism finds the object.

A CGN's shape mechanism produces a mask per image; on the synthetic MNIST variants the
true mask is known (the digit's own pixels), so a mask can be scored without any
classifier. :func:`mask_iou` is the usual score: per image, the pixels both masks hold
over the pixels either holds -- 1 for the same mask, 0 for disjoint ones.

>>> import numpy as np
>>> a = np.array([[[1, 1], [0, 0]]], bool); b = np.array([[[1, 0], [1, 0]]], bool)
>>> mask_iou(a, b)
array([0.33333333])
"""

from __future__ import annotations

import numpy as np

__all__ = ["mask_iou"]


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image intersection over union of two boolean mask stacks ``(N, H, W)``.

    An image where both masks are empty scores 0 (its union is counted as 1).
    """
    inter = (pred & truth).reshape(len(pred), -1).sum(1)
    union = (pred | truth).reshape(len(pred), -1).sum(1)
    return inter / np.maximum(union, 1)
