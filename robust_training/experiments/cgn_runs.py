"""Reading a finished CGN-MNIST pipeline run back, and overriding its CGN's settings.

:func:`~robust_training.experiments.cgn_mnist.run_cgn_mnist` leaves a folder with a
``results.json`` (its record: the variant, the config, the accuracies) beside the CGN's
weights (``cgn/``) and the classifiers (``classifiers/METHOD``). Tools that study such a
run later -- retraining its classifier on its counterfactuals, scoring its masks, probing
its classifier under ``do()`` -- read that record and must rebuild the very data the run
saw:

* :func:`data_kwargs` -- the data arguments (``source``, ``rendering``, ``textures``)
  its splits and SCMs were built with, as :func:`causalkit.datasets.build_split` and
  :func:`causalkit.datasets.build.get_scm` take them;
* :func:`parse_cgn_override` -- one ``FIELD=VALUE`` override of the CGN's training
  settings (``--cgn-set recon_pool=2``), the value read as JSON when it parses.

Examples
--------
>>> parse_cgn_override("recon_features=10"), parse_cgn_override("disc=conv")
(('recon_features', 10), ('disc', 'conv'))
"""

from __future__ import annotations

import json
from typing import Any

from causalkit.errors import CausalKitError

__all__ = ["data_kwargs", "parse_cgn_override"]


def data_kwargs(record: dict[str, Any]) -> dict[str, Any]:
    """The data arguments (``source``, ``rendering``, ``textures``) a run's splits and
    SCMs were built with, from its record; runs from before the rendering option used
    ``"pad"``, and only Wildlife takes textures."""
    from robust_training.experiments.cgn_mnist import config_of_record

    cfg = config_of_record(record)
    return {"source": cfg["source"], "rendering": cfg.get("rendering", "pad"),
            "textures": cfg["textures"] if record["variant"] == "wildlife" else None}


def parse_cgn_override(text: str) -> tuple[str, object]:
    """``"FIELD=VALUE"`` -> ``(FIELD, VALUE)``: VALUE as JSON (numbers, true/false, null)
    when it parses, else as the plain string (e.g. ``disc=conv``)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise CausalKitError(f"--cgn-set takes FIELD=VALUE, got {text!r}")
    try:
        return key, json.loads(value)  # numbers, true/false, null
    except json.JSONDecodeError:
        return key, value  # a plain string, e.g. disc=conv
