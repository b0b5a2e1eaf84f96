"""The packages import one way, without cycles, and the benchmarks are thin drivers.

Imports run ``causalkit`` (core) <- ``generators`` <- ``analysis`` / ``robust_training``
<- ``robust_training.experiments`` <- ``causalkit.cli``. Every module is parsed with
:mod:`ast` (nothing is imported), so each check sees the imports inside functions too,
and a failure names the module, the line and the import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("causalkit", "generators", "analysis", "robust_training")


@dataclass(frozen=True)
class Import:
    """One import statement of a project module: who imports what, where."""

    module: str  # the importing module, e.g. "generators.sampling"
    target: str  # the project module imported, e.g. "generators.directions"
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    """Every module of the four packages, except the command line (``causalkit.cli``),
    which sits on top of them all."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = _module_name(path)
            if name != "causalkit.cli" and not name.startswith("causalkit.cli."):
                modules[name] = path
    return modules


MODULES = _project_modules()


def _resolve(target: str) -> str | None:
    """The project module an import loads: the longest known prefix of ``target``
    (``from generators.directions import Directions`` loads ``generators.directions``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _imports(name: str, path: Path) -> list[Import]:
    """The project imports of one module, at module level and inside functions alike."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                package = name.split(".") if path.name == "__init__.py" else \
                    name.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from package import submodule" loads the submodule
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None and resolved != name:
                found.append(Import(name, resolved, node.lineno))
    return found


IMPORTS = [imp for name, path in MODULES.items() for imp in _imports(name, path)]


def _top(module: str) -> str:
    return module.split(".")[0]


# (importing layer, forbidden packages, why): a layer is a package, or a package minus
# the sub-packages that sit above it.
RULES = [
    ("causalkit", ("generators", "analysis", "robust_training"),
     "the core imports none of the other packages (only causalkit.cli may)"),
    ("generators", ("analysis", "robust_training"),
     "generators build on the core only"),
    ("analysis", ("robust_training",),
     "analysis and robust_training are siblings on top of generators"),
]


@pytest.mark.parametrize("layer, forbidden, why", RULES, ids=[r[0] for r in RULES])
def test_imports_run_one_way(layer, forbidden, why):
    bad = [str(imp) for imp in IMPORTS
           if _top(imp.module) == layer and _top(imp.target) in forbidden]
    assert not bad, f"{why}; move the code down a layer or up to the caller:\n  " + \
        "\n  ".join(bad)


def test_robust_training_below_experiments_imports_no_analysis():
    bad = [str(imp) for imp in IMPORTS
           if _top(imp.module) == "robust_training"
           and not imp.module.startswith("robust_training.experiments")
           and _top(imp.target) == "analysis"]
    assert not bad, ("robust_training and analysis are siblings; only the experiments "
                     "layer (robust_training.experiments) may use both:\n  " + "\n  ".join(bad))


def test_no_import_cycles():
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for imp in IMPORTS:
        graph.add_edge(imp.module, imp.target, line=imp.line)
    cycles = sorted(nx.simple_cycles(graph), key=len)
    described = [" -> ".join(f"{a} (line {graph.edges[a, b]['line']})"
                             for a, b in zip(c, c[1:] + c[:1], strict=True)) + f" -> {c[0]}"
                 for c in cycles[:10]]
    assert not cycles, (f"{len(cycles)} import cycle(s) among project modules (function-level "
                        "imports included); move the shared code into a module both "
                        "import:\n  " + "\n  ".join(described))


def test_the_checks_see_imports():
    # guards the checks above against passing vacuously (a parsing change that finds
    # nothing would make every rule hold)
    assert len(MODULES) > 50 and len(IMPORTS) > 100
    assert any(imp.module == "generators.sampling" and imp.target == "generators.directions"
               for imp in IMPORTS)


BENCH = sorted((ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCH, ids=[p.name for p in BENCH])
def test_bench_scripts_are_thin_drivers(script):
    """A bench script runs as ``python bench/x.py`` with the packages installed: it edits
    no ``sys.path`` and imports no other bench script (shared code lives in a package)."""
    tree = ast.parse(script.read_text(), filename=str(script))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            bad.append(f"line {node.lineno}: sys.path")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                (node.module == "bench" or node.module.startswith("bench.")
                 or f"{node.module}.py" in {p.name for p in BENCH}):
            bad.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            bad += [f"line {node.lineno}: import {a.name}" for a in node.names
                    if a.name == "bench" or a.name.startswith("bench.")
                    or f"{a.name}.py" in {p.name for p in BENCH}]
    assert not bad, (f"bench/{script.name} must be a thin driver of package functions: "
                     "no sys.path edits, no imports of other bench scripts (move the shared "
                     "code into a package):\n  " + "\n  ".join(bad))
