"""Object properties (shapes, colours, materials, sizes): load, validate, default set."""
import json
from pathlib import Path

from clevr_remv.errors import ClevrRemvError
from clevr_remv.resources import resource_dir
from clevr_remv.schemas import validate


def default_properties_path() -> Path:
    """The CLEVR property set shipped with the package."""
    return resource_dir("properties") / "properties.json"


def load_properties(path=None) -> dict:
    """Read and validate a properties file (the shipped CLEVR set when ``path`` is None)."""
    path = Path(path) if path is not None else default_properties_path()
    try:
        properties = json.loads(path.read_text())
    except OSError as error:
        raise ClevrRemvError(f"--properties {path}: cannot read the file ({error.strerror}); "
                             "pass an existing JSON file") from error
    except json.JSONDecodeError as error:
        raise ClevrRemvError(f"--properties {path}: not valid JSON (line {error.lineno}, "
                             f"column {error.colno}: {error.msg}); fix the JSON syntax") from error
    validate(properties, "properties", f"--properties {path}")
    return properties
