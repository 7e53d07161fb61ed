"""The package's layering, read from the sources: no import cycle anywhere (imports inside functions and
under TYPE_CHECKING included), lower layers never import upper ones, and the root stays small."""

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "dsmini"
MAX_ROOT_MODULES = 15
# Each folder may import only what sits below it (README, "Where each concept lives"). These root modules sit
# below every folder; the others (the package's facade, the CLI's entry, the page registry) above them all.
BASE_MODULES = {"dsmini.config", "dsmini.i18n", "dsmini.single_flight", "dsmini.version"}
ALLOWED = {
    "model": set(),
    "data": {"model"},
    "decoding": {"model", "data"},
    "checkpoint": {"model", "data"},
    "training": {"model", "data", "decoding", "checkpoint"},
    "export": {"model", "data", "checkpoint"},
    "probes": {"model", "data", "decoding", "checkpoint", "training"},
    "charts": {"model", "data", "probes"},
    "jobs": {"model", "data", "decoding", "checkpoint", "training", "export"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """Every dsmini module `name` imports, wherever the import statement sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:  # `from pkg import module` imports the module itself
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = sources()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def test_lower_layers_never_import_upper_ones(graph):
    wrong = []
    for module, targets in graph.items():
        own = folder(module)
        if own not in ALLOWED:
            continue
        for target in targets:
            other = folder(target)
            if other is not None and other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_base_modules_import_no_folder(graph):
    assert {module: sorted(graph[module]) for module in BASE_MODULES if graph[module] - BASE_MODULES} == {}


def test_the_root_keeps_few_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_no_module_imports_streamlit():
    users = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if any(isinstance(n, (ast.Import, ast.ImportFrom)) and "streamlit" in ast.unparse(n)
                    for n in ast.walk(ast.parse(p.read_text())))]
    assert users == []
