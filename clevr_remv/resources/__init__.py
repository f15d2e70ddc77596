"""Locate the data folders shipped with the package (templates, properties, blender_scripts).

They live at the top of the repository. An installed wheel (or an editable install) carries them
as the subpackages ``clevr_remv.resources.<name>``; a plain source checkout, used without
installing (``PYTHONPATH=.``), finds them beside the ``clevr_remv`` folder.
"""
from importlib import resources
from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def resource_dir(name: str) -> Path:
    """Return the directory of the shipped resource folder ``name`` (e.g. "templates")."""
    try:
        return Path(str(resources.files(f"clevr_remv.resources.{name}")))
    except ModuleNotFoundError:
        return CHECKOUT_ROOT / name
