"""How each benchmark turns a file into the tensor a classifier sees.

Views are small picklable classes (DataLoader workers get a copy), applied to the uint8
array of :func:`causalkit.datasets.image_folder.read_image`:

* :class:`ImageView`: an optional border cut, then the resize / centre crop of
  :func:`~causalkit.datasets.image_folder.resize_center_crop`, then ``[0, 1]`` floats.
  The released IN-9, ImageNet-C and cue-conflict images are already 224 x 224, and a
  ``resize=224, crop=224`` view leaves them untouched. ObjectNet's images carry a
  2-pixel border (``border=2``) that is cut before the usual 256/224 view.
* :class:`CorruptedView`: the 256/224 view of any image, then one ImageNet-C corruption
  at one severity, seeded by the image's index so a rerun sees the same pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causalkit.datasets.image_folder import resize_center_crop, to_tensor


class ImageView:
    """``border`` pixels cut from each side, resized/cropped, as a ``[0, 1]`` tensor."""

    def __init__(self, *, resize: int | None = 256, crop: int | None = 224,
                 border: int = 0) -> None:
        self.resize, self.crop, self.border = resize, crop, border

    def array(self, image: np.ndarray) -> np.ndarray:
        b = self.border
        if b and image.shape[0] > 2 * b and image.shape[1] > 2 * b:
            image = image[b:-b, b:-b]
        return resize_center_crop(image, resize=self.resize, crop=self.crop)

    def __call__(self, image: np.ndarray) -> Any:
        return to_tensor(self.array(image))


class CorruptedView:
    """The 256/224 view, then ``corruptions.corrupt(view, name, severity, seed=seed+i)``.

    Called with ``(image, index)`` by :class:`IndexedDataset`, so each image draws its
    own seeded noise.
    """

    def __init__(self, name: str, severity: int, *, seed: int = 0, resize: int | None = 256,
                 crop: int | None = 224) -> None:
        self.name, self.severity, self.seed = name, severity, seed
        self.view = ImageView(resize=resize, crop=crop)

    def __call__(self, image: np.ndarray, index: int) -> Any:
        from analysis.benchmarks import corruptions

        array = self.view.array(image)
        out = corruptions.corrupt(array, self.name, self.severity, seed=self.seed + index)
        return to_tensor(np.ascontiguousarray(out))


class IndexedDataset:
    """An :class:`~causalkit.datasets.image_folder.ImageFolderDataset` whose transform
    also receives the item's index (for per-image seeds)."""

    def __init__(self, base: Any, transform: Any) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        item = self.base[index]
        if item is None:
            return None
        image, label = item[0], item[1]
        return self.transform(image, index), label


__all__ = ["CorruptedView", "ImageView", "IndexedDataset"]
