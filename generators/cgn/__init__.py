"""Counterfactual generative networks (Sauer & Geiger, ICLR 2021) for the MNIST variants.

Modules: :mod:`.model` (mechanisms and composer), :mod:`.losses`, :mod:`.discriminator`,
:mod:`.train` (resumable training), :mod:`.checkpoint` (official weights, strict keys),
:mod:`.scm` (the CGN as a structural causal model), :mod:`.counterfactuals` (uint8
counterfactual data sets), :mod:`.evaluate` (quality measures without pretrained
networks), :mod:`.images` (uint8 conversion and PNG grids).
"""

from generators.cgn.model import CGNOutput, MnistCGN, compose

__all__ = ["MnistCGN", "CGNOutput", "compose"]
