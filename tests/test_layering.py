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
