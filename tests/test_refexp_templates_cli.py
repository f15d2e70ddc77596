"""Template sets (shipped, user-supplied, broken) and the `clevr-remv refexps` command."""

import json
import shutil

import pytest
from builders import PROPERTIES, make_scene, obj
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.refexp import SceneFacts, generate_refexps, load_template_set, referent_of
from clevr_remv.refexp.templates import default_templates_dir

FAMILIES = {"zero_hop.json", "one_hop.json", "same_relate.json", "ordinal.json", "visibility.json"}
ZERO_HOP = {
    "text": ["The <Z> <C> <M> <S>."],
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


def write_templates(folder, templates, name="mine.json"):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(templates) if not isinstance(templates, str) else templates)
    return folder


def test_shipped_set_has_the_five_single_object_families():
    template_set = load_template_set()
    assert set(template_set.families) == FAMILIES
    assert {"sphere", "cube", "large", "metal"} <= set(template_set.synonyms)
    for templates in template_set.families.values():
        for template in templates:
            relations = [n for n in template.nodes if n["type"] == "relate" or n["type"].startswith("same_")]
            assert len(relations) <= 1


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda t: t["nodes"][1].update(type="filtr"), "field 'nodes/1/type'"),
        (lambda t: t.update(text=["The <Z> <C> <S>."]), "field 'text/0': <M> does not appear"),
        (
            lambda t: t["nodes"][1].update(side_inputs=["<Z>", "<Q>"]),
            "field 'nodes/1/side_inputs': <Q> is not declared",
        ),
        (lambda t: t["nodes"][1].update(inputs=[1]), "field 'nodes/1/inputs'"),
        (lambda t: t["nodes"][0].update(type="unique"), "field 'nodes/0/inputs'"),
        (lambda t: t.update(constraints=[{"type": "OUT_NEQ", "params": [0, 9]}]), "field 'constraints/0/params'"),
        (lambda t: t.update(constraints=[{"type": "NULL", "params": ["<X>"]}]), "field 'constraints/0/params'"),
        (lambda t: t.update(text=["The <Z> <C> [<M> <S>."]), "field 'text/0': unbalanced"),
    ],
)
def test_broken_template_names_file_template_and_field(tmp_path, change, expected):
    broken = json.loads(json.dumps(ZERO_HOP))
    change(broken)
    folder = write_templates(tmp_path / "set", [ZERO_HOP, broken])
    with pytest.raises(ClevrRemvError) as error:
        load_template_set(folder)
    assert f"mine.json: template 1, {expected}" in str(error.value)


def test_invalid_json_and_bad_folders_are_clear(tmp_path):
    with pytest.raises(ClevrRemvError, match=r"mine.json: not valid JSON \(line 1"):
        load_template_set(write_templates(tmp_path / "bad", "[{"))
    with pytest.raises(ClevrRemvError, match="no such folder"):
        load_template_set(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClevrRemvError, match="no template files"):
        load_template_set(tmp_path / "empty")


def test_user_templates_with_intersect_and_out_neq(tmp_path):
    """A user family built from CLEVR primitives; without a synonyms.json the shipped one is used."""
    colour_and_shape = {
        "text": ["The <C> thing that is a <S>."],
        "nodes": [
            {"type": "scene", "inputs": []},
            {"type": "filter_color", "inputs": [0], "side_inputs": ["<C>"]},
            {"type": "filter_shape", "inputs": [0], "side_inputs": ["<S>"]},
            {"type": "intersect", "inputs": [1, 2]},
        ],
        "params": [{"type": "Color", "name": "<C>"}, {"type": "Shape", "name": "<S>"}],
        "constraints": [{"type": "OUT_NEQ", "params": [1, 3]}, {"type": "OUT_NEQ", "params": [2, 3]}],
    }
    folder = write_templates(tmp_path / "user", [colour_and_shape], name="and.json")
    scene = make_scene([obj("cube", "red", 0, 0), obj("sphere", "red", 2, 0), obj("cube", "blue", -2, 0)])
    document = generate_refexps(scene, properties=PROPERTIES, seed=0, templates_dir=folder)
    facts = SceneFacts.from_scene(scene)
    # Only the red cube needs both filters (OUT_NEQ rejects the others).
    assert [e["text"] for e in document["expressions"]] in (
        ["The red thing that is a cube."],
        ["The red object that is a cube."],
        ["The red thing that is a block."],
        ["The red object that is a block."],
    )
    for expression in document["expressions"]:
        assert expression["family"] == {"template": "and.json", "index": 0}
        assert [n["type"] for n in expression["program"]][-2:] == ["intersect", "unique"]
        assert referent_of(expression["program"], facts) == expression["referent"] - 1
    assert load_template_set(folder).synonyms == load_template_set().synonyms


# -- the command ----------------------------------------------------------------------------------
def run(*args):
    return CliRunner().invoke(main, ["refexps", *map(str, args)])


def test_refexps_command_rewrites_every_scene_and_counts(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    before = {i: store.load_refexps(i) for i in store.scene_ids()}
    result = run("--data", tiny_dataset_copy, "--per-scene", 3, "--seed", 5)
    assert result.exit_code == 0, result.output
    store = DatasetStore(tiny_dataset_copy)
    total = 0
    for index in store.scene_ids():
        document = store.load_refexps(index)
        assert len(document["expressions"]) <= 3 and document["scene"] == index
        facts = SceneFacts.from_scene(store.load_scene(index))
        assert all(referent_of(e["program"], facts) == e["referent"] - 1 for e in document["expressions"])
        total += len(document["expressions"])
    assert store.info()["counts"]["expressions"] == total
    assert not list(store.scenes_dir.glob("*/.tmp-*"))
    # Without --seed the dataset's own seed reproduces what generation wrote.
    assert run("--data", tiny_dataset_copy).exit_code == 0
    assert {i: DatasetStore(tiny_dataset_copy).load_refexps(i) for i in store.scene_ids()} == before


def test_refexps_command_keep_partial_and_pixels(tiny_dataset_copy):
    result = run("--data", tiny_dataset_copy, "--keep-partial", "--min-visible-pixels", 30)
    assert result.exit_code == 0, result.output
    store = DatasetStore(tiny_dataset_copy)
    for index in store.scene_ids():
        scene = store.load_scene(index)
        for expression in store.load_refexps(index)["expressions"]:
            entries = scene["objects"][expression["referent"] - 1]["views"]
            expected = [
                [view["u"], view["v"]]
                for view, entry in zip(scene["views"], entries, strict=True)
                if entry["pixels"] >= 30
            ]
            if any(node["type"] == "filter_visibility" for node in expression["program"]):
                # Judged per view: listed only where its program still names the referent.
                positions = {(view["u"], view["v"]): i for i, view in enumerate(scene["views"])}
                assert expression["views"] and all(view in expected for view in expression["views"])
                assert all(
                    referent_of(expression["program"], SceneFacts.from_scene(scene, positions[tuple(view)]))
                    == expression["referent"] - 1
                    for view in expression["views"]
                )
            else:
                assert expression["views"] == expected and expected


def test_refexps_command_bad_templates_changes_nothing(tiny_dataset_copy, tmp_path):
    store = DatasetStore(tiny_dataset_copy)
    before = store.refexps_path(0).read_text()
    result = run("--data", tiny_dataset_copy, "--templates", tmp_path / "nowhere")
    assert result.exit_code == 2 and "--templates" in result.output and "no such folder" in result.output
    broken = shutil.copytree(default_templates_dir(), tmp_path / "broken")
    (broken / "one_hop.json").write_text(json.dumps([{"text": ["x"], "nodes": [], "params": []}]))
    result = run("--data", tiny_dataset_copy, "--templates", broken)
    assert result.exit_code == 2 and "one_hop.json: template 0, field 'nodes'" in result.output
    assert store.refexps_path(0).read_text() == before


def test_refexps_command_needs_a_dataset(tmp_path):
    result = run("--data", tmp_path)
    assert result.exit_code == 2 and "dataset.json" in result.output
