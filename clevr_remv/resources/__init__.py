"""Locate the data folders shipped with the package (templates, properties, blender_scripts).

In a source checkout they are the top-level folders of the repository; an installed
wheel carries them as the subpackages ``clevr_remv.resources.<name>``.
"""
from importlib import resources
from pathlib import Path


def resource_dir(name: str) -> Path:
    """Return the directory of the shipped resource folder ``name`` (e.g. "templates")."""
    return Path(str(resources.files(f"clevr_remv.resources.{name}")))
