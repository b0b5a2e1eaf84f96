"""The ``causalkit`` command line: a thin typer app over the packages.

Each module of this package holds one command group and exposes ``register(app)``;
this file discovers them, so adding a command is a local change. Command modules import
heavy dependencies (torch, generators, analysis) inside their functions to keep
``causalkit --help`` fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings

import typer


class _OneLineErrors(typer.core.TyperGroup):
    """typer's own usage errors (unknown option, missing argument, bad value) as one line,
    ``error: ...`` with exit code 2, like causalkit's; help screens stay as they are."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        # typer 0.2x vendors click as typer._click; older typer uses click itself
        click = getattr(typer.core, "_click", None) or importlib.import_module("click")

        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except click.exceptions.ClickException as error:
            where = error.ctx.command_path if getattr(error, "ctx", None) else "causalkit"
            message = " ".join(error.format_message().split()).rstrip(".")
            typer.echo(f"error: {message}; see '{where} --help'", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="causalkit",
    help="Causal analysis of visual recognition: graphs, bounds, probes and "
    "generative interventions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_PACKAGES = ("causalkit", "generators", "analysis", "robust_training")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """causalkit's own warnings as one ``warning:`` line, without the source line."""
    if category.__module__.split(".")[0] in _PACKAGES:
        (file or sys.stderr).write(f"warning: {message}\n")
    else:
        _show_warning(message, category, filename, lineno, file, line)


_show_warning = warnings.showwarning


@app.callback()
def _options(
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="No progress bars and no status lines: only results "
                               "and errors."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Progress bars on stderr (in a log file they "
                                  "redraw every few seconds)."),
) -> None:
    """Options of every command; put them before the command name."""
    from causalkit import progress as bars
    from causalkit.cli import _common

    bars.set_progress(False if quiet or not progress else None)
    _common.set_quiet(quiet)
    warnings.showwarning = _one_line_warning


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
