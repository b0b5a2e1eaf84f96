"""The CGN for ImageNet: BigGAN-deep mechanisms and U^2-Net masks (Sauer & Geiger, ICLR 2021).

Modules: :mod:`.model` (:class:`~generators.cgn.imagenet.model.CGNImageNet`, the three
BigGAN mechanisms, the frozen BigGAN target and the U^2-Net; it implements the
:class:`~generators.cgn.protocol.CGN` protocol), :mod:`.losses` (the official losses, each
a function of its inputs), :mod:`.train` (the resumable training loop and its config),
:mod:`.checkpoint` (our own files and the official ``cgn.pth``, strict keys).
"""

from generators.cgn.imagenet.checkpoint import (
    load_cgn_imagenet,
    load_official_cgn_imagenet,
    save_cgn_imagenet,
)
from generators.cgn.imagenet.model import (
    CGNImageNet,
    CGNOutput,
    build_cgn_imagenet,
    from_unit,
    to_unit,
)

__all__ = ["CGNImageNet", "CGNOutput", "build_cgn_imagenet", "to_unit", "from_unit",
           "save_cgn_imagenet", "load_cgn_imagenet", "load_official_cgn_imagenet"]
