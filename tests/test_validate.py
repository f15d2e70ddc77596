"""`clevr-remv validate`: a good dataset passes; each kind of corruption is caught with its path."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.dataset.problems import ERROR, WARNING
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.errors import ClevrRemvError


def _errors(root, quick=False):
    return [p for p in validate_dataset(root, quick=quick) if p.severity == ERROR]


def _only_problem_at(problems, path, words):
    assert problems, "the corruption was not detected"
    assert {p.path for p in problems} == {str(path)}, [str(p) for p in problems]
    assert all(word in problems[0].message for word in words), str(problems[0])


def _rewrite_json(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("quick", [False, True])
def test_good_dataset_passes(tiny_dataset, quick):
    assert validate_dataset(tiny_dataset, quick=quick) == []


def test_good_dataset_passes_with_workers(tiny_dataset):
    assert validate_dataset(tiny_dataset, workers=2) == []


def test_cli_exit_codes_and_report(tiny_dataset_copy):
    runner = CliRunner()
    assert runner.invoke(main, ["validate", "--data", str(tiny_dataset_copy)]).exit_code == 0
    target = DatasetStore(tiny_dataset_copy).rgb_path(1, 2, 2)
    target.unlink()
    result = runner.invoke(main, ["validate", "--data", str(tiny_dataset_copy), "--quick"])
    assert result.exit_code == 1
    assert f"ERROR {target}: missing" in result.output
    assert "1 error," in result.output


def test_not_a_dataset_is_a_usage_error(tmp_path):
    with pytest.raises(ClevrRemvError, match="no dataset.json"):
        validate_dataset(tmp_path)
    assert CliRunner().invoke(main, ["validate", "--data", str(tmp_path)]).exit_code == 2


def test_truncated_png_is_caught_by_full_run(tiny_dataset_copy):
    path = DatasetStore(tiny_dataset_copy).index_path(2, 1, 3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _only_problem_at(_errors(tiny_dataset_copy), path, ["cannot be decoded"])


def test_garbage_png_is_caught_even_by_quick_run(tiny_dataset_copy):
    path = DatasetStore(tiny_dataset_copy).rgb_path(0, 1, 1)
    path.write_bytes(b"not a png at all")
    _only_problem_at(_errors(tiny_dataset_copy, quick=True), path, ["cannot be decoded"])


@pytest.mark.parametrize("quick", [False, True])
def test_wrong_size_image(tiny_dataset_copy, quick):
    path = DatasetStore(tiny_dataset_copy).rgb_path(3, 3, 1)
    Image.new("RGB", (10, 10)).save(path)
    _only_problem_at(_errors(tiny_dataset_copy, quick=quick), path, ["size 10x10", "48x32"])


def test_mask_value_above_object_count(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    path = store.index_path(0, 2, 2)
    mask = store.read_index(0, 2, 2).copy()
    mask[0, 0] = 200
    Image.fromarray(mask).save(path)
    _only_problem_at(_errors(tiny_dataset_copy), path, ["value 200"])


def test_mask_disagreeing_with_scene_json(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    path = store.index_path(1, 1, 1)
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(path)
    _only_problem_at(_errors(tiny_dataset_copy), path, ["visible pixels"])


def test_missing_view_image_and_missing_view_entry(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    store.index_path(4, 3, 3).unlink()
    _only_problem_at(_errors(tiny_dataset_copy, quick=True), store.index_path(4, 3, 3), ["missing"])
    store.index_path(4, 3, 3).write_bytes(store.rgb_path(4, 3, 3).read_bytes())  # an RGB file as mask
    _only_problem_at(_errors(tiny_dataset_copy, quick=True), store.index_path(4, 3, 3), ["mode RGB"])


def test_scene_json_with_a_view_removed(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    _rewrite_json(store.scene_json_path(5), lambda scene: scene["views"].pop())
    problems = _errors(tiny_dataset_copy, quick=True)
    assert any(p.path == str(store.scene_json_path(5)) and "views are" in p.message for p in problems)


def test_bad_json(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    store.scene_json_path(2).write_text('{"format_version": 1,')
    problems = _errors(tiny_dataset_copy, quick=True)
    assert [p.path for p in problems] == [str(store.scene_json_path(2))]
    assert "not valid JSON" in problems[0].message


def test_schema_violation(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    _rewrite_json(store.refexps_path(1), lambda doc: doc["expressions"][0].update(text=""))
    _only_problem_at(_errors(tiny_dataset_copy, quick=True), store.refexps_path(1), ["expressions/0/text"])


def test_bad_dataset_json_is_reported_not_raised(tiny_dataset_copy):
    path = DatasetStore(tiny_dataset_copy).dataset_json_path
    _rewrite_json(path, lambda info: info.pop("counts"))
    _only_problem_at(_errors(tiny_dataset_copy), path, ["counts"])


def test_referent_and_view_list_errors(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    objects = len(store.load_scene(0)["objects"])

    def corrupt(doc):
        doc["expressions"][0]["referent"] = objects + 1
        doc["expressions"][1]["views"].append([4, 1])

    _rewrite_json(store.refexps_path(0), corrupt)
    problems = _errors(tiny_dataset_copy, quick=True)
    messages = " | ".join(p.message for p in problems)
    assert {p.path for p in problems} == {str(store.refexps_path(0))}
    assert f"referent {objects + 1} but the scene has {objects} objects" in messages
    assert "views (4, 1) are not in the 3x3 grid" in messages


def test_referent_listed_in_a_view_where_it_is_hidden(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    expression = store.load_refexps(3)["expressions"][0]
    u, v = expression["views"][0]
    referent = expression["referent"]

    def hide(scene):
        position = scene["views"].index(next(view for view in scene["views"] if (view["u"], view["v"]) == (u, v)))
        scene["objects"][referent - 1]["views"][position]["pixels"] = 0

    _rewrite_json(store.scene_json_path(3), hide)
    problems = _errors(tiny_dataset_copy, quick=True)
    assert [p.path for p in problems] == [str(store.refexps_path(3))]
    assert f"not visible in listed views ({u}, {v})" in problems[0].message


def test_split_coverage(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)

    def corrupt(doc):
        doc["splits"]["val"] = doc["splits"]["val"][1:] + doc["splits"]["train"][:1] + [99]

    missing = store.load_splits()["splits"]["val"][0]
    twice = store.load_splits()["splits"]["train"][0]
    _rewrite_json(store.splits_path, corrupt)
    problems = _errors(tiny_dataset_copy, quick=True)
    messages = " | ".join(p.message for p in problems)
    assert {p.path for p in problems} == {str(store.splits_path)}
    assert f"scenes {twice} are in more than one split" in messages
    assert f"scenes {missing} are in no split" in messages
    assert "scenes 99 are listed but not in the dataset" in messages


def test_counts_in_dataset_json(tiny_dataset_copy):
    path = DatasetStore(tiny_dataset_copy).dataset_json_path
    _rewrite_json(path, lambda info: info["counts"].update(scenes=7, expressions=0))
    problems = _errors(tiny_dataset_copy, quick=True)
    assert {p.path for p in problems} == {str(path)}
    assert sorted(p.message.split(" is ")[0] for p in problems) == ["counts.expressions", "counts.scenes"]


def test_leftover_tmp_folders_are_warnings(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    (store.scenes_dir / ".tmp-000006-123").mkdir()
    (store.scene_dir(0) / ".tmp-abc.json").write_text("{")
    problems = validate_dataset(tiny_dataset_copy, quick=True)
    assert {p.severity for p in problems} == {WARNING}
    assert {p.path for p in problems} == {
        str(store.scenes_dir / ".tmp-000006-123"),
        str(store.scene_dir(0) / ".tmp-abc.json"),
    }
    result = CliRunner().invoke(main, ["validate", "--data", str(tiny_dataset_copy), "--quick"])
    assert result.exit_code == 0 and "WARNING" in result.output


@pytest.mark.parametrize("name", ["scene", "refexps", "splits", "dataset"])
def test_a_json_file_that_is_not_utf8_is_reported_not_a_traceback(tiny_dataset_copy, name):
    store = DatasetStore(tiny_dataset_copy)
    path = {
        "scene": store.scene_json_path(3),
        "refexps": store.refexps_path(3),
        "splits": store.splits_path,
        "dataset": store.dataset_json_path,
    }[name]
    path.write_bytes(b'{"text": "caf\xe9"}')  # Latin-1, not UTF-8
    result = CliRunner().invoke(main, ["validate", "--data", str(tiny_dataset_copy), "--quick"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"ERROR {path}: not UTF-8 text" in result.output


def test_scenes_whose_expressions_are_not_of_the_datasets_kind_are_errors(
    tiny_dataset_copy, tiny_generalized_dataset, tmp_path
):
    """What an interrupted `clevr-remv refexps` of an older version left: some scenes switched."""
    single, generalized = DatasetStore(tiny_dataset_copy), DatasetStore(tiny_generalized_dataset)
    single.refexps_path(1).write_bytes(generalized.refexps_path(1).read_bytes())
    errors = [error for error in _errors(tiny_dataset_copy) if "counts.expressions" not in error.message]
    assert [error.path for error in errors] == [str(single.refexps_path(1))]
    assert "expressions are generalized (they carry 'referents'), but dataset.json says" in errors[0].message
    assert f"rerun `clevr-remv refexps --data {tiny_dataset_copy} --seed 0 --per-scene 8" in errors[0].message
    mixed = DatasetStore(shutil.copytree(tiny_generalized_dataset, tmp_path / "generalized"))
    mixed.refexps_path(2).write_bytes(DatasetStore(tiny_dataset_copy).refexps_path(2).read_bytes())
    errors = [error for error in _errors(mixed.root) if "counts.expressions" not in error.message]
    assert [error.path for error in errors] == [str(mixed.refexps_path(2))]
    assert "expressions have no 'referents', but dataset.json says the expressions are generalized" in (
        errors[0].message
    )
    assert "--expressions generalized --target-mix" in errors[0].message
