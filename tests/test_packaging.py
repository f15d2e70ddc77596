import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "clevr_remv").rglob("__init__.py")}
    assert found - listed == set()


def test_core_imports_without_torch_or_bpy():
    import subprocess
    import sys

    code = ("import sys, clevr_remv.cli, clevr_remv.generate, clevr_remv.store, clevr_remv.synthetic;"
            "assert 'torch' not in sys.modules and 'bpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
