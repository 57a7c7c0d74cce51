"""The code's shape, checked from its source: no import cycle, the layers in order, and modules and
functions short enough to read in a sitting (the house style: a module is a room with one job).

Every import counts, those inside functions too: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "effscale"
# Lower imports nothing higher: cli/service -> search, export -> trainer -> models -> the foundations.
LAYERS = {
    "effscale._version": 0, "effscale._lazy": 0, "effscale._settings": 0, "effscale.errors": 0,
    "effscale.storage": 0, "effscale.models": 1, "effscale.trainer": 2, "effscale.search": 3, "effscale.export": 3,
    "effscale.service": 4, "effscale.cli": 4, "effscale": 5,
}
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("effscale"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                out.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("effscale")}
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    owner = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[owner]


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [(m, d) for m, deps in GRAPH.items() for d in deps if _layer(d) > _layer(m)]
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_are_short(module: str) -> None:
    source = MODULES[module].read_text()
    assert source.count("\n") <= MAX_MODULE_LINES
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_walker_sees_lazy_imports_and_nested_layers() -> None:
    # The walker itself: a function-level import counts, and the layer of a nested module is its package's.
    assert "effscale.search.planning.ways_out" in GRAPH["effscale.search.driver"]
    assert _layer("effscale.search.records.schema") == 3 and _layer("effscale.models.regime") == 1
