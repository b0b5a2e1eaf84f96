"""The CGN for the 32 x 32 RGB MNIST variants (colored, double-colored, Wildlife).

Modules: :mod:`.model` (:class:`~generators.cgn.mnist.model.MnistCGN`, the three
mechanisms; it implements the :class:`~generators.cgn.protocol.CGN` protocol),
:mod:`.encoder` (the shape-noise posterior ``q(u | x, y)``), :mod:`.losses`,
:mod:`.discriminator`, :mod:`.train` (resumable training), :mod:`.checkpoint` (official
weights and our own, strict keys), :mod:`.matching` (texture-phase abduction during
training), :mod:`.colour` (masks abducted from colour), :mod:`.real_backgrounds`
(backgrounds cut from real images), :mod:`.abduction` (counterfactuals of real images,
and the user-facing ``backgrounds=`` / ``masks=`` options as interventions),
:mod:`.evaluate` (quality measures without pretrained networks).
"""

from generators.cgn.mnist.model import CGNOutput, MnistCGN

__all__ = ["MnistCGN", "CGNOutput"]
