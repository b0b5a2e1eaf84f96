"""Reading a finished ``bench/cgn_mnist.py --out DIR`` run back."""

from __future__ import annotations

from typing import Any


def data_kwargs(res: dict[str, Any]) -> dict[str, Any]:
    """The data arguments (``source``, ``rendering``, ``textures``) a run's splits and
    SCMs were built with, from its ``results.json``; runs from before the rendering
    option used ``"pad"``, and only Wildlife takes textures."""
    cfg = res["config"]
    return {"source": cfg["source"], "rendering": cfg.get("rendering", "pad"),
            "textures": cfg["textures"] if res["variant"] == "wildlife" else None}
