"""Generalized expressions (no-target, single- and multi-target): the engine's answer sets, plural
templates, per-view truth, the target mix, the settings and the `refexps` command; and the proof
that the paper's single-referent generation did not change."""

import collections
import hashlib
import json
import random
import shutil

import pytest
from builders import PROPERTIES, make_scene, obj
from click.testing import CliRunner
from test_refexp import node, stand_in_scene

from clevr_remv.cli import main
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import SceneFacts, answer_set, generate_refexps, load_template_set, refexp_settings
from clevr_remv.refexp.generalized import DEFAULT_TARGET_MIX, check_target_mix, target_counts
from clevr_remv.refexp.templates import default_templates_dir
from clevr_remv.schemas import validate

PLURAL_NOUNS = ("things", "objects", "spheres", "balls", "cubes", "blocks", "cylinders")


@pytest.fixture(scope="module")
def scenes():
    return [stand_in_scene(index, seed=2) for index in range(10)]


def generalized(scene, **options):
    return generate_refexps(scene, properties=PROPERTIES, seed=4, per_scene=10, expressions="generalized", **options)


# -- engine: the set a program names ----------------------------------------------------------------
def test_answer_set_of_singular_plural_and_undefined_programs():
    facts = SceneFacts.from_scene(
        make_scene([obj("cube", "red", 0, 0), obj("cube", "red", 2, 0), obj("sphere", "blue", -2, 0)])
    )
    red = [node("scene"), node("filter_color", [0], ["red"])]
    assert answer_set(red, facts) == {0, 1}  # plural: the whole set
    assert answer_set(red + [node("unique", [1])], facts) is None  # "the red thing": ambiguous
    blue_cube = [node("scene"), node("filter_color", [0], ["blue"]), node("filter_shape", [1], ["cube"])]
    assert answer_set(blue_cube + [node("unique", [2])], facts) == frozenset()  # no target
    assert answer_set(blue_cube, facts) == frozenset()
    sphere = [node("scene"), node("filter_shape", [0], ["sphere"]), node("unique", [1])]
    assert answer_set(sphere, facts) == {2}
    # A relation from an anchor that does not exist is undefined, not "no target".
    green = [node("scene"), node("filter_color", [0], ["green"]), node("unique", [1]), node("relate", [2], ["left"])]
    assert answer_set(green, facts) is None
    left_of_sphere = sphere + [node("relate", [2], ["left"]), node("filter_shape", [3], ["cube"])]
    assert answer_set(left_of_sphere, facts) == frozenset()  # nothing is left of the sphere


def test_a_plural_template_must_end_in_a_set(tmp_path):
    template = {
        "plural": True,
        "text": ["The <Z> <C> <M> <S>s."],
        "nodes": [
            {"type": "scene", "inputs": []},
            {"type": "filter_unique", "inputs": [0], "side_inputs": ["<Z>", "<C>", "<M>", "<S>"]},
        ],
        "params": [
            {"type": "Size", "name": "<Z>"},
            {"type": "Color", "name": "<C>"},
            {"type": "Material", "name": "<M>"},
            {"type": "Shape", "name": "<S>"},
        ],
    }
    (tmp_path / "bad.json").write_text(json.dumps([template]))
    with pytest.raises(ClevrRemvError, match="field 'plural'.*gives an object"):
        load_template_set(tmp_path)


def test_shipped_plural_families_are_apart_from_the_single_ones():
    shipped = load_template_set()
    assert not shipped.plural().families
    plural = load_template_set(default_templates_dir() / "generalized")
    assert set(plural.families) == {
        "multi_zero_hop.json",
        "multi_one_hop.json",
        "multi_same_relate.json",
        "multi_visibility.json",
    }
    assert all(t.plural for templates in plural.families.values() for t in templates)


# -- the single-referent default is untouched ----------------------------------------------------
GOLDEN_SCENES = [
    [
        obj("cube", "red", 0, 0),
        obj("cube", "blue", 2, 1, size="small"),
        obj("sphere", "red", -2, 2, material="metal"),
        obj("cylinder", "green", 1, -2),
        obj("sphere", "gray", -1, -1, occlusion=0.4),
    ],
    [
        obj("sphere", "yellow", 0, 0),
        obj("sphere", "yellow", 2, 0, size="small"),
        obj("cube", "purple", -2, 1),
        obj("cylinder", "cyan", 0, 3, material="metal", occlusions=[0.3] * 9),
    ],
]
# sha256 of the documents below as written by the code before generalized expressions existed
# (commit 30994c8); a change here means single-referent datasets no longer reproduce.
GOLDEN_SINGLE = "c7def8d12597f8a83bae3ca24c595ec9c96a08f44e725b24a86b8f05f15ab8ca"


def test_default_generation_is_byte_identical_to_before():
    documents = []
    for index, objects in enumerate(GOLDEN_SCENES):
        scene = make_scene(objects, index)
        documents.append(generate_refexps(scene, properties=PROPERTIES, seed=11, per_scene=8))
        documents.append(generate_refexps(scene, properties=PROPERTIES, seed=11, per_scene=8, keep_partial=True))
    assert sum(len(document["expressions"]) for document in documents) == 32
    assert hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest() == GOLDEN_SINGLE
    assert all("referents" not in e for document in documents for e in document["expressions"])


def test_single_mode_skips_plural_templates_of_a_custom_folder(tmp_path):
    folder = shutil.copytree(
        default_templates_dir() / "generalized", tmp_path / "mine", ignore=shutil.ignore_patterns("*.py")
    )
    shutil.copy(default_templates_dir() / "zero_hop.json", folder)
    scene = make_scene(GOLDEN_SCENES[0])
    single = generate_refexps(scene, properties=PROPERTIES, seed=1, per_scene=6, templates_dir=folder)
    assert {e["family"]["template"] for e in single["expressions"]} == {"zero_hop.json"}
    mixed = generate_refexps(
        scene,
        properties=PROPERTIES,
        seed=1,
        per_scene=10,
        templates_dir=folder,
        expressions="generalized",
        target_mix=(0.0, 0.5, 0.5),
    )
    assert any(e["family"]["template"].startswith("multi_") for e in mixed["expressions"])


# -- generalized generation ------------------------------------------------------------------------
def check_per_view_truth(scene, document, min_pixels=1):
    """Every expression names exactly its referents in each view it lists, and each referent shows there."""
    facts = SceneFacts.from_scene(scene)
    position = {(view["u"], view["v"]): i for i, view in enumerate(scene["views"])}
    for expression in document["expressions"]:
        referents = frozenset(k - 1 for k in expression["referents"])
        assert expression["views"], expression
        for u, v in expression["views"]:
            assert answer_set(expression["program"], facts.seen_from(scene, position[u, v])) == referents, expression
            for k in referents:
                assert scene["objects"][k]["views"][position[u, v]]["pixels"] >= min_pixels


def test_every_kind_is_true_in_each_view_it_lists(scenes):
    kinds = collections.Counter()
    for scene in scenes:
        document = generalized(scene)
        validate(document, "refexps", "generalized refexps")
        check_per_view_truth(scene, document)
        for expression in document["expressions"]:
            count = len(expression["referents"])
            kinds[min(count, 2)] += 1
            assert expression.get("referent") == (expression["referents"][0] if count == 1 else None)
            assert expression["referents"] == sorted(expression["referents"])
            # The paper's filter: every view of the grid, for every kind.
            assert len(expression["views"]) == len(scene["views"])
    assert kinds[0] and kinds[1] and kinds[2]


def test_keep_partial_lists_the_views_where_each_kind_holds(scenes):
    for scene in scenes:
        document = generalized(scene, keep_partial=True, min_visible_pixels=40)
        check_per_view_truth(scene, document, min_pixels=40)


def test_multi_target_expressions_agree_in_number_and_name_different_groups(scenes):
    for scene in scenes:
        expressions = generalized(scene)["expressions"]
        multi = [e for e in expressions if len(e["referents"]) >= 2]
        for expression in multi:
            assert expression["family"]["template"].startswith("multi_")
            assert any(
                noun in expression["text"].lower().split(" ")[:7] or f"{noun}." in expression["text"].lower()
                for noun in PLURAL_NOUNS
            ), expression["text"]
        assert len({tuple(e["referents"]) for e in multi}) == len(multi)
        single = [e for e in expressions if len(e["referents"]) == 1]
        assert not any(e["family"]["template"].startswith("multi_") for e in single)


def test_no_target_expressions_only_name_what_the_scene_has(scenes):
    found = 0
    for scene in scenes:
        present = {value for o in scene["objects"] for value in (o["size"], o["color"], o["material"], o["shape"])}
        for expression in generalized(scene)["expressions"]:
            if expression["referents"]:
                continue
            found += 1
            values = {
                side
                for step in expression["program"]
                if step["type"].startswith("filter_") and step["type"][7:] in ("size", "color", "material", "shape")
                for side in step["side_inputs"]
            }
            assert values <= present, (expression["text"], values - present)
    assert found


def test_texts_and_programs_are_distinct_and_reproducible(scenes):
    for scene in scenes:
        document = generalized(scene)
        texts = [e["text"] for e in document["expressions"]]
        programs = [json.dumps(e["program"]) for e in document["expressions"]]
        assert len(set(texts)) == len(texts) and len(set(programs)) == len(programs)
        assert generalized(scene) == document


def test_the_mix_is_followed_on_average(scenes):
    counts = collections.Counter()
    for scene in scenes:
        for expression in generate_refexps(
            scene, properties=PROPERTIES, seed=0, per_scene=10, expressions="generalized", target_mix=(0.3, 0.4, 0.3)
        )["expressions"]:
            counts[min(len(expression["referents"]), 2)] += 1
    total = sum(counts.values())
    assert total >= 90
    assert counts[0] / total == pytest.approx(0.3, abs=0.06)
    assert counts[2] / total == pytest.approx(0.3, abs=0.08)


def test_target_counts_add_up_and_average_to_the_shares():
    rng = random.Random(0)
    draws = [target_counts(7, (0.12, 0.59, 0.29), rng) for _ in range(4000)]
    assert all(sum(draw) == 7 for draw in draws)
    means = [sum(draw[k] for draw in draws) / len(draws) for k in range(3)]
    assert means == pytest.approx([7 * 0.12, 7 * 0.59, 7 * 0.29], abs=0.05)
    assert target_counts(10, (0.0, 1.0, 0.0), rng) == (0, 10, 0)


@pytest.mark.parametrize("mix", [(0.5, 0.5), (0.2, 0.2, 0.2), (-0.1, 0.6, 0.5), ("a", 1, 0)])
def test_a_bad_mix_is_refused(mix):
    with pytest.raises(ClevrRemvError, match="--target-mix"):
        check_target_mix(mix)


def test_settings_record_the_mix_only_for_generalized_expressions():
    single = refexp_settings(3)
    assert "expressions" not in single and "target_mix" not in single
    settings = refexp_settings(3, expressions="generalized")
    assert settings["expressions"] == "generalized" and settings["target_mix"] == list(DEFAULT_TARGET_MIX)
    with pytest.raises(ClevrRemvError, match="--target-mix: only applies"):
        refexp_settings(3, target_mix=(0.2, 0.6, 0.2))


# -- the refexps command -----------------------------------------------------------------------------
def test_refexps_command_writes_and_records_generalized_expressions(tiny_generalized_dataset):
    store = DatasetStore(tiny_generalized_dataset)
    info = store.info()
    assert info["refexps"]["expressions"] == "generalized"
    assert info["refexps"]["target_mix"] == list(DEFAULT_TARGET_MIX)
    kinds = collections.Counter(
        min(len(e["referents"]), 2) for index in store.scene_ids() for e in store.load_refexps(index)["expressions"]
    )
    assert kinds[0] and kinds[1] and kinds[2]
    assert [p for p in validate_dataset(tiny_generalized_dataset) if p.severity == "error"] == []


def test_refexps_command_back_to_single_drops_the_keys(tiny_dataset_copy):
    runner = CliRunner()
    args = ["refexps", "--data", str(tiny_dataset_copy)]
    assert runner.invoke(main, args + ["--expressions", "generalized", "--target-mix", "0.2,0.5,0.3"]).exit_code == 0
    assert DatasetStore(tiny_dataset_copy).info()["refexps"]["target_mix"] == [0.2, 0.5, 0.3]
    assert runner.invoke(main, args).exit_code == 0
    store = DatasetStore(tiny_dataset_copy)
    assert "expressions" not in store.info()["refexps"]
    assert all("referents" not in e for index in store.scene_ids() for e in store.load_refexps(index)["expressions"])


@pytest.mark.parametrize(
    "mix, message", [("0.2,0.8", "three shares"), ("a,b,c", "three numbers"), ("0.5,0.5,0.5", "add up to 1")]
)
def test_refexps_command_refuses_a_bad_mix(tiny_dataset_copy, mix, message):
    before = DatasetStore(tiny_dataset_copy).refexps_path(0).read_bytes()
    result = CliRunner().invoke(
        main, ["refexps", "--data", str(tiny_dataset_copy), "--expressions", "generalized", "--target-mix", mix]
    )
    assert result.exit_code == 2 and message in result.output
    assert DatasetStore(tiny_dataset_copy).refexps_path(0).read_bytes() == before


def test_generate_writes_what_refexps_rewrites(tmp_path):
    """`generate --expressions generalized` and `refexps --expressions generalized` on the rendered
    scenes give the same files (the docs' real run relies on it)."""
    import sys
    from pathlib import Path

    from clevr_remv.generate.config import GenerateConfig
    from clevr_remv.generate.pipeline import generate

    stand_in = [sys.executable, str(Path(__file__).with_name("stand_in_worker.py"))]
    config = GenerateConfig(grid=3, width=48, height=32, samples=1, min_pixels=4, properties=PROPERTIES)
    root = tmp_path / "generated"
    generate(
        root,
        2,
        config,
        command=stand_in,
        progress=False,
        refexps=refexp_settings(0, expressions="generalized", target_mix=(0.25, 0.5, 0.25)),
    )
    store = DatasetStore(root)
    written = {index: store.refexps_path(index).read_bytes() for index in store.scene_ids()}
    assert any(not e["referents"] for index in written for e in json.loads(written[index])["expressions"])
    copy = shutil.copytree(root, tmp_path / "copy")
    result = CliRunner().invoke(
        main, ["refexps", "--data", str(copy), "--expressions", "generalized", "--target-mix", "0.25,0.5,0.25"]
    )
    assert result.exit_code == 0, result.output
    assert {index: DatasetStore(copy).refexps_path(index).read_bytes() for index in written} == written
    assert DatasetStore(copy).info()["refexps"] == store.info()["refexps"]


def test_an_interrupted_switch_is_refused_reported_and_finished_by_running_it_again(tiny_dataset_copy, monkeypatch):
    import clevr_remv.refexp.cli as refexp_cli

    real, written = refexp_cli.write_json_atomic, []

    def stops_after_two_scenes(*args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(args[0])
        real(*args, **kwargs)

    monkeypatch.setattr(refexp_cli, "write_json_atomic", stops_after_two_scenes)
    runner = CliRunner()
    args = ["refexps", "--data", str(tiny_dataset_copy), "--expressions", "generalized", "--target-mix", "0.2,0.5,0.3"]
    assert runner.invoke(main, args).exit_code != 0
    monkeypatch.undo()
    store = DatasetStore(tiny_dataset_copy)
    assert "expressions" not in store.info()["refexps"]  # still single, but two scenes were switched
    command = (
        f"clevr-remv refexps --data {tiny_dataset_copy} --seed 0 --per-scene 8 --min-visible-pixels 1 "
        "--expressions generalized --target-mix 0.2,0.5,0.3"
    )
    errors = [problem for problem in validate_dataset(tiny_dataset_copy) if problem.severity == "error"]
    assert [problem.path for problem in errors] == [str(store.dataset_json_path)]
    assert "`clevr-remv refexps` stopped before it had rewritten every scene's expressions" in errors[0].message
    assert f"finish it by running it again: `{command}`" in errors[0].message
    out = tiny_dataset_copy.parent / "evaluation"
    result = runner.invoke(main, ["evaluate", "--data", str(tiny_dataset_copy), "--predictor", "empty", "--out", out])
    assert result.exit_code == 2 and f"{store.dataset_json_path}: `clevr-remv refexps` stopped" in result.output
    assert not out.exists()
    packed = tiny_dataset_copy.parent / "packed"
    result = runner.invoke(main, ["pack", "--data", str(tiny_dataset_copy), "--out", str(packed)])
    assert result.exit_code == 2 and "`clevr-remv refexps` stopped" in result.output and not packed.exists()
    result = runner.invoke(main, command.split()[1:])
    assert result.exit_code == 0, result.output
    store = DatasetStore(tiny_dataset_copy)
    assert store.info()["refexps"]["target_mix"] == [0.2, 0.5, 0.3] and "refexps_pending" not in store.info()
    assert all("referents" in e for index in store.scene_ids() for e in store.load_refexps(index)["expressions"])
    assert [problem for problem in validate_dataset(tiny_dataset_copy) if problem.severity == "error"] == []
