"""The expression engine, instantiation and per-scene generation, on hand-built scenes with known
answers and on stand-in scenes laid out by the real layout code."""

import collections
import random

import pytest
from builders import PROPERTIES, make_scene, obj

from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.scene import add_visibility, scene_spec
from clevr_remv.generate.synthetic import rasterize_view
from clevr_remv.refexp import SceneFacts, execute, generate_refexps, load_template_set, referent_of
from clevr_remv.refexp.instantiate import instantiate
from clevr_remv.refexp.text import render
from clevr_remv.schemas import validate

RELATION_FUNCTIONS = {"relate", "same_size", "same_color", "same_material", "same_shape"}


def node(kind, inputs=(), side_inputs=()):
    return {"type": kind, "inputs": list(inputs), "side_inputs": list(side_inputs)}


def templates_of(family):
    return load_template_set().families[family]


def stand_in_scene(index, seed=0):
    """A scene laid out by the real layout and rig code, visibility measured on stand-in masks."""
    config = GenerateConfig(seed=seed, grid=3, width=64, height=48, properties=PROPERTIES)
    spec = scene_spec(config, index)
    masks = {view["name"]: rasterize_view(spec, view, PROPERTIES)[1] for view in spec["views"]}
    return add_visibility(spec, PROPERTIES, masks)


@pytest.fixture(scope="module")
def stand_in_scenes():
    return [stand_in_scene(index) for index in range(12)]


# -- engine: known answers ------------------------------------------------------------------------
def test_filters_and_unique():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0), obj("cube", "blue", 2, 0), obj("sphere", "red", -2, 0)])
    )
    program = [
        node("scene"),
        node("filter_color", [0], ["red"]),
        node("filter_shape", [1], ["cube"]),
        node("unique", [2]),
    ]
    assert referent_of(program, facts) == 0
    assert execute(program[:2], facts)[-1] == {0, 2}
    assert referent_of(program[:2] + [node("unique", [1])], facts) is None  # two red objects


def test_relate_follows_scene_relationships():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0), obj("sphere", "blue", -2, 0), obj("sphere", "green", 2, 3)])
    )
    anchor = [node("scene"), node("filter_shape", [0], ["cube"]), node("unique", [1])]
    assert execute(anchor + [node("relate", [2], ["left"])], facts)[-1] == {1}
    assert execute(anchor + [node("relate", [2], ["right"])], facts)[-1] == {2}
    assert execute(anchor + [node("relate", [2], ["behind"])], facts)[-1] == {2}
    assert execute(anchor + [node("relate", [2], ["front"])], facts)[-1] == frozenset()


def test_same_attribute_excludes_the_anchor():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0), obj("sphere", "red", 2, 0), obj("sphere", "blue", -2, 0, size="small")])
    )
    anchor = [node("scene"), node("filter_shape", [0], ["cube"]), node("unique", [1])]
    assert execute(anchor + [node("same_color", [2])], facts)[-1] == {1}
    assert execute(anchor + [node("same_size", [2])], facts)[-1] == {1}
    assert execute(anchor + [node("same_shape", [2])], facts)[-1] == frozenset()


def test_ordinals_count_along_3d_directions():
    # Three spheres at x = 1, -2, 3 (and y = 0, 2, -1) plus a cube at the far left.
    facts = SceneFacts.from_scene(
        make_scene(
            [
                obj("sphere", "red", 1, 0),
                obj("sphere", "red", -2, 2),
                obj("sphere", "red", 3, -1),
                obj("cube", "red", -3, 1),
            ]
        )
    )
    spheres = [node("scene"), node("filter_shape", [0], ["sphere"])]

    def nth(number, direction):
        ordinal = node("filter_ordinal", [1], [str(number), direction])
        return referent_of(spheres + [ordinal, node("unique", [2])], facts)

    assert [nth(n, "left") for n in (1, 2, 3)] == [1, 0, 2]
    assert [nth(n, "right") for n in (1, 2, 3)] == [2, 0, 1]
    assert [nth(n, "front") for n in (1, 2, 3)] == [2, 0, 1]
    assert nth(4, "left") is None


def test_ordinal_is_undefined_for_ties_and_single_objects():
    tied = SceneFacts.from_scene(make_scene([obj("sphere", "red", 0, 0), obj("sphere", "red", 0.1, 2)]))
    program = [node("scene"), node("filter_ordinal", [0], ["1", "left"]), node("unique", [1])]
    assert referent_of(program, tied) is None
    assert referent_of([program[0], node("filter_ordinal", [0], ["1", "front"]), program[2]], tied) == 0
    single = [node("scene"), node("filter_color", [0], ["blue"]), node("filter_ordinal", [1], ["1", "left"])]
    facts = SceneFacts.from_scene(make_scene([obj("sphere", "red", 0, 0), obj("cube", "blue", 2, 0)]))
    assert execute(single, facts)[-1] is None


def test_visibility_uses_the_centre_view_occlusion_threshold():
    facts = SceneFacts.from_scene(
        make_scene(
            [
                obj("cube", "red", 0, 0, occlusion=0.5),
                obj("cube", "red", 2, 0, occlusion=0.19),
                obj("cube", "red", -2, 0, occlusion=0.2),
            ]
        )
    )
    program = [node("scene"), node("filter_visibility", [0], ["partially"])]
    assert execute(program, facts)[-1] == {0, 2}
    assert execute([program[0], node("filter_visibility", [0], ["fully"])], facts)[-1] == {1}


def test_union_and_intersect():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0), obj("sphere", "red", 2, 0), obj("cube", "blue", -2, 0)])
    )
    program = [
        node("scene"),
        node("filter_color", [0], ["red"]),
        node("filter_shape", [0], ["cube"]),
        node("intersect", [1, 2]),
        node("union", [1, 2]),
    ]
    outputs = execute(program, facts)
    assert outputs[3] == {0} and outputs[4] == {0, 1, 2}


@pytest.mark.parametrize(
    "program, problem",
    [
        ([node("scene"), node("filter_hue", [0], ["red"])], "unknown function"),
        ([node("scene"), node("unique", [1])], "input"),
        ([node("scene"), node("relate", [0], ["left"])], "object"),
        ([node("scene"), node("unique", [0]), node("relate", [1], ["above"])], "relation"),
        ([node("scene"), node("filter_ordinal", [0], ["second", "left"])], "number"),
    ],
)
def test_malformed_programs_are_rejected(program, problem):
    facts = SceneFacts.from_scene(make_scene([obj("cube", "red", 0, 0), obj("sphere", "red", 2, 0)]))
    with pytest.raises(ClevrRemvError, match=problem):
        execute(program, facts)


# -- instantiation: each family on a scene whose answer is known ----------------------------------
def test_zero_hop_names_a_unique_object_and_fails_for_twins():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0), obj("sphere", "red", 2, 0), obj("sphere", "red", -2, 0)])
    )
    found = instantiate(templates_of("zero_hop.json")[0], facts, 0, random.Random(0))
    assert found.referent == 0 and referent_of(found.program, facts) == 0
    assert ["cube"] in [n["side_inputs"] for n in found.program]
    assert instantiate(templates_of("zero_hop.json")[0], facts, 1, random.Random(0)) is None


def test_one_hop_separates_twins_by_a_relation():
    # Twin spheres on either side of a cube: only a relation (or an ordinal) tells them apart.
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "blue", 0, 0), obj("sphere", "red", -2, 0), obj("sphere", "red", 2, 0)])
    )
    for seed in range(5):
        found = instantiate(templates_of("one_hop.json")[0], facts, 1, random.Random(seed))
        relation = next(n for n in found.program if n["type"] == "relate")["side_inputs"][0]
        assert relation == "left" and referent_of(found.program, facts) == 1


def test_same_attribute_family():
    facts = SceneFacts.from_scene(
        make_scene(
            [
                obj("cube", "red", 0, 0),
                obj("sphere", "red", 2, 0, size="small"),
                obj("sphere", "blue", -2, 0, size="small"),
            ]
        )
    )
    same_color = next(t for t in templates_of("same_relate.json") if t.nodes[2]["type"] == "same_color")
    found = instantiate(same_color, facts, 1, random.Random(0))
    assert referent_of(found.program, facts) == 1
    assert [n for n in found.program if n["type"] == "filter_color"] == []  # NULL constraints hold
    text = render(same_color.text[0], same_color.params, found.values, {}, random.Random(0))
    assert "same color as" in text


def test_ordinal_family():
    facts = SceneFacts.from_scene(
        make_scene([obj("sphere", "red", -2, 0), obj("sphere", "red", 0, 0), obj("sphere", "red", 2, 0)])
    )
    found = instantiate(templates_of("ordinal.json")[0], facts, 1, random.Random(0))
    ordinal = next(n for n in found.program if n["type"] == "filter_ordinal")["side_inputs"]
    assert ordinal in (["2", "left"], ["2", "right"]) and referent_of(found.program, facts) == 1
    text = render("The <O> <Z> <C> <M> <S> from the <D>.", found.template.params, found.values, {}, random.Random(0))
    assert text.startswith("The second ") and text.endswith(f"from the {ordinal[1]}.")


def test_visibility_family():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0, occlusion=0.4), obj("cube", "red", 2, 3), obj("sphere", "blue", -2, 0)])
    )
    template = templates_of("visibility.json")[0]
    hidden = instantiate(template, facts, 0, random.Random(0))
    shown = instantiate(template, facts, 1, random.Random(0))
    assert hidden.values["<V>"] == "partially" and referent_of(hidden.program, facts) == 0
    assert shown.values["<V>"] == "fully" and referent_of(shown.program, facts) == 1
    assert instantiate(template, facts, 2, random.Random(0)) is None  # nothing to tell apart


def _holds_in_listed_views(scene, expression) -> bool:
    positions = {(view["u"], view["v"]): i for i, view in enumerate(scene["views"])}
    return all(
        referent_of(expression["program"], SceneFacts.from_scene(scene, positions[tuple(view)]))
        == expression["referent"] - 1
        for view in expression["views"]
    )


def test_visibility_is_judged_in_each_view():
    # The red cube is partially visible (40 % covered) except in the top-left corner view (u1_v1), where
    # it is fully visible: "the partially visible cube" is false there.
    changing = [0.1] + [0.4] * 8
    scene = make_scene(
        [obj("cube", "red", 0, 0, occlusions=changing), obj("cube", "red", 2, 3), obj("sphere", "blue", -2, 0)]
    )
    program = [
        node("scene"),
        node("filter_shape", [0], ["cube"]),
        node("filter_visibility", [1], ["partially"]),
        node("unique", [2]),
    ]
    assert referent_of(program, SceneFacts.from_scene(scene)) == 0
    assert referent_of(program, SceneFacts.from_scene(scene, 0)) is None

    def partially_naming_the_cube(expressions):
        return [
            e
            for e in expressions
            if e["referent"] == 1
            and any(n["type"] == "filter_visibility" and n["side_inputs"] == ["partially"] for n in e["program"])
        ]

    # The paper's filter: an expression must hold in every view, so this one is never made.
    strict = generate_refexps(scene, properties=PROPERTIES, seed=0, per_scene=40)["expressions"]
    assert not partially_naming_the_cube(strict)
    assert all(_holds_in_listed_views(scene, e) for e in strict)
    # --keep-partial: kept, and scored only where it holds.
    loose = generate_refexps(scene, properties=PROPERTIES, seed=0, per_scene=40, keep_partial=True)["expressions"]
    kept = partially_naming_the_cube(loose)
    assert kept and all([1, 1] not in e["views"] and len(e["views"]) == 8 for e in kept)
    assert all(_holds_in_listed_views(scene, e) for e in loose)


def test_every_expression_holds_in_every_view_it_lists(stand_in_scenes):
    for scene in stand_in_scenes:
        for keep_partial in (False, True):
            expressions = generate_refexps(
                scene, properties=PROPERTIES, seed=0, per_scene=12, keep_partial=keep_partial
            )["expressions"]
            assert all(_holds_in_listed_views(scene, e) for e in expressions)


def test_reject_makes_the_search_find_another_program():
    facts = SceneFacts.from_scene(make_scene([obj("cube", "red", 0, 0), obj("sphere", "blue", 2, 0, size="small")]))
    template = templates_of("zero_hop.json")[0]
    seen = []
    while (found := instantiate(template, facts, 0, random.Random(0), reject=lambda p: p in seen)) is not None:
        seen.append(found.program)
    # Every attribute subset with the size, colour or shape of the large red rubber cube: 2**4 - 2.
    assert len(seen) == 14
    assert all(referent_of(program, facts) == 0 for program in seen)


def test_synonyms_and_optional_words_vary_text_not_program():
    template = templates_of("one_hop.json")[0]
    facts = SceneFacts.from_scene(
        make_scene(
            [obj("cube", "blue", 0, 0), obj("sphere", "red", -2, 0, material="metal"), obj("sphere", "red", 2, 0)]
        )
    )
    found = instantiate(template, facts, 1, random.Random(0))
    synonyms = load_template_set().synonyms
    texts = {
        render(template.text[0], template.params, found.values, synonyms, random.Random(seed)) for seed in range(40)
    }
    assert len(texts) >= 4
    assert any("that is" in t for t in texts) and any("that is" not in t for t in texts)
    assert all(t[0].isupper() and t.endswith(".") and "(s)" not in t and "  " not in t for t in texts)
    assert referent_of(found.program, facts) == 1  # one program for every wording


# -- generation: whole scenes ---------------------------------------------------------------------
def test_every_expression_reexecutes_to_its_referent(stand_in_scenes):
    for scene in stand_in_scenes:
        document = generate_refexps(scene, properties=PROPERTIES, seed=3)
        validate(document, "refexps", "generated")
        facts = SceneFacts.from_scene(scene)
        for expression in document["expressions"]:
            assert referent_of(expression["program"], facts) == expression["referent"] - 1
            assert sum(n["type"] in RELATION_FUNCTIONS for n in expression["program"]) <= 1
        texts = [e["text"] for e in document["expressions"]]
        assert len(set(texts)) == len(texts)
        assert [e["id"] for e in document["expressions"]] == list(range(len(texts)))


def test_generation_is_deterministic_and_seeded(stand_in_scenes):
    scene = stand_in_scenes[0]
    first = generate_refexps(scene, properties=PROPERTIES, seed=0)
    assert generate_refexps(scene, properties=PROPERTIES, seed=0) == first
    assert generate_refexps(scene, properties=PROPERTIES, seed=1) != first
    assert first["scene"] == scene["index"]


def test_families_and_referents_are_balanced(stand_in_scenes):
    families = collections.Counter()
    for scene in stand_in_scenes:
        expressions = generate_refexps(scene, properties=PROPERTIES, seed=0)["expressions"]
        assert len(expressions) == 8
        families.update(e["family"]["template"] for e in expressions)
    total = sum(families.values())
    for family in ("zero_hop.json", "one_hop.json", "same_relate.json", "ordinal.json"):
        assert families[family] / total >= 0.15
    distinct = make_scene(
        [
            obj("cube", "red", 0, 0),
            obj("sphere", "blue", 2, 1),
            obj("cylinder", "green", -2, 2),
            obj("cube", "yellow", 1, -2, size="small"),
        ]
    )
    referents = collections.Counter(
        e["referent"] for e in generate_refexps(distinct, properties=PROPERTIES, seed=0, per_scene=10)["expressions"]
    )
    assert sorted(referents.values()) == [2, 2, 3, 3]


def test_per_view_filter_drops_a_referent_hidden_in_one_view():
    hidden_in_corner = [0] + [100] * 8
    scene = make_scene(
        [
            obj("cube", "red", 0, 0, pixels=hidden_in_corner),
            obj("sphere", "blue", 2, 1),
            obj("cylinder", "green", -2, 2, pixels=[5] + [100] * 8),
        ]
    )
    kept = generate_refexps(scene, properties=PROPERTIES, seed=0)["expressions"]
    assert {e["referent"] for e in kept} == {2, 3}
    assert all(len(e["views"]) == 9 for e in kept)
    strict = generate_refexps(scene, properties=PROPERTIES, seed=0, min_visible_pixels=10)["expressions"]
    assert {e["referent"] for e in strict} == {2}
    partial = generate_refexps(scene, properties=PROPERTIES, seed=0, keep_partial=True)["expressions"]
    cube_views = {tuple(view) for e in partial if e["referent"] == 1 for view in e["views"]}
    assert cube_views and (1, 1) not in cube_views and len(cube_views) == 8


def test_per_scene_caps_the_count_and_small_scenes_give_fewer():
    scene = make_scene([obj("cube", "red", 0, 0), obj("sphere", "blue", 2, 1)])
    assert len(generate_refexps(scene, properties=PROPERTIES, seed=0, per_scene=3)["expressions"]) == 3
    twins = make_scene([obj("cube", "red", 0, 0), obj("cube", "red", 0.05, 0.05)])  # tied everywhere
    assert generate_refexps(twins, properties=PROPERTIES, seed=0)["expressions"] == []


def test_unknown_attribute_value_is_reported():
    scene = make_scene([obj("cone", "red", 0, 0), obj("sphere", "blue", 2, 1)])
    with pytest.raises(ClevrRemvError, match="object 1 has shape 'cone'"):
        generate_refexps(scene, properties=PROPERTIES, seed=0)
