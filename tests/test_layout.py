"""The package layout: the path of a module tells which side of the HTTP line it is on.

`tileserver.core` (and `ingest`, `styles`) load no Flask; no package imports another that imports it
back. Both are read from the source itself, so a new import that breaks the layering fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tileserver", "ingest", "styles")


def modules_under(folder: str) -> list[str]:
    """Every module below `folder` (a package path like `tileserver/core`), as dotted names."""
    names = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("folder", ["tileserver/core", "ingest", "styles"])
def test_nothing_below_the_web_layer_loads_flask(folder):
    """Importing every module of the core, ingest or styles leaves Flask and the web package unloaded."""
    imports = "; ".join(f"import {name}" for name in modules_under(folder))
    web = "m.split('.')[0] in ('flask', 'werkzeug') or m.startswith('tileserver.web')"
    check = f"{imports}; import sys; print(sorted(m for m in sys.modules if {web}))"
    loaded = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def package_of(module: str) -> str:
    """The package a module belongs to (a package's `__init__` belongs to the package itself)."""
    path = ROOT.joinpath(*module.split("."))
    return module if (path / "__init__.py").exists() else module.rsplit(".", 1)[0]


def imported_packages(path: Path) -> set[str]:
    """The first-party packages a source file imports, at any depth of the file (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            path_of = ROOT.joinpath(*target.split("."))
            exists = (path_of / "__init__.py").exists() or path_of.with_suffix(".py").exists()
            if target.split(".")[0] in PACKAGES and exists:
                found.add(package_of(target))
    return found


def package_graph() -> dict[str, set[str]]:
    """Package -> the other first-party packages its modules import."""
    graph: dict[str, set[str]] = {}
    for top in PACKAGES:
        for module in modules_under(top):
            source = ROOT.joinpath(*module.split("."))
            source = source / "__init__.py" if source.is_dir() else source.with_suffix(".py")
            package = package_of(module)
            graph.setdefault(package, set()).update(imported_packages(source) - {package})
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path that returns to its start, or None.

    >>> cycle_in({"a": {"b"}, "b": {"a"}})
    ['a', 'b', 'a']
    >>> cycle_in({"a": {"b"}, "b": set()}) is None
    True
    """
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for child in sorted(graph.get(node, ())):
            if found := visit(child, [*path, node]):
                return found
        done.add(node)
        return None

    return next((found for node in sorted(graph) if (found := visit(node, []))), None)


def test_no_import_cycle_between_packages():
    assert cycle_in(package_graph()) is None


def test_the_core_imports_neither_the_web_nor_ingest_nor_styles():
    graph = package_graph()
    for package, imported in graph.items():
        if package.startswith("tileserver.core"):
            assert not {p for p in imported if not p.startswith("tileserver.core")}, package
    assert all(p.startswith("tileserver.core") for p in graph["ingest"] | graph["styles"])
