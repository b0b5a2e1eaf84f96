"""Reading tabular data for the bounds: raw samples, count tables or probability tables.

A CSV file holds one column per variable. A column named ``count`` (or ``n``) makes each
row a cell of a count table; a column named ``p`` (or ``prob``, ``probability``) makes it
a probability table. Without either, each row is one sample.

Every cell must hold a value: a blank cell or a missing-value marker (``nan``, ``NA``,
``null`` ...) is refused with its row and column, since a bound computed around missing
data would silently be a bound on another distribution. A file that is not UTF-8 text
(an image or an archive passed by mistake) is refused as such.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from causalkit.errors import DataError
from causalkit.io import read_text

__all__ = ["Table", "read_table"]

COUNT_COLUMNS = ("count", "n")
PROB_COLUMNS = ("p", "prob", "probability")
#: Cell values that mean "no value" (compared in lower case).
MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "?"})


@dataclass
class Table:
    """Columns of a CSV file, plus per-row weights (counts or probabilities)."""

    columns: dict[str, np.ndarray]
    weights: np.ndarray | None
    counts: bool
    source: str

    def require(self, *names: str) -> None:
        """Raise a :class:`DataError` naming the missing columns, if any."""
        missing = [c for c in names if c not in self.columns]
        if missing:
            raise DataError(f"{self.source}: missing column(s) {missing}; it has "
                            f"{sorted(self.columns)}. Pass the right --treatment/--outcome/"
                            "--nuisance names or add the columns")

    def subset(self, mask: np.ndarray) -> Table:
        """The rows where ``mask`` is true."""
        return Table({k: v[mask] for k, v in self.columns.items()},
                     None if self.weights is None else self.weights[mask], self.counts,
                     self.source)


def read_table(path: str | Path) -> Table:
    """Read a CSV of samples, counts or probabilities (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist; check the path")
    text = read_text(path, what="data file", fix="pass a CSV with a header row and one "
                     "column per variable")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: the file is empty; it needs a header row") from None
        rows = [r for r in reader if r]
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc}); check its quoting and "
                        "delimiters") from None
    if any(not h for h in header):
        raise DataError(f"{path}: the header row {header} has a blank column name; name "
                        "every column")
    if len(set(header)) != len(header):
        raise DataError(f"{path}: duplicate column names in header {header}")
    bad = [i + 2 for i, r in enumerate(rows) if len(r) != len(header)]
    if bad:
        raise DataError(f"{path}: row(s) {bad[:5]} have a different number of fields than "
                        f"the header ({len(header)})")
    cols = {h: np.array([r[i].strip() for r in rows], dtype=object)
            for i, h in enumerate(header)}
    for h, values in cols.items():
        missing = [i for i, v in enumerate(values) if v.lower() in MISSING]
        if missing:
            shown = ", ".join(str(i + 2) for i in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise DataError(f"{path}: column {h!r} has {len(missing)} blank or missing "
                            f"cell(s) (line {shown}{more}); fill them in or drop those "
                            "rows")
    weight_col = next((c for c in COUNT_COLUMNS + PROB_COLUMNS if c in cols), None)
    weights = None
    counts = True
    if weight_col is not None:
        try:
            weights = cols.pop(weight_col).astype(float)
        except ValueError:
            raise DataError(f"{path}: column {weight_col!r} must be numeric") from None
        counts = weight_col in COUNT_COLUMNS
        kind = "counts" if counts else "probabilities"
        if np.any(~np.isfinite(weights)) or np.any(weights < 0):
            raise DataError(f"{path}: {kind} in column {weight_col!r} must be finite and "
                            "non-negative" + ("" if counts else ", within [0, 1]"))
        if not counts and (np.any(weights > 1) or abs(weights.sum() - 1) > 1e-6):
            raise DataError(f"{path}: probabilities must lie in [0, 1] and sum to 1 "
                            f"(they sum to {weights.sum():.6g})")
    if not rows:
        raise DataError(f"{path}: no data rows")
    return Table(cols, weights, counts, str(path))
