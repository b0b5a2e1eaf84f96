"""``python -m causalkit``: the command line without the console script, e.g. under
``torchrun -m causalkit train ...``."""

from causalkit.cli import app

app()
