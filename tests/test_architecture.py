"""The layers of kbroker hold (ARCHITECTURE.md): no module imports from a layer above its own
(`lint-imports`, the contract in pyproject.toml, also run by scripts/test), and no import cycle
exists anywhere in the package, type-only imports included."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), generated messages left out."""
    modules = sorted(m for m in graph.modules if ".messages." not in m)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if ".messages." in imported:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_kbroker_has_no_import_cycle():
    graph = grimp.build_graph("kbroker")  # TYPE_CHECKING imports are imports too
    assert _cycles(graph) == []


def test_the_layers_contract_is_kept():
    lint_imports = shutil.which("lint-imports")
    assert lint_imports, "import-linter is a test dependency (pyproject.toml [test])"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
