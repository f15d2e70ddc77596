"""Generalized expressions (``--expressions generalized``, GRES-style): besides single-referent
ones, multi-target expressions (a plural template whose program names two or more objects) and
no-target expressions (a program that names no object), shared per scene by a target mix.

No-target expressions are made deceptive, never absurd: a template is first filled in for a real
object (or group), then one of its words is changed - an attribute value to another value that
an object of the scene has, a relation to another relation, a visibility to the other - until
the program names nothing (gRefCOCO's "the kid in blue" when no kid wears blue). So every word
of a no-target expression names something the scene has, only not together.

Both kinds keep the per-view truth of single-referent expressions (``ViewTruth.set_views``):
a multi-target expression lists the views where every referent is visible and the program names
exactly that set; a no-target one the views where it names nothing.
"""

import math

from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import engine
from clevr_remv.refexp.balance import least_used, program_key
from clevr_remv.refexp.instantiate import Instance, expand, instantiate, instantiate_group
from clevr_remv.refexp.templates import ATTRIBUTE_TYPES, TemplateSet, default_templates_dir, load_template_set
from clevr_remv.refexp.text import new_text

SINGLE, GENERALIZED = "single", "generalized"
# Shares of expressions naming 0 / 1 / 2+ objects: gRefCOCO's (Liu, Ding & Jiang, GRES, CVPR 2023:
# 32,202 no-target and 80,022 multi-target among 278,232 expressions), rounded to two places.
DEFAULT_TARGET_MIX = (0.12, 0.59, 0.29)
# The shipped plural (multi-target) templates and the synonyms of their plural nouns.
PLURAL_TEMPLATES = "generalized"
# Template parameter types whose value a no-target expression may change.
CHANGEABLE = (*ATTRIBUTE_TYPES, "Relation", "Visibility")


def check_target_mix(mix) -> tuple:
    """``mix`` (shares of 0, 1 and 2+ targets) as a tuple of three floats; the default when None."""
    if mix is None:
        return DEFAULT_TARGET_MIX
    try:
        shares = tuple(float(share) for share in mix)
    except (TypeError, ValueError):
        shares = ()
    if len(shares) != 3 or not all(math.isfinite(s) and s >= 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
        raise ClevrRemvError(
            f"--target-mix: {mix!r} is not three shares (of no-target, single- and multi-target "
            "expressions) that are >= 0 and add up to 1; write e.g. 0.12,0.59,0.29"
        )
    return shares


def target_counts(per_scene: int, mix, rng) -> tuple:
    """(no-target, single, multi-target) expressions wanted of a scene's ``per_scene``: each share's
    whole part, the remainder by systematic sampling of the fractional parts, so that each count's
    mean over scenes is ``per_scene`` x its share."""
    wanted = [per_scene * share for share in mix]
    counts = [math.floor(value) for value in wanted]
    fractions = [value - count for value, count in zip(wanted, counts, strict=True)]
    extra = per_scene - sum(counts)
    points = [rng.random() + i for i in range(extra)]
    start = 0.0
    for k, fraction in enumerate(fractions):
        counts[k] += sum(1 for point in points if start <= point < start + fraction)
        start += fraction
    counts[fractions.index(max(fractions))] += per_scene - sum(counts)  # rounding error of the fractions
    return tuple(counts)


def plural_template_set(template_set: TemplateSet) -> TemplateSet:
    """The plural templates for multi-target expressions: those of ``template_set`` (a --templates
    folder may hold its own), else the shipped ones (templates/generalized/), whose synonyms.json
    adds the plural nouns to ``template_set``'s synonyms."""
    own = template_set.plural()
    if own.families:
        return own
    shipped = load_template_set(default_templates_dir() / PLURAL_TEMPLATES)
    return TemplateSet(shipped.directory, shipped.plural().families, {**template_set.synonyms, **shipped.synonyms})


def multi_target_expressions(
    template_set: TemplateSet, facts, truth, count: int, rng, seen_programs: set, seen_texts: set
) -> list:
    """Up to ``count`` (instance, text, views) of the plural templates of ``template_set``, each
    naming another group of two or more permitted referents (``truth.referent_views``), spread
    evenly over the families; ``seen_programs`` / ``seen_texts`` are avoided and grow."""
    allowed = frozenset(truth.referent_views)
    families = template_set.families
    uses = dict.fromkeys(families, 0)
    open_families, used_groups, chosen = set(families), set(), []

    def reject(program):
        if program_key(program) in seen_programs:
            return True
        answer = engine.answer_set(program, facts)
        return answer is None or answer in used_groups or truth.set_views(program, answer) is None

    while len(chosen) < count and open_families:
        family = least_used(open_families, uses, rng)
        found = None
        for template in rng.sample(families[family], len(families[family])):
            instance = instantiate_group(template, facts, allowed, rng, reject=reject)
            text = instance and new_text(instance, template_set.synonyms, seen_texts, rng)
            if text:
                found = (instance, text, truth.set_views(instance.program, instance.targets))
                break
        if found is None:
            open_families.discard(family)
            continue
        used_groups.add(found[0].targets)
        _record(found, chosen, seen_programs, seen_texts)
        uses[family] += 1
    return chosen


def no_target_expressions(
    template_set: TemplateSet, facts, truth, count: int, rng, seen_programs: set, seen_texts: set
) -> list:
    """Up to ``count`` (instance, text, views) naming no object, each a template of ``template_set``
    filled in for a real object or group with one word changed (see the module docstring), spread
    evenly over the families; ``seen_programs`` / ``seen_texts`` are avoided and grow."""
    families = template_set.families
    uses = dict.fromkeys(families, 0)
    open_families, chosen = set(families), []
    while len(chosen) < count and open_families:
        family = least_used(open_families, uses, rng)
        found = None
        for template in rng.sample(families[family], len(families[family])):
            base = None if template.out_neq else _base_instance(template, facts, rng)
            found = base and _changed_to_nothing(
                base, template_set.synonyms, facts, truth, rng, seen_programs, seen_texts
            )
            if found:
                break
        if not found:
            open_families.discard(family)
            continue
        _record(found, chosen, seen_programs, seen_texts)
        uses[family] += 1
    return chosen


def _record(found, chosen: list, seen_programs: set, seen_texts: set) -> None:
    chosen.append(found)
    seen_programs.add(program_key(found[0].program))
    seen_texts.add(found[1])


def _base_instance(template, facts, rng):
    """``template`` filled in for some object (or, plural, some group) of the scene, or None."""
    if template.plural:
        return instantiate_group(template, facts, range(facts.count), rng)
    for target in rng.sample(range(facts.count), facts.count):
        instance = instantiate(template, facts, target, rng)
        if instance is not None:
            return instance
    return None


def _changes(instance, facts) -> list:
    """(parameter, new value) pairs: another attribute value that an object of the scene has,
    another relation, the other visibility."""
    present = {attribute: {obj[attribute] for obj in facts.attributes} for attribute in engine.ATTRIBUTES}
    changes = []
    for name, kind in instance.template.params.items():
        value = instance.values[name]
        if not value or kind not in CHANGEABLE:
            continue
        if kind in ATTRIBUTE_TYPES:
            others = present[ATTRIBUTE_TYPES[kind]]
        else:
            others = facts.relations if kind == "Relation" else engine.VISIBILITIES
        changes += [(name, other) for other in sorted(others) if other != value]
    return changes


def _changed_to_nothing(base, synonyms, facts, truth, rng, seen_programs, seen_texts):
    """(instance, text, views) of ``base`` with one parameter changed so that it names no object
    in every view it lists, or None."""
    changes = _changes(base, facts)
    for name, value in rng.sample(changes, len(changes)):
        values = {**base.values, name: value}
        program = expand(base.template, values)
        if program_key(program) in seen_programs or engine.answer_set(program, facts) != frozenset():
            continue
        views = truth.set_views(program, frozenset())
        if views is None:
            continue
        instance = Instance(base.template, values, program, frozenset())
        text = new_text(instance, synonyms, seen_texts, rng)
        if text:
            return instance, text, views
    return None
