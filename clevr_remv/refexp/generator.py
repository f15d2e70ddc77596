"""A scene's referring expressions: which objects may be referents, balanced instantiation, the document."""
import json
import random
from pathlib import Path

from clevr_remv import FORMAT_VERSION
from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import engine
from clevr_remv.refexp.instantiate import instantiate
from clevr_remv.refexp.templates import load_template_set
from clevr_remv.refexp.text import render

# Fresh wordings tried when a rendered text repeats an earlier expression's text.
TEXT_TRIES = 4
# Scene-object attribute -> its section in properties.json.
PROPERTY_KEYS = {"size": "sizes", "color": "colors", "material": "materials", "shape": "shapes"}


def refexp_settings(seed: int, per_scene: int = 8, templates_dir=None, keep_partial: bool = False,
                    min_visible_pixels: int = 1) -> dict:
    """How a dataset's expressions are made (stored in dataset.json as ``refexps``); the keys are
    the keyword arguments of ``clevr_remv.refexp.generate_refexps``."""
    return {"seed": seed, "per_scene": per_scene,
            "templates_dir": None if templates_dir is None else str(Path(templates_dir).resolve()),
            "keep_partial": keep_partial, "min_visible_pixels": min_visible_pixels}


def visible_views(scene: dict, position: int, min_visible_pixels: int) -> list:
    """The [u, v] of every view where object ``position`` (0-based) shows enough pixels."""
    entries = scene["objects"][position]["views"]
    return [[view["u"], view["v"]] for view, entry in zip(scene["views"], entries)
            if entry["pixels"] >= min_visible_pixels]


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
                    f"dataset's properties do not list; use the properties the scene was generated with")


def _least_used(options, uses: dict, rng):
    """The option used least so far; ties broken at random."""
    tie_breaks = {option: rng.random() for option in sorted(options)}
    return min(sorted(options), key=lambda option: (uses[option], tie_breaks[option]))


def _program_key(program: list) -> str:
    return json.dumps(program, sort_keys=True)


def _new_text(instance, synonyms, seen_texts, rng):
    for _ in range(TEXT_TRIES):
        text = render(rng.choice(instance.template.text), instance.template.params, instance.values, synonyms, rng)
        if text not in seen_texts:
            return text
    return None


def _balanced_expressions(template_set, facts, referents: list, per_scene: int, rng) -> list:
    """Up to ``per_scene`` (instance, text) pairs, spreading them evenly over referents and over
    families; a (referent, family) pair that yields nothing new is not tried again."""
    families = template_set.families
    family_uses = dict.fromkeys(families, 0)
    referent_uses = dict.fromkeys(referents, 0)
    open_pairs = {(k, family) for k in referents for family in families}
    seen_programs, seen_texts, chosen = set(), set(), []
    while len(chosen) < per_scene and open_pairs:
        referent = _least_used({k for k, _ in open_pairs}, referent_uses, rng)
        family = _least_used({f for k, f in open_pairs if k == referent}, family_uses, rng)
        found = None
        for template in rng.sample(families[family], len(families[family])):
            instance = instantiate(template, facts, referent, rng,
                                   reject=lambda program: _program_key(program) in seen_programs)
            text = instance and _new_text(instance, template_set.synonyms, seen_texts, rng)
            if text:
                found = (instance, text)
                break
        if found is None:
            open_pairs.discard((referent, family))
            continue
        seen_programs.add(_program_key(found[0].program))
        seen_texts.add(found[1])
        family_uses[family] += 1
        referent_uses[referent] += 1
        chosen.append(found)
    return chosen


def generate_refexps(scene: dict, *, properties: dict, seed: int, per_scene: int = 8, templates_dir=None,
                     keep_partial: bool = False, min_visible_pixels: int = 1) -> dict:
    """Return the refexps.json document of ``scene``: up to ``per_scene`` distinct expressions, each
    naming one object that is visible (>= ``min_visible_pixels`` pixels) in every view, or in some
    views with ``keep_partial``. Deterministic from (``seed``, scene index)."""
    if per_scene < 0:
        raise ClevrRemvError(f"--per-scene: {per_scene} must be >= 0")
    template_set = load_template_set(templates_dir)
    _check_attributes(scene, properties)
    facts = engine.SceneFacts.from_scene(scene)
    views = referent_views(scene, keep_partial, min_visible_pixels)
    rng = random.Random(f"clevr-remv refexps {seed} {scene['index']}")
    expressions = []
    for number, (instance, text) in enumerate(_balanced_expressions(template_set, facts, sorted(views),
                                                                    per_scene, rng)):
        expressions.append({
            "id": number,
            "text": text,
            "family": {"template": instance.template.family, "index": instance.template.index},
            "program": instance.program,
            "referent": instance.referent + 1,
            "views": views[instance.referent],
        })
    return {"format_version": FORMAT_VERSION, "scene": scene["index"], "expressions": expressions}
