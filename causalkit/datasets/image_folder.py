"""Image folders: the one reader of class-per-folder image collections.

ImageNet and every benchmark built on it (IN-9, ImageNet-C, ImageNet-V2, ImageNet-A,
ObjectNet, the cue-conflict stimuli) ship as a *class-per-folder* tree::

    root/
      n01440764/  img_0001.JPEG  img_0002.JPEG ...
      n01443537/  ...

This module reads such trees in three steps, each usable on its own:

1. :func:`list_image_folder` walks the tree once and returns an :class:`ImageList`
   (paths, integer labels, class names). Classes are the sorted folder names, as
   torchvision's ``ImageFolder`` orders them, unless the caller fixes the order (a
   benchmark whose labels must line up with a model's 1000 outputs does).
2. :func:`read_image` decodes one file to a uint8 ``H x W x 3`` RGB array. A truncated,
   corrupt or non-image file raises :class:`~causalkit.errors.DataError` naming the file,
   instead of PIL's bare ``OSError`` deep inside a DataLoader worker.
3. :class:`ImageFolderDataset` is a torch ``Dataset`` over an :class:`ImageList`; decoding
   happens in ``__getitem__``, so DataLoader workers do it in parallel. With
   ``on_corrupt="skip"`` a corrupt file yields ``None`` (drop it with
   :func:`skip_none_collate`) and is counted in :attr:`ImageFolderDataset.skipped`, so a
   single bad JPEG does not end an hour-long evaluation.

:func:`resize_center_crop` is the standard ImageNet evaluation view
(torchvision's ``Resize(256)`` + ``CenterCrop(224)``: the short side is resized with
antialiased bilinear filtering, then the centre is cut), computed with PIL alone, and
:func:`to_tensor` turns a uint8 HWC array into the float CHW ``[0, 1]`` tensor that
causalkit's ImageNet classifiers take.

Examples
--------
>>> from causalkit.datasets.image_folder import (                       # doctest: +SKIP
...     ImageFolderDataset, list_image_folder, resize_center_crop, to_tensor)
>>> images = list_image_folder("imagenet/val")                          # doctest: +SKIP
>>> data = ImageFolderDataset(images, on_corrupt="skip",                # doctest: +SKIP
...                           transform=lambda a: to_tensor(resize_center_crop(a)))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from causalkit.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp",
)
"""File endings read as images, compared case-insensitively (``.JPEG`` is ImageNet's)."""

OnCorrupt = Literal["raise", "skip"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to a uint8 ``H x W x 3`` RGB array.

    Greyscale, palette, CMYK and alpha images are converted to RGB (alpha is dropped,
    as torchvision's ``ImageFolder`` loader does). A missing, truncated, corrupt or
    non-image file raises :class:`DataError` naming the path.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    fix = ("re-download or remove the file (or skip unreadable images: --skip-corrupt, "
           "on_corrupt='skip')")
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; check the path")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except UnidentifiedImageError as error:
        raise DataError(f"{path} is not a readable image ({error}); {fix}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"image file {path} is truncated or corrupt ({error}); {fix}") from None
    array = np.array(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"image file {path} decoded to shape {array.shape}; {fix}")
    return np.ascontiguousarray(array)


@dataclass(frozen=True)
class ImageList:
    """The files of an image folder: ``paths[i]`` shows class ``classes[labels[i]]``."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    root: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Iterable[int]) -> ImageList:
        """The images at ``indices`` (classes unchanged)."""
        idx = list(indices)
        paths = tuple(self.paths[i] for i in idx)
        labels = tuple(self.labels[i] for i in idx)
        counts = {c: 0 for c in self.classes}
        for label in labels:
            counts[self.classes[label]] += 1
        return ImageList(paths, labels, self.classes, self.root, counts)


def _normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    out = []
    for ext in extensions:
        ext = ext.lower()
        out.append(ext if ext.startswith(".") else "." + ext)
    return tuple(out)


def _images_in(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in extensions:
                found.append(Path(dirpath) / name)
    return found


def list_image_folder(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    allow_empty_classes: bool = False,
) -> ImageList:
    """List a class-per-folder tree: one subfolder per class, images at any depth below.

    Parameters
    ----------
    root
        The folder holding one subfolder per class.
    classes
        The class folders to read, in label order. ``None`` reads every subfolder, sorted
        by name. A named folder that does not exist is an error.
    extensions
        File endings that count as images (case-insensitive).
    allow_empty_classes
        Accept a class folder with no images (its count is 0) instead of raising.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; pass the folder that holds "
                        "one subfolder per class")
    if not root.is_dir():
        raise DataError(f"image folder {root} is a file, not a folder; pass the folder that "
                        "holds one subfolder per class")
    exts = _normalise_extensions(extensions)
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        if not present:
            loose = _images_in(root, exts)
            hint = (f" ({len(loose)} images lie directly in it: put them in one subfolder "
                    "per class)" if loose else "")
            raise DataError(f"image folder {root} has no class subfolders{hint}; expected "
                            "root/<class>/<image>")
        names = tuple(present)
    else:
        names = tuple(str(c) for c in classes)
        if len(set(names)) != len(names):
            raise DataError(f"the class list for {root} names a class twice; pass each once")
        missing = [c for c in names if not (root / c).is_dir()]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(f"image folder {root} lacks {len(missing)} class folder(s): "
                            f"{shown}; check the dataset's layout or pass --classes")
    paths: list[Path] = []
    labels: list[int] = []
    counts: dict[str, int] = {}
    empty = []
    for label, name in enumerate(names):
        files = _images_in(root / name, exts)
        counts[name] = len(files)
        if not files:
            empty.append(name)
        paths.extend(files)
        labels.extend([label] * len(files))
    if not paths:
        raise DataError(f"image folder {root} holds no images with endings "
                        f"{', '.join(exts)}; check the folder and the extensions")
    if empty and not allow_empty_classes:
        shown = ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else "")
        raise DataError(f"class folder(s) {shown} under {root} hold no images; complete the "
                        "download or remove the folder")
    return ImageList(tuple(paths), tuple(labels), names, root, counts)


def resize_center_crop(image: np.ndarray | Any, *, resize: int | None = 256,
                       crop: int | None = 224) -> np.ndarray:
    """The ImageNet evaluation view: short side to ``resize``, then the central ``crop``.

    Matches torchvision's ``Resize(resize)`` (bilinear, antialiased, the long side
    rounded down as ``int(long * resize / short)``) followed by ``CenterCrop(crop)``
    (offsets rounded as ``round((size - crop) / 2)``). ``resize=None`` only crops; a
    crop larger than the image is padded with zeros, as torchvision does.
    Takes a uint8 HWC array or a PIL image; returns uint8 HWC.
    """
    from PIL import Image

    pil = image if isinstance(image, Image.Image) else Image.fromarray(_as_uint8_hwc(image))
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    if resize is not None:
        if resize <= 0:
            raise DataError(f"resize must be positive, got {resize}")
        w, h = pil.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = resize, int(resize * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        if size != (w, h):
            pil = pil.resize(size, Image.BILINEAR, reducing_gap=None)
    array = np.array(pil, dtype=np.uint8)
    if crop is None:
        return np.ascontiguousarray(array)
    if crop <= 0:
        raise DataError(f"crop must be positive, got {crop}")
    h, w = array.shape[:2]
    if h < crop or w < crop:
        padded = np.zeros((max(h, crop), max(w, crop), 3), dtype=np.uint8)
        top, left = (max(crop - h, 0)) // 2, (max(crop - w, 0)) // 2
        padded[top:top + h, left:left + w] = array
        array, (h, w) = padded, padded.shape[:2]
    top = int(round((h - crop) / 2.0))
    left = int(round((w - crop) / 2.0))
    return np.ascontiguousarray(array[top:top + crop, left:left + crop])


def _as_uint8_hwc(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise DataError(f"expected an H x W x 3 image, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise DataError(f"expected a uint8 image, got dtype {array.dtype}; convert with "
                        "(x * 255).round().astype('uint8')")
    return np.ascontiguousarray(array[:, :, :3])


def to_tensor(image: np.ndarray) -> Any:
    """A uint8 ``H x W x 3`` array as a float32 ``3 x H x W`` tensor in ``[0, 1]``."""
    import torch

    array = _as_uint8_hwc(image)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


class ImageFolderDataset(Dataset):
    """A torch ``Dataset`` of ``(image, label)`` over an image folder or an :class:`ImageList`.

    ``image`` is ``transform(read_image(path))`` (the uint8 HWC array when ``transform`` is
    None). With ``on_corrupt="skip"`` an unreadable file gives ``None`` instead of an item
    and its path is recorded in :attr:`skipped_paths` (per process: DataLoader workers
    count their own, so :func:`skip_none_collate` and the evaluators count what reaches
    the main process). With ``return_index=True`` items are ``(image, label, index)``.
    """

    def __init__(self, root_or_list: str | os.PathLike | ImageList, *,
                 transform: Callable[[np.ndarray], Any] | None = None,
                 on_corrupt: OnCorrupt = "raise", classes: Sequence[str] | None = None,
                 return_index: bool = False) -> None:
        super().__init__()
        if on_corrupt not in ("raise", "skip"):
            raise DataError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}")
        if isinstance(root_or_list, ImageList):
            if classes is not None:
                raise DataError("pass classes to list_image_folder, not with an ImageList")
            self.images = root_or_list
        else:
            self.images = list_image_folder(root_or_list, classes=classes)
        self.transform = transform
        self.on_corrupt = on_corrupt
        self.return_index = return_index
        self.skipped_paths: list[Path] = []

    @property
    def classes(self) -> tuple[str, ...]:
        return self.images.classes

    @property
    def skipped(self) -> int:
        """How many corrupt files this process has skipped."""
        return len(self.skipped_paths)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:
        path = self.images.paths[index]
        try:
            image = read_image(path)
        except DataError:
            if self.on_corrupt == "raise":
                raise
            self.skipped_paths.append(path)
            return None
        if self.transform is not None:
            image = self.transform(image)
        label = self.images.labels[index]
        return (image, label, index) if self.return_index else (image, label)


def skip_none_collate(items: Sequence[Any]) -> Any:
    """``default_collate`` after dropping the ``None`` items of skipped files.

    Returns ``(batch, n_skipped)``; ``batch`` is ``None`` when every item was skipped.
    """
    from torch.utils.data import default_collate

    kept = [item for item in items if item is not None]
    skipped = len(items) - len(kept)
    return (default_collate(kept) if kept else None), skipped


__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderDataset",
    "ImageList",
    "list_image_folder",
    "read_image",
    "resize_center_crop",
    "skip_none_collate",
    "to_tensor",
]
