"""Label-free nuisance interventions on a CGN's mechanisms, in one order.

A counterfactual of a CGN changes a mechanism's label; the interventions here change
what no label should cause, identically for every class: which texture fills the
digit or the ground, their colours, and how far the digit stands out. Each is an
intervention on a mechanism node (``Do(PerBatch(...))``, built by
:func:`generators.cgn.node_values.transformed` on whatever already sets the node), and
:class:`MechanismNuisances` stacks them in one fixed order, on top of the interventions
a counterfactual set already has (abducted masks, real backgrounds):

1. random textures (:mod:`generators.cgn.random_textures`) replace the texture and
   background values for a fraction of the counterfactuals;
2. a palette (:mod:`generators.cgn.palette`) shifts the colours of both values, so
   that a random texture is shifted like any other;
3. a contrast scale (:mod:`generators.cgn.contrast`) weakens the mask.

>>> nuisances = MechanismNuisances(palette="hue", random_textures={"background": 0.5})
>>> nuisances.meta
{'palette': 'hue', 'random_textures': {'background': 0.5}}
>>> MechanismNuisances().meta
{}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generators.cgn.contrast import check_contrast, contrast_interventions
from generators.cgn.palette import check_palette, palette_interventions
from generators.cgn.random_textures import check_random_textures, random_texture_interventions

__all__ = ["MechanismNuisances"]


@dataclass(frozen=True)
class MechanismNuisances:
    """The label-free interventions on a CGN's mechanisms; checked when made.

    Parameters
    ----------
    palette : str
        A colour shift of the texture and background values, a draw each
        (:func:`~generators.cgn.palette.palette_interventions`); ``"none"`` is none.
    contrast : float
        The lowest scale of the mask
        (:func:`~generators.cgn.contrast.contrast_interventions`); 1 is none.
    random_textures : mapping
        The fraction of counterfactuals whose ``"texture"`` or ``"background"`` value
        is a random texture; zero fractions are dropped.
    random_family : str
        Which random textures (:data:`generators.cgn.random_textures.FAMILIES`).
    """

    palette: str = "none"
    contrast: float = 1.0
    random_textures: Mapping[str, float] = field(default_factory=dict)
    random_family: str = "features"

    def __post_init__(self) -> None:
        check_palette(self.palette)
        check_contrast(self.contrast)
        check_random_textures(self.random_textures, self.random_family)
        object.__setattr__(self, "random_textures",
                           {k: float(v) for k, v in self.random_textures.items() if v})

    def interventions(self, cgn: Any, interventions: Mapping[str, Any] | None = None
                      ) -> dict[str, Any]:
        """``interventions`` with the nuisances stacked on, in the module's order."""
        do = random_texture_interventions(cgn, self.random_textures, interventions,
                                          family=self.random_family)
        return contrast_interventions(cgn, self.contrast,
                                      palette_interventions(cgn, self.palette, do))

    @property
    def meta(self) -> dict[str, Any]:
        """What a counterfactual set's ``meta`` records: the settings that are not none
        (the family only beside random textures, and only when not the default)."""
        return {**({"palette": self.palette} if self.palette != "none" else {}),
                **({"contrast": self.contrast} if self.contrast != 1.0 else {}),
                **({"random_textures": dict(self.random_textures)}
                   if self.random_textures else {}),
                **({"random_family": self.random_family}
                   if self.random_textures and self.random_family != "features" else {})}
