"""The ``causalkit`` command line: a thin typer app over the packages.

Each module of this package holds one command group and exposes ``register(app)``;
this file discovers them, so adding a command is a local change. Command modules import
heavy dependencies (torch, generators, analysis) inside their functions to keep
``causalkit --help`` fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="causalkit",
    help="Causal analysis of visual recognition: graphs, bounds, probes and "
    "generative interventions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
