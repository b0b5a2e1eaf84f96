"""Sphinx configuration for causalkit."""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Executed pages read benchmark records from here (causalkit.reports) and keep their
# datasets and caches out of the user's home.
os.environ.setdefault("CAUSALKIT_RECORDS", str(HERE.parent / "bench" / "results"))
os.environ.setdefault("CAUSALKIT_DATA", str(HERE / "_build" / "data"))

project = "causalkit"
author = "the causalkit developers"
copyright = "2026, the causalkit developers"

extensions = [
    # myst-nb reads MyST markdown (it includes myst-parser) and executes the pages that
    # declare a kernel, so their outputs come from the build.
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
# Executed pages: outputs are computed at build time, cached by cell content (a cell
# that changes, or whose code changes, reruns), and a cell that raises fails the build.
nb_execution_mode = "cache"
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
nb_execution_in_temp = True
nb_merge_streams = True
# Tables a cell returns as Markdown (records, reports) are parsed as MyST.
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Heavy optional imports are not needed to document the API.
autodoc_mock_imports = ["pytorch_pretrained_biggan"]
nitpicky = False
# A field type such as ``name`` or ``kind`` matches attributes of several classes; the
# reference then goes to the first, which is not worth a failed build.
suppress_warnings = ["ref.python"]
html_theme = "furo"
html_title = "causalkit"
html_static_path = ["_static"]
exclude_patterns = ["_build", "jupyter_execute"]
