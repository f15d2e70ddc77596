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

    code = (
        "import sys, clevr_remv.cli, clevr_remv.generate.pipeline, clevr_remv.dataset.store, "
        "clevr_remv.generate.synthetic;"
        "assert 'torch' not in sys.modules and 'bpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_plain_source_checkout_finds_the_shipped_resources():
    """Without `pip install` (no editable finder, the checkout on sys.path) the templates,
    properties and worker script still resolve."""
    import subprocess
    import sys

    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)];"
        f"sys.path.insert(0, {str(ROOT)!r});"
        "from clevr_remv.generate.properties import load_properties;"
        "from clevr_remv.generate.render import worker_script;"
        "from clevr_remv.refexp import load_template_set;"
        "import os; assert load_properties()['shapes'] and load_template_set(None);"
        "assert os.path.isfile(worker_script())"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_a_checkout_uses_its_own_worker_script_even_beside_an_editable_install():
    """PYTHONPATH=<checkout> must test that checkout's render worker, not the one of whichever
    checkout is installed in editable mode."""
    from clevr_remv.generate.render import worker_script

    assert Path(worker_script()) == ROOT / "blender_scripts" / "render_scene.py"
