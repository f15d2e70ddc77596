"""A scene's referring expressions: which objects may be referents, balanced instantiation, the document."""

import dataclasses
import random
from pathlib import Path

from clevr_remv import FORMAT_VERSION
from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import engine
from clevr_remv.refexp.balance import least_used, program_key
from clevr_remv.refexp.generalized import (
    DEFAULT_TARGET_MIX,
    GENERALIZED,
    SINGLE,
    check_target_mix,
    multi_target_expressions,
    no_target_expressions,
    plural_template_set,
    target_counts,
)
from clevr_remv.refexp.instantiate import instantiate
from clevr_remv.refexp.templates import load_template_set
from clevr_remv.refexp.text import new_text

EXPRESSION_KINDS = (SINGLE, GENERALIZED)
__all__ = ["DEFAULT_TARGET_MIX", "EXPRESSION_KINDS", "generate_refexps", "refexp_settings", "ViewTruth"]
# Scene-object attribute -> its section in properties.json.
PROPERTY_KEYS = {"size": "sizes", "color": "colors", "material": "materials", "shape": "shapes"}


def refexp_settings(
    seed: int,
    per_scene: int = 8,
    templates_dir=None,
    keep_partial: bool = False,
    min_visible_pixels: int = 1,
    expressions: str = SINGLE,
    target_mix=None,
) -> dict:
    """How a dataset's expressions are made (stored in dataset.json as ``refexps``); the keys are
    the keyword arguments of ``clevr_remv.refexp.generate_refexps``. ``expressions`` and
    ``target_mix`` (shares of 0 / 1 / 2+ targets; default `DEFAULT_TARGET_MIX`) are recorded
    only for generalized expressions, so single-referent settings stay as they always were."""
    settings = {
        "seed": seed,
        "per_scene": per_scene,
        "templates_dir": None if templates_dir is None else str(Path(templates_dir).resolve()),
        "keep_partial": keep_partial,
        "min_visible_pixels": min_visible_pixels,
    }
    if expressions not in EXPRESSION_KINDS:
        raise ClevrRemvError(f"--expressions: {expressions!r} is not one of {', '.join(EXPRESSION_KINDS)}")
    if expressions == GENERALIZED:
        settings.update(expressions=GENERALIZED, target_mix=list(check_target_mix(target_mix)))
    elif target_mix is not None:
        raise ClevrRemvError(
            "--target-mix: only applies to --expressions generalized; add that option or drop --target-mix"
        )
    return settings


def visible_views(scene: dict, position: int, min_visible_pixels: int) -> list:
    """The [u, v] of every view where object ``position`` (0-based) shows enough pixels."""
    entries = scene["objects"][position]["views"]
    return [
        [view["u"], view["v"]]
        for view, entry in zip(scene["views"], entries, strict=False)
        if entry["pixels"] >= min_visible_pixels
    ]


def referent_views(scene: dict, keep_partial: bool, min_visible_pixels: int) -> dict:
    """0-based object -> its valid views, for the objects allowed as referents: those visible in
    every view (the paper's filter) or, with ``keep_partial``, in at least one."""
    result = {}
    for position in range(len(scene["objects"])):
        views = visible_views(scene, position, min_visible_pixels)
        if len(views) == len(scene["views"]) or (keep_partial and views):
            result[position] = views
    return result


def _check_attributes(scene: dict, properties: dict) -> None:
    for k, obj in enumerate(scene["objects"], start=1):
        for attribute, key in PROPERTY_KEYS.items():
            if obj[attribute] not in properties[key]:
                raise ClevrRemvError(
                    f"scene {scene['index']}: object {k} has {attribute} {obj[attribute]!r}, which the "
                    f"dataset's properties do not list; use the properties the scene was generated with"
                )


class ViewTruth:
    """Where a program is true: the views in which it returns its referent alone (or, for a
    generalized expression, exactly its set of referents: none for a no-target expression).

    Only the visibility filter depends on the view (occlusion is measured per view; relations and
    ordinals use the rig's shared ground directions), so other programs hold wherever their
    referents are visible (a no-target program: in every view). With the paper's filter
    (``keep_partial`` off) an expression must hold in every view of the grid; otherwise in the
    views it lists.
    """

    def __init__(self, scene: dict, facts, referent_views: dict, keep_partial: bool):
        self.scene, self.referent_views, self.keep_partial = scene, referent_views, keep_partial
        self.positions = {(view["u"], view["v"]): i for i, view in enumerate(scene["views"])}
        self.facts = facts
        self._per_view = {}

    def _facts(self, position: int):
        if position not in self._per_view:
            self._per_view[position] = self.facts.seen_from(self.scene, position)
        return self._per_view[position]

    def views(self, program: list, referent: int):
        """The [u, v] where ``program`` names ``referent`` alone, or None when it must be rejected."""
        return self.set_views(program, frozenset([referent]))

    def set_views(self, program: list, answer: frozenset):
        """The [u, v] where ``program`` names exactly the objects ``answer`` (0-based; empty: no
        target), each of them a permitted referent visible there; None when it must be rejected."""
        if any(k not in self.referent_views for k in answer):
            return None
        shared = [set(map(tuple, self.referent_views[k])) for k in answer]
        candidates = [
            [view["u"], view["v"]]
            for view in self.scene["views"]
            if all((view["u"], view["v"]) in views for views in shared)
        ]
        if not candidates:
            return None
        if not any(node["type"] == "filter_visibility" for node in program):
            return candidates
        holding = [
            view
            for view in candidates
            if engine.answer_set(program, self._facts(self.positions[tuple(view)])) == answer
        ]
        if not holding or (not self.keep_partial and len(holding) < len(candidates)):
            return None
        return holding


def _balanced_expressions(
    template_set, facts, referents: list, per_scene: int, rng, truth: ViewTruth, seen_programs=None, seen_texts=None
) -> list:
    """Up to ``per_scene`` (instance, text, views) triples, spreading them evenly over referents and
    over families; a (referent, family) pair that yields nothing new is not tried again. A program
    that does not hold in its referent's views (``truth``) is never chosen, nor one (or a text) in
    ``seen_programs`` (``seen_texts``), which grow with the chosen ones."""
    families = template_set.families
    family_uses = dict.fromkeys(families, 0)
    referent_uses = dict.fromkeys(referents, 0)
    open_pairs = {(k, family) for k in referents for family in families}
    seen_programs = set() if seen_programs is None else seen_programs
    seen_texts = set() if seen_texts is None else seen_texts
    chosen = []
    while len(chosen) < per_scene and open_pairs:
        referent = least_used({k for k, _ in open_pairs}, referent_uses, rng)
        family = least_used({f for k, f in open_pairs if k == referent}, family_uses, rng)
        found = None

        def reject(program, referent=referent):
            return program_key(program) in seen_programs or truth.views(program, referent) is None

        for template in rng.sample(families[family], len(families[family])):
            instance = instantiate(template, facts, referent, rng, reject=reject)
            text = instance and new_text(instance, template_set.synonyms, seen_texts, rng)
            if text:
                found = (instance, text, truth.views(instance.program, referent))
                break
        if found is None:
            open_pairs.discard((referent, family))
            continue
        seen_programs.add(program_key(found[0].program))
        seen_texts.add(found[1])
        family_uses[family] += 1
        referent_uses[referent] += 1
        chosen.append(found)
    return chosen


def generate_refexps(
    scene: dict,
    *,
    properties: dict,
    seed: int,
    per_scene: int = 8,
    templates_dir=None,
    keep_partial: bool = False,
    min_visible_pixels: int = 1,
    expressions: str = SINGLE,
    target_mix=None,
) -> dict:
    """Return the refexps.json document of ``scene``: up to ``per_scene`` distinct expressions, each
    naming one object that is visible (>= ``min_visible_pixels`` pixels) in every view, or in some
    views with ``keep_partial``, and true in each view it lists (see `ViewTruth`).
    Deterministic from (``seed``, scene index).

    ``expressions="generalized"``: the scene's expressions are shared among no-target, single- and
    multi-target ones by ``target_mix`` (see `clevr_remv.refexp.generalized`); each carries
    ``referents``, the 1-based objects it names (empty: no target), and ``referent`` when it names one.
    """
    if per_scene < 0:
        raise ClevrRemvError(f"--per-scene: {per_scene} must be >= 0")
    if expressions not in EXPRESSION_KINDS:
        raise ClevrRemvError(f"--expressions: {expressions!r} is not one of {', '.join(EXPRESSION_KINDS)}")
    template_set = load_template_set(templates_dir)
    singular = template_set.singular()
    _check_attributes(scene, properties)
    facts = engine.SceneFacts.from_scene(scene)
    views = referent_views(scene, keep_partial, min_visible_pixels)
    rng = random.Random(f"clevr-remv refexps {seed} {scene['index']}")
    truth = ViewTruth(scene, facts, views, keep_partial)
    if expressions == GENERALIZED:
        no_target, single, multi = target_counts(per_scene, check_target_mix(target_mix), rng)
        seen_programs, seen_texts = set(), set()
        chosen = _balanced_expressions(singular, facts, sorted(views), single, rng, truth, seen_programs, seen_texts)
        plural = plural_template_set(template_set)
        chosen += multi_target_expressions(plural, facts, truth, multi, rng, seen_programs, seen_texts)
        chosen += no_target_expressions(
            dataclasses.replace(plural, families={**singular.families, **plural.families}),
            facts,
            truth,
            no_target,
            rng,
            seen_programs,
            seen_texts,
        )
        rng.shuffle(chosen)
    else:
        chosen = _balanced_expressions(singular, facts, sorted(views), per_scene, rng, truth)
    documents = [
        _document(number, instance, text, expression_views, generalized=expressions == GENERALIZED)
        for number, (instance, text, expression_views) in enumerate(chosen)
    ]
    return {"format_version": FORMAT_VERSION, "scene": scene["index"], "expressions": documents}


def _document(number: int, instance, text: str, views: list, generalized: bool = False) -> dict:
    """One expression of refexps.json (``referents`` only in generalized datasets)."""
    document = {
        "id": number,
        "text": text,
        "family": {"template": instance.template.family, "index": instance.template.index},
        "program": instance.program,
    }
    if instance.referent is not None:
        document["referent"] = instance.referent + 1
    if generalized:
        document["referents"] = sorted(k + 1 for k in instance.targets)
    document["views"] = views
    return document
