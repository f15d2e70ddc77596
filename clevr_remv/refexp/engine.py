"""The program engine: CLEVR functions (plus CLEVR-Ref+'s ordinal and visibility filters) over a scene.

Sets are frozensets of 0-based object positions, objects are ints. A function returns None when
its result is undefined (``unique`` of a set that is not a singleton, an ordinal that is out of
range or tied); a program with an undefined node has no referent.

Generalized expressions (`answer_set`) read a program as naming a set of objects: a final
``unique`` names the set it picks from when that set has at most one member (none = "no
target"), a set-valued end (a plural template) names its whole set.
"""

import dataclasses

from clevr_remv.errors import ClevrRemvError
from clevr_remv.wording import plural

ATTRIBUTES = ("size", "color", "material", "shape")
RELATIONS = ("left", "right", "front", "behind")
ORDINAL_DIRECTIONS = ("left", "right", "front")
VISIBILITIES = ("fully", "partially")
# CLEVR-Ref+: an object is partially visible when >= 20 % of its box is covered by nearer objects.
OCCLUSION_THRESHOLD = 0.2
# Objects closer than this along a direction (world units, CLEVR's relation epsilon) tie for an ordinal.
ORDINAL_EPS = 0.2
# CLEVR-Ref+: the ordinal and visibility filters only apply to a set of at least two objects.
MIN_SET_FOR_CHOICE = 2

SET, OBJECT = "set", "object"

# Basic function -> (input kinds, number of side inputs, output kind).
SIGNATURES = {
    "scene": ((), 0, SET),
    **{f"filter_{attribute}": ((SET,), 1, SET) for attribute in ATTRIBUTES},
    "unique": ((SET,), 0, OBJECT),
    "relate": ((OBJECT,), 1, SET),
    **{f"same_{attribute}": ((OBJECT,), 0, SET) for attribute in ATTRIBUTES},
    "filter_ordinal": ((SET,), 2, SET),
    "filter_visibility": ((SET,), 1, SET),
    "union": ((SET, SET), 0, SET),
    "intersect": ((SET, SET), 0, SET),
}


@dataclasses.dataclass(frozen=True)
class SceneFacts:
    """What programs can ask about a scene seen from one view: attributes, relations and positions
    (the same in every view: relations and ordinals use the central camera's ground directions,
    which the whole rig shares) and that view's occlusion (the one view-dependent fact)."""

    attributes: tuple  # per object: {"size": .., "color": .., "material": .., "shape": ..}
    relations: dict  # relation -> tuple of frozensets (objects that are r of object i)
    positions: dict  # ordinal direction -> tuple of each object's coordinate along it
    occlusion: tuple  # per object, occluded fraction of its box in this view

    @property
    def count(self) -> int:
        return len(self.attributes)

    @classmethod
    def from_scene(cls, scene: dict, view: int = None) -> "SceneFacts":
        """Read a scene.json document (objects, relationships, directions) as seen from view
        position ``view`` in scene["views"] (default: the centre view)."""
        objects = scene["objects"]
        view = centre_view_position(scene) if view is None else view
        positions = {}
        for direction in ORDINAL_DIRECTIONS:
            axis = scene["directions"][direction]
            positions[direction] = tuple(
                sum(c * a for c, a in zip(obj["3d_coords"], axis, strict=False)) for obj in objects
            )
        return cls(
            attributes=tuple({attribute: obj[attribute] for attribute in ATTRIBUTES} for obj in objects),
            relations={
                r: tuple(frozenset(js) for js in scene["relationships"][r])
                for r in RELATIONS
                if r in scene["relationships"]
            },
            positions=positions,
            occlusion=tuple(obj["views"][view]["occlusion"] for obj in objects),
        )

    def seen_from(self, scene: dict, view: int) -> "SceneFacts":
        """These facts with the occlusion of view position ``view`` of ``scene``."""
        return dataclasses.replace(self, occlusion=tuple(obj["views"][view]["occlusion"] for obj in scene["objects"]))


def centre_view_position(scene: dict) -> int:
    """Position in scene["views"] of the rig's centre view."""
    centre = list(scene["rig"]["center"])
    for i, view in enumerate(scene["views"]):
        if [view["u"], view["v"]] == centre:
            return i
    raise ClevrRemvError(f"scene {scene.get('index')}: no view at the rig centre {centre}; regenerate the scene")


def scene_set(facts: SceneFacts) -> frozenset:
    return frozenset(range(facts.count))


def filter_attribute(facts: SceneFacts, objects: frozenset, attribute: str, value: str) -> frozenset:
    return frozenset(k for k in objects if facts.attributes[k][attribute] == value)


def unique(objects: frozenset):
    return next(iter(objects)) if len(objects) == 1 else None


def relate(facts: SceneFacts, obj: int, relation: str) -> frozenset:
    return facts.relations[relation][obj]


def same_attribute(facts: SceneFacts, obj: int, attribute: str) -> frozenset:
    value = facts.attributes[obj][attribute]
    return frozenset(k for k in range(facts.count) if k != obj and facts.attributes[k][attribute] == value)


def ordinal_ranking(facts: SceneFacts, objects: frozenset, direction: str):
    """``objects`` ordered from the ``direction`` side (first = furthest that way), or None when
    the set is too small or two consecutive objects tie within ORDINAL_EPS."""
    if len(objects) < MIN_SET_FOR_CHOICE:
        return None
    along = facts.positions[direction]
    ranking = sorted(objects, key=lambda k: -along[k])
    if any(along[a] - along[b] <= ORDINAL_EPS for a, b in zip(ranking, ranking[1:], strict=False)):
        return None
    return ranking


def filter_ordinal(facts: SceneFacts, objects: frozenset, number: int, direction: str):
    ranking = ordinal_ranking(facts, objects, direction)
    if ranking is None or not 1 <= number <= len(ranking):
        return None
    return frozenset([ranking[number - 1]])


def visibility_of(facts: SceneFacts, obj: int) -> str:
    return "partially" if facts.occlusion[obj] >= OCCLUSION_THRESHOLD else "fully"


def filter_visibility(facts: SceneFacts, objects: frozenset, visibility: str):
    if len(objects) < MIN_SET_FOR_CHOICE:
        return None
    return frozenset(k for k in objects if visibility_of(facts, k) == visibility)


def _check_side_inputs(kind: str, side_inputs: list, facts: SceneFacts) -> None:
    if kind == "relate" and side_inputs[0] not in facts.relations:
        raise ValueError(f"unknown relation {side_inputs[0]!r} (one of {', '.join(facts.relations)})")
    if kind == "filter_ordinal" and (not side_inputs[0].isdigit() or side_inputs[1] not in ORDINAL_DIRECTIONS):
        raise ValueError(f"expects [number, one of {', '.join(ORDINAL_DIRECTIONS)}], got {side_inputs}")
    if kind == "filter_visibility" and side_inputs[0] not in VISIBILITIES:
        raise ValueError(f"expects one of {', '.join(VISIBILITIES)}, got {side_inputs[0]!r}")


def apply_function(facts: SceneFacts, kind: str, args: list, side_inputs: list):
    """Run one basic function on already computed arguments."""
    if kind == "scene":
        return scene_set(facts)
    if kind.startswith("filter_") and kind[7:] in ATTRIBUTES:
        return filter_attribute(facts, args[0], kind[7:], side_inputs[0])
    if kind.startswith("same_"):
        return same_attribute(facts, args[0], kind[5:])
    if kind == "unique":
        return unique(args[0])
    if kind == "relate":
        return relate(facts, args[0], side_inputs[0])
    if kind == "filter_ordinal":
        return filter_ordinal(facts, args[0], int(side_inputs[0]), side_inputs[1])
    if kind == "filter_visibility":
        return filter_visibility(facts, args[0], side_inputs[0])
    if kind == "union":
        return args[0] | args[1]
    return args[0] & args[1]  # intersect


def execute(program: list, facts: SceneFacts) -> list:
    """Run a program (list of {type, inputs, side_inputs}); return every node's output
    (None from the first undefined node on). Raises ClevrRemvError for a malformed program."""
    outputs = []
    for position, node in enumerate(program):
        kind, inputs, side_inputs = node["type"], node["inputs"], node.get("side_inputs", [])
        try:
            if kind not in SIGNATURES:
                raise ValueError(f"unknown function {kind!r}")
            input_kinds, side_count, _ = SIGNATURES[kind]
            if len(inputs) != len(input_kinds) or any(not 0 <= i < position for i in inputs):
                raise ValueError(f"needs {plural(len(input_kinds), 'input')} from earlier nodes, got {inputs}")
            if any(SIGNATURES[program[i]["type"]][2] != want for i, want in zip(inputs, input_kinds, strict=False)):
                raise ValueError(f"needs inputs of kind {', '.join(input_kinds)}")
            if len(side_inputs) != side_count:
                raise ValueError(f"needs {plural(side_count, 'side input')}, got {side_inputs}")
            _check_side_inputs(kind, side_inputs, facts)
        except ValueError as error:
            raise ClevrRemvError(
                f"program node {position} ({kind}): {error}; regenerate the expressions with `clevr-remv refexps`"
            ) from error
        args = [outputs[i] for i in inputs]
        outputs.append(None if any(a is None for a in args) else apply_function(facts, kind, args, side_inputs))
    return outputs


def referent_of(program: list, facts: SceneFacts):
    """The 0-based object a program refers to: its last node's object, or the only member of its
    last node's set; None when undefined or not exactly one object."""
    result = execute(program, facts)[-1]
    if isinstance(result, frozenset):
        return unique(result)
    return result


def answer_set(program: list, facts: SceneFacts):
    """The objects (0-based) a program names, as a frozenset; empty when it names none (no
    target); None when undefined: an earlier node is undefined, or a singular phrase (a final
    ``unique``) fits two or more objects."""
    outputs = execute(program, facts)
    last = program[-1]
    if last["type"] == "unique":
        chosen = outputs[last["inputs"][0]]
        return chosen if chosen is not None and len(chosen) <= 1 else None
    result = outputs[-1]
    if result is None or isinstance(result, frozenset):
        return result
    return frozenset([result])
