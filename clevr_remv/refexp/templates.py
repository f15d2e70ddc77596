"""Load and check a template set: one JSON file per family (CLEVR template format) + synonyms.json.

A template's nodes may use the CLEVR macros ``filter`` (any of <Z> <C> <M> <S>) and
``filter_unique`` (the same, then ``unique``) besides the engine's basic functions. A template
marked ``"plural": true`` names every object of its last node's set (multi-target expressions of
``--expressions generalized``; its last node must give a set); the others name one object.
"""

import dataclasses
import functools
import re
from pathlib import Path

from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import engine
from clevr_remv.resources import resource_dir
from clevr_remv.schemas import read_json
from clevr_remv.wording import plural

SYNONYMS_FILE = "synonyms.json"
ATTRIBUTE_TYPES = {"Size": "size", "Color": "color", "Material": "material", "Shape": "shape"}
PLACEHOLDER = re.compile(r"<[A-Z]+[0-9]*>")

# Template node -> (input kinds, output kind): the engine's functions plus CLEVR's filter macros.
NODE_KINDS = {kind: (inputs, output) for kind, (inputs, _, output) in engine.SIGNATURES.items()}
NODE_KINDS.update({"filter": ((engine.SET,), engine.SET), "filter_unique": ((engine.SET,), engine.OBJECT)})
ATTRIBUTE_FILTERS = ("filter", "filter_unique")
# Node -> the parameter types its side inputs must have (in any order); attribute filters differ.
SIDE_INPUT_TYPES = {
    **{f"filter_{attribute}": (type_name,) for type_name, attribute in ATTRIBUTE_TYPES.items()},
    "relate": ("Relation",),
    "filter_ordinal": ("Direction", "Ordinal"),
    "filter_visibility": ("Visibility",),
}


@dataclasses.dataclass(frozen=True)
class Template:
    """One checked template of a family file."""

    family: str  # file name, e.g. "one_hop.json"
    index: int  # position in that file
    text: tuple
    nodes: tuple  # {"type", "inputs", "side_inputs"} dicts
    params: dict  # name -> type
    null_params: frozenset
    out_neq: tuple  # (node, node) pairs whose outputs must differ
    plural: bool = False  # names a set of objects (its last node's), not one


@dataclasses.dataclass(frozen=True)
class TemplateSet:
    """All families of a template folder and the synonyms used to vary their wording."""

    directory: Path
    families: dict  # file name -> tuple of Template
    synonyms: dict

    def _keeping(self, plural: bool) -> "TemplateSet":
        kept = {name: tuple(t for t in templates if t.plural == plural) for name, templates in self.families.items()}
        return dataclasses.replace(self, families={name: templates for name, templates in kept.items() if templates})

    def singular(self) -> "TemplateSet":
        """This set without its plural templates: the single-referent families."""
        return self._keeping(False)

    def plural(self) -> "TemplateSet":
        """Only this set's plural (multi-target) templates; no families when it has none."""
        return self._keeping(True)


def _fail(path, index, field, problem, fix="fix the template") -> ClevrRemvError:
    return ClevrRemvError(f"{path}: template {index}, field '{field}': {problem}; {fix}")


def _check_side_inputs(path, index, position, node, params, used) -> None:
    field = f"nodes/{position}/side_inputs"
    names = node.get("side_inputs", [])
    for name in names:
        if name not in params:
            raise _fail(path, index, field, f"{name} is not declared in params", "declare it in params")
        if name in used:
            raise _fail(
                path,
                index,
                field,
                f"{name} is already a side input of node {used[name]}",
                "give each node its own parameters",
            )
        used[name] = position
    types = [params[name] for name in names]
    kind = node["type"]
    if kind in ATTRIBUTE_FILTERS:
        if any(t not in ATTRIBUTE_TYPES for t in types) or len(set(types)) != len(types):
            raise _fail(
                path,
                index,
                field,
                f"{kind} takes at most one parameter of each of the types {', '.join(ATTRIBUTE_TYPES)}, got {types}",
            )
    elif sorted(types) != sorted(SIDE_INPUT_TYPES.get(kind, ())):
        wanted = list(SIDE_INPUT_TYPES.get(kind, ())) or "none"
        raise _fail(path, index, field, f"{kind} takes parameters of types {wanted}, got {types}")


def _check_nodes(path, index, nodes, params) -> None:
    used = {}
    for position, node in enumerate(nodes):
        input_kinds, _ = NODE_KINDS[node["type"]]
        inputs = node["inputs"]
        if len(inputs) != len(input_kinds) or any(i >= position for i in inputs):
            raise _fail(
                path,
                index,
                f"nodes/{position}/inputs",
                f"{node['type']} needs {plural(len(input_kinds), 'input')} from earlier nodes, got {inputs}",
            )
        for i, want in zip(inputs, input_kinds, strict=False):
            if NODE_KINDS[nodes[i]["type"]][1] != want:
                raise _fail(
                    path,
                    index,
                    f"nodes/{position}/inputs",
                    f"{node['type']} needs a {want} but node {i} ({nodes[i]['type']}) gives a "
                    f"{NODE_KINDS[nodes[i]['type']][1]}",
                )
        _check_side_inputs(path, index, position, node, params, used)
    for name in params:
        if name not in used:
            raise _fail(
                path, index, "params", f"{name} is not a side input of any node", "use it in a node or remove it"
            )


def _check_text(path, index, texts, params) -> None:
    for position, text in enumerate(texts):
        field = f"text/{position}"
        found = PLACEHOLDER.findall(text)
        for name in found:
            if name not in params:
                raise _fail(path, index, field, f"{name} is not declared in params")
        for name in params:
            if name not in found:
                raise _fail(
                    path,
                    index,
                    field,
                    f"{name} does not appear in this variant",
                    "every variant must mention every parameter",
                )
        if not re.fullmatch(r"[^\[\]]*(\[[^\[\]]*\][^\[\]]*)*", text):
            raise _fail(path, index, field, "unbalanced or nested [optional] brackets")


def _check_constraints(path, index, constraints, params, node_count) -> tuple:
    null_params, out_neq = set(), []
    for position, constraint in enumerate(constraints):
        field = f"constraints/{position}/params"
        if constraint["type"] == "NULL":
            for name in constraint["params"]:
                if params.get(name) not in ATTRIBUTE_TYPES:
                    raise _fail(path, index, field, f"NULL applies to declared attribute parameters, not {name}")
                null_params.add(name)
        else:
            first, second = constraint["params"]
            if max(first, second) >= node_count:
                raise _fail(
                    path, index, field, f"OUT_NEQ names node {max(first, second)} but there are {node_count} nodes"
                )
            out_neq.append((first, second))
    return frozenset(null_params), tuple(out_neq)


def parse_template_file(path: Path) -> tuple:
    """Read, schema-check and consistency-check one family file; return its Templates."""
    document = read_json(path, "templates", item="template")
    templates = []
    for index, raw in enumerate(document):
        params = {}
        for position, param in enumerate(raw["params"]):
            if param["name"] in params:
                raise _fail(path, index, f"params/{position}/name", f"{param['name']} is declared twice")
            params[param["name"]] = param["type"]
        _check_nodes(path, index, raw["nodes"], params)
        _check_text(path, index, raw["text"], params)
        null_params, out_neq = _check_constraints(path, index, raw.get("constraints", []), params, len(raw["nodes"]))
        plural = raw.get("plural", False)
        if plural and NODE_KINDS[raw["nodes"][-1]["type"]][1] != engine.SET:
            raise _fail(
                path,
                index,
                "plural",
                f"a plural template names a set, but its last node ({raw['nodes'][-1]['type']}) gives an object",
                "end it with a set-valued node",
            )
        nodes = tuple(
            {"type": n["type"], "inputs": list(n["inputs"]), "side_inputs": list(n.get("side_inputs", []))}
            for n in raw["nodes"]
        )
        templates.append(Template(path.name, index, tuple(raw["text"]), nodes, params, null_params, out_neq, plural))
    return tuple(templates)


def load_synonyms(path: Path) -> dict:
    """Read and schema-check a synonyms file (phrase -> list of variants)."""
    return read_json(path, "synonyms")


def default_templates_dir() -> Path:
    """The template set shipped with the package."""
    return resource_dir("templates")


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str, _signature: tuple) -> TemplateSet:
    folder = Path(directory)
    files = sorted(p for p in folder.glob("*.json") if p.name != SYNONYMS_FILE)
    if not files:
        raise ClevrRemvError(
            f"--templates {folder}: the folder holds no template files (*.json); "
            "pass a folder with one JSON template file per family"
        )
    synonyms_path = folder / SYNONYMS_FILE
    if not synonyms_path.is_file():
        synonyms_path = default_templates_dir() / SYNONYMS_FILE
    return TemplateSet(folder, {p.name: parse_template_file(p) for p in files}, load_synonyms(synonyms_path))


def load_template_set(directory=None) -> TemplateSet:
    """Load every family file of ``directory`` (the shipped set when None) and its synonyms.json
    (the shipped synonyms when the folder has none). Results are cached until a file changes."""
    folder = Path(directory) if directory is not None else default_templates_dir()
    if not folder.is_dir():
        raise ClevrRemvError(
            f"--templates {folder}: no such folder; pass a folder of template JSON files "
            "(see the shipped templates/ folder)"
        )
    signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.json")))
    return _load_cached(str(folder.resolve()), signature)
