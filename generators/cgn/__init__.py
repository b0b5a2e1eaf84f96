"""Counterfactual generative networks (Sauer & Geiger, ICLR 2021), written once for any CGN.

A CGN generates an image from independent mechanisms -- shape (a mask), texture (the
foreground) and background, each driven by its own class label and noise -- and a
fixed composer ``x = m * f + (1 - m) * b``. This package holds what every CGN shares;
the networks themselves live in sub-packages, one per data set:

* :mod:`.protocol` -- the :class:`~generators.cgn.protocol.CGN` protocol a CGN
  implements: its label nodes, its noise layout (shapes and samplers, in draw order),
  its mechanisms (node -> batched ``fn(parents, u)``, with their names and labels) and
  its composer;
* :mod:`.composer` -- the analytic composer :func:`~generators.cgn.composer.compose`;
* :mod:`.scm` -- :func:`~generators.cgn.scm.cgn_scm`, the CGN as a
  :class:`~causalkit.scm.StructuralCausalModel` built from the declaration;
* :mod:`.counterfactuals` -- counterfactual data sets
  (:class:`~generators.cgn.counterfactuals.CounterfactualSet`), every change a
  ``Do`` or ``Draw`` on the graph's nodes: a redrawn label is ``Draw`` on its label node,
  an abducted or real value is ``Do`` on the mechanism node;
* :mod:`.node_values` -- interventions that transform the value a mechanism node
  would otherwise hold; on it, the label-free nuisances: :mod:`.random_textures`
  (texture and background values from outside every training texture),
  :mod:`.palette` (colour shifts), :mod:`.contrast` (a weaker mask), stacked in one
  order by :class:`~generators.cgn.nuisances.MechanismNuisances` (:mod:`.nuisances`);
* :mod:`.mnist` -- the MNIST CGN (model, encoder, training, official weights, colour
  masks, real backgrounds, abduction from images, evaluation);
* :mod:`.imagenet` -- the ImageNet CGN (BigGAN-deep mechanisms, U^2-Net masks), a
  sibling of :mod:`.mnist` implementing the same protocol.
"""

from generators.cgn.composer import compose
from generators.cgn.counterfactuals import (
    Abduction,
    CounterfactualSet,
    abducted_counterfactuals,
    generate_counterfactuals,
)
from generators.cgn.protocol import CGN, Composer, Exogenous, Mechanism, check_cgn
from generators.cgn.scm import cgn_graph, cgn_scm

__all__ = ["CGN", "Exogenous", "Mechanism", "Composer", "check_cgn", "compose", "cgn_scm",
           "cgn_graph", "CounterfactualSet", "Abduction", "generate_counterfactuals",
           "abducted_counterfactuals"]
