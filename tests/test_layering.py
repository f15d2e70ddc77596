"""The package's folders follow the data flow: a lower layer never imports a higher one."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "clevr_remv"

# Top-level part of the package -> its layer; imports may only go to the same or a lower layer.
LAYERS = {
    "errors": 0,
    "schemas": 0,
    "metrics": 0,
    "geometry": 0,
    "resources": 0,
    "wording": 0,
    "dataset": 1,
    "refexp": 2,
    "generate": 3,
    "res": 4,
    "retrieval": 4,
    "depth_bench": 4,
    "view": 5,
    "cli": 6,
    "__main__": 6,
}
SIBLINGS_APART = {frozenset({"res", "retrieval"})}


def part_of(module: str):
    """'clevr_remv.dataset.store' -> 'dataset'; None for the package root itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clevr_remv"):
            yield from (
                f"{node.module}.{alias.name}" if node.module == "clevr_remv" else node.module for alias in node.names
            )
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("clevr_remv"))


def test_no_import_runs_backwards_or_between_res_and_retrieval():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue  # the package root exposes ClevrRemvDataset lazily
        source = relative.parts[0].removesuffix(".py")
        for module in imported_modules(path):
            target = part_of(module)
            if target in (None, "__version__", "FORMAT_VERSION") or target == source:
                continue
            if LAYERS[target] > LAYERS[source] or frozenset({source, target}) in SIBLINGS_APART:
                wrong.append(f"{relative} imports {module}")
    assert wrong == []


def test_every_top_level_part_has_a_layer():
    parts = {
        path.name.removesuffix(".py")
        for path in PACKAGE.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").is_file()
    }
    assert parts - {"__init__"} == set(LAYERS)


def module_name(path: Path) -> str:
    """clevr_remv/dataset/packed/__init__.py -> 'clevr_remv.dataset.packed'."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_module_names(path: Path, modules) -> set:
    """The modules of ``modules`` that ``path`` imports; ``from package import module`` names the module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & set(modules)


def test_no_module_imports_itself_round_a_circle_even_inside_a_function():
    """An import circle (validate -> packed.check -> validate) works only while one side imports
    late; a type both sides need lives in a module of its own (the package root, which exposes
    ClevrRemvDataset lazily, aside)."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py"}
    graph = {name: imported_module_names(path, paths) - {name} for name, path in paths.items()}
    circles = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph[module]
        if start in seen:
            circles.append(start)
    assert circles == []
