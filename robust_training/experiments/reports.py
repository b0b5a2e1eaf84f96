"""Measured results, read back from the benchmark records.

Every measured number on a docs page or in the README comes from here: the benchmarks
in ``bench/`` append JSON records to ``bench/results/``, and this module selects and
summarises them. A page calls it in a code cell during the build, and the README's
results table is rewritten from it (``python -m robust_training.experiments.reports
--write README.md``; ``--check`` fails when the README has drifted from the records,
which a test runs).

Selecting is the delicate part. A record stores the flat config it ran with
(:func:`~robust_training.experiments.cgn_mnist.config_of_record`), and a *preset's
runs* are the records whose config equals today's preset on every setting that shapes
the result. Where a record predates a setting, it ran with that setting's default, so it
matches only when the preset keeps the default. Where the data came from (the folder of
MNIST or textures), the list of methods a run trained and the seed do not take part;
the precision and the device split a preset's runs into separate groups, since the same
seed trains differently under each.

Examples
--------
>>> from robust_training.experiments.reports import mean_std
>>> mean_std([0.9, 0.95, 1.0])
(0.95, 0.05)
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from causalkit.errors import DataError

__all__ = ["records_dir", "load", "mean_std", "Summary", "cgn_preset_runs",
           "cgn_preset_summary", "genint_preset_summaries", "genint_records", "genint_table",
           "speed_pairs", "small_gan_tables", "field", "select", "latest", "genint_runs",
           "per_seed", "seed_cells", "value_range", "cgn_run_table", "screen_table",
           "markdown_table", "readme_results", "update_readme", "PAPER_OOD"]

#: Environment variable naming the records folder (the docs build sets it).
RECORDS_ENV = "CAUSALKIT_RECORDS"

#: OOD accuracy (%) of the CGN-heads classifier in Sauer & Geiger's Table 2: published
#: figures, quoted beside ours, not measured here.
PAPER_OOD = {"colored": 95.1, "double-colored": 89.0, "wildlife": 85.7}

# settings that do not change what a run trains (texture_ood only adds scores)
_IGNORED = {"seed", "source", "textures", "official_root", "methods", "precision",
            "texture_ood"}
_START, _END = "<!-- results:start -->", "<!-- results:end -->"


def records_dir() -> Path:
    """``$CAUSALKIT_RECORDS``, else the nearest ``bench/results`` above the working
    directory."""
    if os.environ.get(RECORDS_ENV):
        return Path(os.environ[RECORDS_ENV])
    for base in (Path.cwd(), *Path.cwd().parents):
        if (base / "bench" / "results").is_dir():
            return base / "bench" / "results"
    raise DataError(f"no bench/results folder above {Path.cwd()}; set {RECORDS_ENV} to "
                    "the folder of the benchmark records")


def load(name: str) -> Any:
    """The records of benchmark ``name`` (``bench/results/<name>.json``)."""
    path = records_dir() / f"{name}.json"
    if not path.exists():
        raise DataError(f"no benchmark records {path}; run bench/{name}.py first")
    return json.loads(path.read_text())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), rounded to 1e-6."""
    a = np.asarray(values, dtype=float)
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return round(float(a.mean()), 6), round(std, 6)


@dataclass(frozen=True)
class Summary:
    """Accuracies (%) of one method over the seeds of one group of runs."""

    method: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0]

    @property
    def std(self) -> float:
        return mean_std(self.values)[1]

    def text(self, unit: str = " %") -> str:
        """``"97.5 +- 0.4 % over 3 seeds"`` (one seed: ``"96.9 % (seed 3)"``)."""
        if self.n == 1:
            return f"{self.values[0]:.1f}{unit} (seed {self.seeds[0]})"
        return f"{self.mean:.1f} +- {self.std:.1f}{unit} over {self.n} seeds"

    __str__ = text


def cgn_preset_runs(variant: str | None, *, quick: bool = False, preset: str | None = None,
                    precision: str | None = None, device: str = "cpu",
                    source: str = "mnist") -> list[dict[str, Any]]:
    """The ``cgn_mnist`` records of the shipped preset ``<variant>-full`` (or ``-quick``,
    or the named ``preset``) run at ``precision`` (``None``: the preset's own) on
    ``device``, with digits from ``source`` (``"mnist"``: full MNIST files;
    ``"embedded"``: the embedded subset)."""
    from robust_training.experiments.cgn_mnist import (
        CGNMnistConfig,
        config_of_record,
        preset_config,
    )

    resolved = preset_config(variant, quick=quick, preset=preset)
    want, variant = resolved.flat(), resolved.data.variant
    defaults = CGNMnistConfig().flat()
    precision = precision or want.get("precision")
    out = []
    for r in load("cgn_mnist"):
        if r["variant"] != variant or str(r["source"]).split(":")[0] != source:
            continue
        got = config_of_record(r)
        if str(r.get("device", "cpu")).split(":")[0] != device:
            continue
        if (got.get("precision") or defaults.get("precision")) != precision:
            continue
        if all(got[k] == v if k in got else v == defaults.get(k)
               for k, v in want.items() if k not in _IGNORED):
            out.append(r)
    return out


def cgn_preset_summary(variant: str, method: str = "cgn", **select: Any) -> Summary | None:
    """``method``'s OOD accuracy over the seeds of :func:`cgn_preset_runs` (``None`` when
    no run of the preset recorded it). A seed recorded twice counts once (its latest)."""
    by_seed: dict[int, float] = {}
    for r in cgn_preset_runs(variant, **select):
        if method in r["results"]:
            by_seed[_seed(r)] = 100 * r["results"][method]["ood"]
    if not by_seed:
        return None
    seeds = tuple(sorted(by_seed))
    return Summary(method, seeds, tuple(round(by_seed[s], 4) for s in seeds))


def _seed(record: dict[str, Any]) -> int:
    from robust_training.experiments.cgn_mnist import config_of_record

    return int(config_of_record(record)["seed"])


def genint_preset_summaries(preset: str = "default") -> dict[str, dict[str, Summary]]:
    """OOD accuracy per method for the ``genint_mnist`` records of a shipped GenInt
    preset, one entry per generator (its weights digest): see :func:`genint_records`."""
    return {digest: {m: Summary(m, tuple(int(r["seed"]) for r in rs),
                                tuple(100 * r["ood_accuracy"] for r in rs))
                     for m, rs in methods.items()}
            for digest, methods in genint_records(preset).items()}


def genint_records(preset: str = "default") -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The ``genint_mnist`` records of a shipped GenInt preset, per generator digest and
    method, each list ordered by seed (the latest record of a seed). A record counts
    when its settings match the preset's except the generator's folder, the data folder
    and the digest."""
    from robust_training.experiments.genint_mnist import GenIntMnistConfig

    cfg = GenIntMnistConfig.resolve(preset, validate=False)
    want = {k: v for k, v in cfg.flat().items() if k not in ("methods", "seeds")}
    skip = {"generator", "source", "generator_sha256"}
    groups: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict))
    for r in load("genint_mnist"):
        s = r.get("settings", {})
        if all(s.get(k, ...) == v for k, v in want.items() if k not in skip):
            groups[s.get("generator_sha256", "?")][r["method"]][int(r["seed"])] = r
    return {d: {m: [v[k] for k in sorted(v)] for m, v in ms.items()}
            for d, ms in groups.items()}


def genint_table(runs: dict[str, list[dict[str, Any]]], methods: Sequence[str],
                 names: dict[str, str] | None = None) -> str:
    """OOD accuracy per seed, mean +- std and mean test accuracy of ``methods``."""
    rows = []
    for m in methods:
        if m not in runs:
            continue
        rs = runs[m]
        ood = [100 * r["ood_accuracy"] for r in rs]
        mean, std = mean_std(ood)
        rows.append([(names or {}).get(m, m), " / ".join(f"{v:.1f}" for v in ood),
                     f"{mean:.1f} +- {std:.1f}",
                     f"{np.mean([100 * r['test_accuracy'] for r in rs]):.1f}"])
    first = next(m for m in methods if m in runs)
    seeds = " / ".join(str(r["seed"]) for r in runs[first])
    return markdown_table(["method", f"OOD % (seeds {seeds})", "mean +- std",
                           "test % (mean)"], rows)


def field(record: dict[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted ``path`` of a record (``"settings.steps"``), else ``default``."""
    value: Any = record
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def select(records: Sequence[dict[str, Any]] | str, *,
           defaults: dict[str, Any] | None = None, **match: Any) -> list[dict[str, Any]]:
    """The records (or the records of benchmark ``records``) whose fields equal ``match``.

    A key names a dotted path with ``__`` for the dots (``settings__steps=1200``); a
    value ``None`` matches a record that lacks the field. ``defaults`` (dotted paths)
    gives the value a record that lacks a field ran with, for records that predate it."""
    if isinstance(records, str):
        records = load(records)
    want = {k.replace("__", "."): v for k, v in match.items()}
    defaults = defaults or {}
    return [r for r in records
            if all(field(r, k, defaults.get(k)) == v for k, v in want.items())]


def latest(records: Sequence[dict[str, Any]] | str, *,
           defaults: dict[str, Any] | None = None, **match: Any) -> dict[str, Any]:
    """The newest record (by ``machine.date``) that :func:`select` finds; a
    :class:`~causalkit.errors.DataError` naming ``match`` when there is none."""
    found = select(records, defaults=defaults, **match)
    if not found:
        raise DataError(f"no benchmark record with {match}; rerun the benchmark that "
                        "writes it, or fix the selection")
    return max(found, key=lambda r: str(field(r, "machine.date", "")))


def genint_runs(**settings: Any) -> dict[str, list[dict[str, Any]]]:
    """The ``genint_mnist`` records whose ``settings`` equal ``settings`` (a value
    ``None``: the record lacks it, i.e. ran before that setting existed), per method and
    ordered by seed, the latest record of a seed; the input of :func:`genint_table` and
    :func:`per_seed`."""
    found = select("genint_mnist", **{f"settings__{k}": v for k, v in settings.items()})
    by: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in sorted(found, key=lambda r: str(field(r, "machine.date", ""))):
        by[r["method"]][int(r["seed"])] = r
    return {m: [v[k] for k in sorted(v)] for m, v in by.items()}


def per_seed(runs: dict[str, list[dict[str, Any]]], method: str,
             key: str = "ood_accuracy") -> list[float]:
    """``key`` (a fraction) of ``method``'s runs in :func:`genint_runs` order, in %."""
    return [100 * r[key] for r in runs.get(method, [])]


def seed_cells(values: Sequence[float], *, digits: int = 1, bold: bool = False) -> list[str]:
    """Table cells for one value per seed and their ``mean +- std`` (bold on request):
    ``seed_cells([97.13, 97.39])`` -> ``["97.1", "97.4", "97.3 +- 0.2"]``."""
    m, sd = mean_std(values)
    summary = f"{m:.{digits}f} +- {sd:.{digits}f}"
    return [f"{v:.{digits}f}" for v in values] + [f"**{summary}**" if bold else summary]


def value_range(values: Sequence[float], *, digits: int = 2, unit: str = "") -> str:
    """The span of ``values`` as prose: ``"0.67-0.70"``, or one value when the ends agree
    at ``digits`` (``value_range([0.181, 0.184])`` -> ``"0.18"``)."""
    if not values:
        raise DataError("value_range needs at least one value; check the record selection")
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return (lo if lo == hi else f"{lo}-{hi}") + unit


def cgn_run_table(record: dict[str, Any]) -> str:
    """One ``cgn_mnist`` record as the pipeline prints it: train, OOD and mean-heads
    accuracy (%) per method, then its wall time per stage, CPU time and peak memory."""
    rows = [[m, f"{100 * v['train']:.1f}", f"{100 * v['ood']:.1f}",
             f"{100 * v['ood_mean_heads']:.1f}" if "ood_mean_heads" in v else "-"]
            for m, v in record["results"].items()]
    stages = ", ".join(f"{k} {v:,.0f} s" for k, v in record.get("seconds", {}).items())
    extra = []
    if "seconds_total" in record:
        extra.append(f"total {record['seconds_total']:,.0f} s")
    if "cpu_seconds_total" in record:
        extra.append(f"process CPU {record['cpu_seconds_total']:,.0f} s")
    if "peak_rss_mb" in record:
        extra.append(f"peak RSS {record['peak_rss_mb']:,.0f} MB")
    return (markdown_table(["method", "train %", "OOD %", "OOD mean-heads %"], rows)
            + f"\n\n*Wall time: {stages}; {', '.join(extra)}.*")


def screen_table(rows: Sequence[tuple[str, str, dict[str, Any]]], *,
                 headers: Sequence[str] = ("directions", "strategy", "colour = label",
                                           "MI (bits)", "recognised")) -> str:
    """A table of ``genint_screen`` pools: one ``(name, strategy, record)`` per row, the
    record a screen record or its ``reference_real`` entry (aligned fraction, mutual
    information and fraction recognised)."""
    return markdown_table(headers, [
        [name, f"`{strategy}`" if strategy != "-" else "-", f"{r['aligned']:.3f}",
         f"{r['mi_bits']:.2f}", f"{r['recognised']:.3f}"] for name, strategy, r in rows])


def speed_pairs(threads: int = 2) -> dict[str, dict[str, float]]:
    """Median step times at ``threads`` threads in float32 and bfloat16, from the latest
    records: ``{"cgn wildlife": {"fp32": s, "bf16": s}, "classifier cnn": {...}}``
    (seconds per CGN iteration; milliseconds per classifier step)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for r in load("cgn_step"):
        if r.get("label") == "current" and r["machine"].get("torch_threads") == threads:
            out[f"cgn {r['variant']}"][r["precision"]] = r["median_s_per_iteration"]
    for r in load("classifier_step"):
        if r["machine"].get("torch_threads") == threads:
            out[f"classifier {r['model']}"][r["precision"]] = r["median_ms_per_step"]
    return dict(out)


def small_gan_tables(name: str = "small_gan") -> dict[str, str]:
    """The tables of a ``bench/small_gan_eval.py`` record: ``"fidelity"`` (the class the
    shape reader recognises, per truncation) and ``"directions"`` (colour change and class
    kept along each direction, against random directions)."""
    r = load(name)
    fid = [[t.split("=")[1], f"{100 * v['accuracy']:.1f} %",
            " ".join(f"{p:.2f}" for p in v["per_class"])]
           for t, v in r["class_fidelity"].items()]
    rnd = r["random_direction_baseline"]
    dirs = [[d["direction"], f"{d['singular_value_sq']:.1f}", f"{d['delta_bg_rgb']:.1f}",
             f"{d['delta_fg_rgb']:.1f}", f"{d['class_kept']:.3f}"] for d in r["directions"]]
    dirs.append(["random", "-", f"{rnd['delta_bg_rgb']:.1f}", f"{rnd['delta_fg_rgb']:.1f}",
                 f"{rnd['class_kept']:.3f}"])
    return {"fidelity": markdown_table(["truncation", "recognised", "per class 0..9"], fid),
            "directions": markdown_table(["direction", "sigma^2", "background change",
                                          "digit-colour change", "class kept"], dirs)}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown pipe table (pipes inside cells escaped)."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def _cgn_row(variant: str, title: str, preset: str | None = None) -> list[str] | None:
    parts = []
    for precision in ("fp32", "bf16"):
        select = dict(precision=precision, preset=preset)
        s = cgn_preset_summary(variant, **select)
        erm = cgn_preset_summary(variant, "original", **select)
        if s is None:
            continue
        text = f"{precision}: CGN heads {s.text(' % OOD')}"
        if erm is not None:
            text += f" (ERM {erm.mean:.1f})"
        texture = _texture_ood(cgn_preset_runs(variant, **select))
        if texture:
            text += "; on unseen textures " + ", ".join(texture)
        parts.append(text)
    if not parts:
        return None
    return [f"CGN on {title} (`{preset or variant + '-full'}` preset, `bench/cgn_mnist.py`)",
            "; ".join(parts) + f". Paper {PAPER_OOD[variant]}",
            "`docs/texture_ood.md`" if preset else "`docs/cgn_mnist.md`"]


def _texture_ood(runs: list[dict[str, Any]], method: str = "cgn") -> list[str]:
    """``"photos 54.9 % (seed 9)"`` per texture-OOD set scored by any of ``runs``."""
    by_set: dict[str, dict[int, float]] = defaultdict(dict)
    for r in runs:
        for name, acc in r["results"].get(method, {}).get("ood_textures", {}).items():
            by_set[name][_seed(r)] = 100 * acc
    from causalkit.datasets.texture_sets import VALIDATION_SETS

    return [f"{name}{' (validation)' if name in VALIDATION_SETS else ''} "
            + Summary(method, tuple(sorted(v)), tuple(v[k] for k in sorted(v))).text(" %")
            for name, v in by_set.items()]


def _texture_ood_family() -> str:
    """The random-texture family of the ``wildlife-texture-ood`` preset, as a title says it."""
    from robust_training.experiments.cgn_mnist import preset_config

    family = preset_config(preset="wildlife-texture-ood").flat().get("random_family",
                                                                     "features")
    return {"features": "random-feature"}.get(family, family)


def readme_results() -> str:
    """The README's results table, from the records."""
    rows = [r for r in (_cgn_row("colored", "colored MNIST"),
                        _cgn_row("double-colored", "double-colored MNIST"),
                        _cgn_row("wildlife", "Wildlife MNIST"),
                        _cgn_row("wildlife", "Wildlife MNIST, colour shift and "
                                 f"{_texture_ood_family()} textures for unseen textures",
                                 preset="wildlife-texture-ood")) if r]
    speed = speed_pairs()
    cgn, clf = speed.get("cgn wildlife", {}), speed.get("classifier cnn", {})
    if {"fp32", "bf16"} <= cgn.keys() and {"fp32", "bf16"} <= clf.keys():
        rows.append(["CGN training speed (`bench/cgn_step.py`, `bench/classifier_step.py`; "
                     "2 CPU threads)",
                     f"float32 -> bfloat16 autocast: Wildlife CGN iteration {cgn['fp32']:.2f} "
                     f"-> {cgn['bf16']:.2f} s, classifier step {clf['fp32']:.0f} -> "
                     f"{clf['bf16']:.0f} ms", "`docs/cgn_mnist.md`"])
    for preset in ("default", "colored-cms"):
        for i, (_digest, methods) in enumerate(sorted(genint_preset_summaries(preset).items())):
            if "genint" not in methods:
                continue
            others = ", ".join(f"{m} {methods[m].mean:.1f} +- {methods[m].std:.1f}"
                               for m in ("erm", "gan-aug", "genint-transfer") if m in methods)
            name = f"GenInt on colored MNIST (`genint-mnist/{preset}` preset"
            name += f", generator {i + 1})" if i else ")"
            rows.append([name, f"GenInt {methods['genint'].text(' % OOD')}; {others}",
                         "`docs/training_with_interventions.md`"])
    return markdown_table(["benchmark", "result (from `bench/results/`)", "page"], rows)


def update_readme(path: str | os.PathLike, *, check: bool = False) -> bool:
    """Rewrite the table between the README's results markers; with ``check``, only
    report whether it is current. Returns ``True`` when the file is (now) current."""
    path = Path(path)
    text = path.read_text()
    if _START not in text or _END not in text:
        raise DataError(f"{path} has no {_START} ... {_END} block; add the markers where "
                        "the results table goes")
    new = re.sub(re.escape(_START) + r".*?" + re.escape(_END),
                 lambda _: f"{_START}\n{readme_results()}\n{_END}", text, flags=re.S)
    if new == text:
        return True
    if not check:
        path.write_text(new)
    return not check


def main(argv: Sequence[str] | None = None) -> int:
    """``--write README`` or ``--check README``."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", type=Path)
    p.add_argument("--check", type=Path)
    args = p.parse_args(argv)
    if args.write:
        update_readme(args.write)
    if args.check and not update_readme(args.check, check=True):
        print(f"{args.check}: the results table differs from the records; run "
              f"python -m robust_training.experiments.reports --write {args.check}")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
