"""JSON Schemas of every file clevr-remv reads or writes, and the helpers that read and validate them.

Documents are checked with a compiled validator (fastjsonschema, fast enough for every scene
of a large dataset); a failing document is checked again with jsonschema for the clearest message.
When the two disagree (the compiled check rejects, jsonschema finds nothing) the document is rejected.
"""

import functools
import json
from importlib import resources
from pathlib import Path

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


def validate(document, schema_name: str, source, fix=None, item=None) -> None:
    """Check ``document`` against schema ``schema_name``; raise ClevrRemvError naming ``source``,
    the offending field, the rule it breaks and ``fix`` (default: match the schema).

    ``item`` names the elements of a list document (e.g. "template"): the message then says
    "<item> <index>, field '<path within it>'".
    """
    try:
        _compiled(schema_name)(document)
        return
    except fastjsonschema.JsonSchemaException as compiled_error:
        rejection = compiled_error
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        raise ClevrRemvError(
            f"{source}: rejected by the compiled {schema_name} schema ({rejection}) although "
            "jsonschema accepts it; this disagreement is a clevr-remv bug: please report it with "
            "the file attached"
        )
    path = [str(part) for part in error.absolute_path]
    if item is not None and path:
        field = "/".join(path[1:]) or f"({item})"
        where = f"{item} {path[0]}, field '{field}'"
    else:
        where = f"field '{'/'.join(path) or '(top level)'}'"
    fix = fix or f"fix it to match the {schema_name} schema"
    raise ClevrRemvError(
        f"{source}: {where} is invalid: {error.message}; {fix} (see clevr_remv/schemas/{schema_name}.schema.json)"
    )


def read_json(path, schema_name=None, source=None, fix=None, item=None):
    """Read the JSON file ``path`` and, when ``schema_name`` is given, validate it.

    Errors are ClevrRemvErrors naming ``source`` (default: the path) and ``fix`` (default: a
    generic fix for each kind of failure); ``item`` is passed on to `validate`.
    """
    source = path if source is None else source
    try:
        document = json.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except OSError as error:
        raise ClevrRemvError(
            f"{source}: cannot read the file ({error.strerror}); {fix or 'pass an existing JSON file'}"
        ) from error
    except UnicodeDecodeError as error:
        raise ClevrRemvError(
            f"{source}: not UTF-8 text ({error.reason} at byte {error.start}), so not a JSON "
            f"file; {fix or 'save it as UTF-8 JSON'}"
        ) from error
    except json.JSONDecodeError as error:
        raise ClevrRemvError(
            f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); {fix or 'fix the JSON syntax'}"
        ) from error
    if schema_name is not None:
        validate(document, schema_name, source, fix, item)
    return document
