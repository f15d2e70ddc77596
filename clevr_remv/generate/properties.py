"""Object properties (shapes, colours, materials, sizes): load, validate, default set."""

from pathlib import Path

from clevr_remv.resources import resource_dir
from clevr_remv.schemas import read_json


def default_properties_path() -> Path:
    """The CLEVR property set shipped with the package."""
    return resource_dir("properties") / "properties.json"


def load_properties(path=None) -> dict:
    """Read and validate a properties file (the shipped CLEVR set when ``path`` is None)."""
    path = Path(path) if path is not None else default_properties_path()
    return read_json(path, "properties", source=f"--properties {path}")
