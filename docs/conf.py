"""Sphinx configuration for causalkit."""

project = "causalkit"
author = "the causalkit developers"
copyright = "2026, the causalkit developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Heavy optional imports are not needed to document the API.
autodoc_mock_imports = ["pytorch_pretrained_biggan"]
nitpicky = False
html_theme = "furo"
html_title = "causalkit"
html_static_path = ["_static"]
exclude_patterns = ["_build"]
