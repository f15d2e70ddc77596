"""Instantiate a template for a goal: depth-first search over parameter values.

Nodes are visited in order; each node's candidate values are tried in a random (weighted) order
and a branch is dropped as soon as a node's output is empty, undefined, breaks a constraint or
can no longer lead to the goal (early rejection). The result is the first assignment whose
program names exactly the goal: one target object (`instantiate`), a given set of objects,
or any group of two or more allowed objects (`instantiate_group`, for plural templates).
"""

import dataclasses
import itertools

from clevr_remv.refexp import engine
from clevr_remv.refexp.templates import ATTRIBUTE_TYPES, Template

# Search steps (candidate outputs computed) allowed per template and target.
MAX_STEPS = 2000
# Relative preference for describing an object with 0..4 attributes (shorter is likelier).
ATTRIBUTE_COUNT_WEIGHTS = (1.0, 8.0, 1.5, 0.4, 0.1)
# Nodes whose output contains the referent whenever their consumer's output does.
_SHRINKING = {
    "filter",
    "filter_unique",
    "unique",
    "filter_ordinal",
    "filter_visibility",
    "intersect",
    *(f"filter_{attribute}" for attribute in engine.ATTRIBUTES),
}


@dataclasses.dataclass(frozen=True)
class Instance:
    """A template filled in for a scene: parameter values, basic program, and the 0-based objects
    it names (``targets``; empty for a no-target expression)."""

    template: Template
    values: dict
    program: list
    targets: frozenset

    @property
    def referent(self):
        """The one object named, or None when the instance names none or several."""
        return next(iter(self.targets)) if len(self.targets) == 1 else None


def _as_set(output) -> frozenset:
    return output if isinstance(output, frozenset) else frozenset([output])


@dataclasses.dataclass(frozen=True)
class Targets:
    """Goal: exactly these objects (one for a single-referent template)."""

    objects: frozenset

    def keeps(self, output) -> bool:
        """Whether a node on the referent chain can still lead to the goal."""
        return self.objects <= _as_set(output)

    def reached(self, output) -> bool:
        return _as_set(output) == self.objects

    def sources(self, candidates) -> list:
        """Objects whose attributes a referent-chain filter may name (pruning keeps shared ones)."""
        return [min(self.objects)]

    def single(self):
        return next(iter(self.objects)) if len(self.objects) == 1 else None


@dataclasses.dataclass(frozen=True)
class AnyGroup:
    """Goal: any set of two or more objects, all of them in ``allowed``."""

    allowed: frozenset

    def keeps(self, output) -> bool:
        return len(_as_set(output) & self.allowed) >= 2

    def reached(self, output) -> bool:
        found = _as_set(output)
        return len(found) >= 2 and found <= self.allowed

    def sources(self, candidates) -> list:
        return sorted(candidates & self.allowed)

    def single(self):
        return None


class _OutOfSteps(Exception):
    pass


def _weighted_order(items: list, weights: list, rng) -> list:
    """``items`` in a random order where heavier items tend to come first (weighted sampling
    without replacement by exponentiated keys)."""
    keys = [rng.random() ** (1.0 / weight) for weight in weights]
    return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__, reverse=True)]


def _is_attribute_filter(kind: str) -> bool:
    return kind in ("filter", "filter_unique") or kind.startswith("filter_") and kind[7:] in engine.ATTRIBUTES


def _referent_chain(nodes) -> set:
    """Nodes whose output must contain the referent (the last node and what it only narrows)."""
    chain, stack = set(), [len(nodes) - 1]
    while stack:
        position = stack.pop()
        chain.add(position)
        if nodes[position]["type"] in _SHRINKING:
            stack.extend(nodes[position]["inputs"])
    return chain


def _attribute_filter(facts, objects, names, params, values) -> frozenset:
    for name in names:
        if values[name]:
            objects = engine.filter_attribute(facts, objects, ATTRIBUTE_TYPES[params[name]], values[name])
    return objects


class _Search:
    def __init__(self, template: Template, facts, goal, rng, reject):
        self.template, self.facts, self.goal, self.rng, self.reject = template, facts, goal, rng, reject
        self.chain = _referent_chain(template.nodes)
        self.steps = 0

    # -- candidates: (values of the node's parameters, output) for one node ---------------------
    def _attribute_candidates(self, position, node, args):
        names = node["side_inputs"]
        params = self.template.params
        free = [n for n in names if n not in self.template.null_params]
        required = 1 if node["type"] not in ("filter", "filter_unique") and free else 0
        sources = self.goal.sources(args[0]) if position in self.chain else sorted(args[0])
        seen, choices, weights = set(), [], []
        for source in sources:
            for count in range(required, len(free) + 1):
                for subset in itertools.combinations(free, count):
                    chosen = {
                        n: (self.facts.attributes[source][ATTRIBUTE_TYPES[params[n]]] if n in subset else "")
                        for n in names
                    }
                    key = tuple(chosen.values())
                    if key not in seen:
                        seen.add(key)
                        choices.append(chosen)
                        weights.append(ATTRIBUTE_COUNT_WEIGHTS[min(count, len(ATTRIBUTE_COUNT_WEIGHTS) - 1)])
        for chosen in _weighted_order(choices, weights, self.rng):
            output = _attribute_filter(self.facts, args[0], names, params, chosen)
            if node["type"] == "filter_unique":
                output = engine.unique(output)
            yield chosen, output

    def _ordinal_candidates(self, position, node, args):
        by_type = {self.template.params[n]: n for n in node["side_inputs"]}
        directions = list(engine.ORDINAL_DIRECTIONS)
        self.rng.shuffle(directions)
        for direction in directions:
            ranking = engine.ordinal_ranking(self.facts, args[0], direction)
            if ranking is None:
                continue
            if position in self.chain:
                target = self.goal.single()
                numbers = [ranking.index(target) + 1] if target in ranking else []
            else:
                numbers = self.rng.sample(range(1, len(ranking) + 1), len(ranking))
            for number in numbers:
                yield (
                    {by_type["Ordinal"]: str(number), by_type["Direction"]: direction},
                    frozenset([ranking[number - 1]]),
                )

    def _candidates(self, position, node, args):
        kind = node["type"]
        if _is_attribute_filter(kind):
            yield from self._attribute_candidates(position, node, args)
        elif kind == "filter_ordinal":
            yield from self._ordinal_candidates(position, node, args)
        elif kind == "relate":
            relations = sorted(self.facts.relations)
            self.rng.shuffle(relations)
            for relation in relations:
                yield {node["side_inputs"][0]: relation}, engine.relate(self.facts, args[0], relation)
        elif kind == "filter_visibility":
            if position in self.chain and self.goal.single() is not None:
                options = [engine.visibility_of(self.facts, self.goal.single())]
            else:
                options = self.rng.sample(engine.VISIBILITIES, len(engine.VISIBILITIES))
            for visibility in options:
                yield ({node["side_inputs"][0]: visibility}, engine.filter_visibility(self.facts, args[0], visibility))
        else:
            yield {}, engine.apply_function(self.facts, kind, args, [])

    # -- depth-first search ---------------------------------------------------------------------
    def _acceptable(self, position, output, outputs) -> bool:
        if output is None or output == frozenset():
            return False
        if position in self.chain and not self.goal.keeps(output):
            return False
        for first, second in self.template.out_neq:
            if position in (first, second):
                other = second if position == first else first
                if other < position and outputs[other] == output:
                    return False
        return True

    def run(self, position=0, outputs=(), values=None):
        values = {} if values is None else values
        nodes = self.template.nodes
        if position == len(nodes):
            program = expand(self.template, values)
            if self.reject(program):
                return None
            return Instance(self.template, dict(values), program, _as_set(outputs[-1]))
        node = nodes[position]
        args = [outputs[i] for i in node["inputs"]]
        for chosen, output in self._candidates(position, node, args):
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise _OutOfSteps
            if position == len(nodes) - 1 and not self.goal.reached(output):
                continue
            if not self._acceptable(position, output, outputs):
                continue
            found = self.run(position + 1, outputs + (output,), {**values, **chosen})
            if found is not None:
                return found
        return None


def instantiate(template: Template, facts, target: int, rng, reject=lambda program: False):
    """Fill ``template`` so that its program refers to object ``target`` (0-based) alone, or
    return None. ``reject(program)`` can refuse programs already used."""
    return _run(template, facts, Targets(frozenset([target])), rng, reject)


def instantiate_group(template: Template, facts, allowed, rng, reject=lambda program: False):
    """Fill the plural ``template`` so that its program names two or more objects, all of
    ``allowed`` (0-based), or return None; ``reject(program)`` as for `instantiate`."""
    return _run(template, facts, AnyGroup(frozenset(allowed)), rng, reject)


def _run(template, facts, goal, rng, reject):
    try:
        return _Search(template, facts, goal, rng, reject).run()
    except _OutOfSteps:
        return None


def expand(template: Template, values: dict) -> list:
    """The template's program in basic functions: filter macros become one filter per given
    attribute (+ unique), side inputs become values, and a set-valued end gets a final unique
    (unless the template is plural)."""
    program, where = [], {}
    for position, node in enumerate(template.nodes):
        inputs = [where[i] for i in node["inputs"]]
        kind, names = node["type"], node["side_inputs"]
        if _is_attribute_filter(kind):
            current = inputs[0]
            for name in names:
                if values[name]:
                    attribute = ATTRIBUTE_TYPES[template.params[name]]
                    program.append({"type": f"filter_{attribute}", "inputs": [current], "side_inputs": [values[name]]})
                    current = len(program) - 1
            if kind == "filter_unique":
                program.append({"type": "unique", "inputs": [current], "side_inputs": []})
                current = len(program) - 1
            where[position] = current
            continue
        if kind == "filter_ordinal":
            by_type = {template.params[n]: values[n] for n in names}
            side_inputs = [by_type["Ordinal"], by_type["Direction"]]
        else:
            side_inputs = [values[n] for n in names]
        program.append({"type": kind, "inputs": inputs, "side_inputs": side_inputs})
        where[position] = len(program) - 1
    last = where[len(template.nodes) - 1]
    if engine.SIGNATURES[program[last]["type"]][2] == engine.SET and not template.plural:
        program.append({"type": "unique", "inputs": [last], "side_inputs": []})
    return program
