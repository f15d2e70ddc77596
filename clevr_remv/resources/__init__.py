"""Locate the data folders shipped with the package (templates, properties, blender_scripts).

They live at the top of the repository. A source checkout (a pyproject.toml beside the
``clevr_remv`` folder) uses its own, even when another checkout is installed in editable mode
(``PYTHONPATH=.`` then tests this checkout's render worker, not the installed one's); an installed
wheel carries them as the subpackages ``clevr_remv.resources.<name>``.
"""

from importlib import resources
from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def resource_dir(name: str) -> Path:
    """Return the directory of the shipped resource folder ``name`` (e.g. "templates")."""
    if (CHECKOUT_ROOT / "pyproject.toml").is_file() and (CHECKOUT_ROOT / name).is_dir():
        return CHECKOUT_ROOT / name
    try:
        return Path(str(resources.files(f"clevr_remv.resources.{name}")))
    except ModuleNotFoundError:
        return CHECKOUT_ROOT / name
