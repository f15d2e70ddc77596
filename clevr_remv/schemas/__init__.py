"""JSON Schemas of every file clevr-remv reads or writes, and one validation helper.

Documents are checked with a compiled validator (fastjsonschema, fast enough for every scene
of a large dataset); a failing document is checked again with jsonschema for the clearest message.
"""
import functools
import json
from importlib import resources

import fastjsonschema
import jsonschema

from clevr_remv.errors import ClevrRemvError


@functools.cache
def load_schema(name: str) -> dict:
    """Return the schema ``<name>.schema.json`` shipped in this package."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)


@functools.cache
def _compiled(name: str):
    return fastjsonschema.compile(load_schema(name))


def validate(document, schema_name: str, source) -> None:
    """Check ``document`` against schema ``schema_name``; raise ClevrRemvError naming ``source``,
    the offending field and the rule it breaks."""
    try:
        _compiled(schema_name)(document)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return
    field = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    raise ClevrRemvError(
        f"{source}: field '{field}' is invalid: {error.message}. "
        f"Fix it to match the {schema_name} schema (clevr_remv/schemas/{schema_name}.schema.json)."
    )
