"""`split`: exact counts, disjoint whole scenes, determinism, idempotent writes, clear errors."""
import json
import shutil

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.splits import (assign_splits, parse_ratios, scenes_for_every_split, split_scene_ids,
                                       split_sizes, write_splits)
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError


@pytest.mark.parametrize("count, ratios, expected", [
    (10_000, "0.7,0.15,0.15", [7000, 1500, 1500]),
    (6, "0.5,0.25,0.25", [3, 2, 1]),      # quotas 3, 1.5, 1.5: the tie goes to the earlier split
    (7, "1/3,1/3,1/3", [3, 2, 2]),
    (11, "0.7,0.15,0.15", [8, 2, 1]),     # quotas 7.7, 1.65, 1.65
    (5, "1,0,0", [5, 0, 0]),
    (0, "0.7,0.15,0.15", [0, 0, 0]),
])
def test_split_sizes_follow_largest_remainder(count, ratios, expected):
    assert split_sizes(count, parse_ratios(ratios)) == expected


def test_ten_thousand_scenes_give_7000_1500_1500_disjoint_and_covering():
    splits = assign_splits(range(10_000), parse_ratios("0.7,0.15,0.15"), seed=3)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [7000, 1500, 1500]
    members = [scene for ids in splits.values() for scene in ids]
    assert sorted(members) == list(range(10_000))
    assert all(ids == sorted(ids) for ids in splits.values())


def test_assignment_depends_on_seed_only():
    ratios = parse_ratios("0.7,0.15,0.15")
    first = assign_splits(range(200), ratios, seed=1)
    assert assign_splits(list(reversed(range(200))), ratios, seed=1) == first
    assert assign_splits(range(200), ratios, seed=2) != first
    assert first["train"] != list(range(140))  # shuffled, not a prefix
    assert assign_splits(range(200), parse_ratios([0.7, 0.15, 0.15]), seed=1) == first


@pytest.mark.parametrize("text, fragment", [
    ("0.7,0.2,0.2", "sums to 1.1"),
    ("0.5,0.5", "expected 3"),
    ("0.7,abc,0.15", "not a comma-separated list"),
    ("1.2,-0.1,-0.1", "negative"),
])
def test_bad_ratios_are_refused(text, fragment):
    with pytest.raises(ClevrRemvError, match=fragment):
        parse_ratios(text)


def test_write_splits_is_idempotent_byte_for_byte(tiny_dataset_copy):
    document, changed = write_splits(tiny_dataset_copy, "0.7,0.15,0.15", seed=5)
    path = DatasetStore(tiny_dataset_copy).splits_path
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    again, changed_again = write_splits(tiny_dataset_copy, "0.7,0.15,0.15", seed=5)
    assert changed and not changed_again and again == document
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    stored = json.loads(before)
    assert stored["seed"] == 5 and stored["ratios"] == [0.7, 0.15, 0.15]
    assert sorted(sum(stored["splits"].values(), [])) == DatasetStore(tiny_dataset_copy).scene_ids()


def test_dataset_without_scenes_is_refused(tiny_dataset, tmp_path):
    shutil.copy(tiny_dataset / "dataset.json", tmp_path / "dataset.json")
    with pytest.raises(ClevrRemvError, match="no complete scenes"):
        write_splits(tmp_path)


def test_split_scene_ids_reports_missing_file_unknown_split_and_missing_scenes(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    assert len(split_scene_ids(store, "val")) == 2
    with pytest.raises(ClevrRemvError, match="no split named 'dev'"):
        split_scene_ids(store, "dev")
    shutil.rmtree(store.scene_dir(split_scene_ids(store, "test")[0]))
    with pytest.raises(ClevrRemvError, match="not complete on disk"):
        split_scene_ids(store, "test")
    store.splits_path.unlink()
    with pytest.raises(ClevrRemvError, match="run `clevr-remv split"):
        split_scene_ids(store, "train")


def test_cli_writes_splits_and_exits_2_on_bad_ratios(tiny_dataset_copy):
    runner = CliRunner()
    result = runner.invoke(main, ["split", "--data", str(tiny_dataset_copy), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "train 4 / val 1 / test 1" in result.output
    result = runner.invoke(main, ["split", "--data", str(tiny_dataset_copy), "--ratios", "0.5,0.2,0.2"])
    assert result.exit_code == 2 and "--ratios" in result.output


@pytest.mark.parametrize("ratios, needed", [("0.7,0.15,0.15", 5), ("0.8,0.1,0.1", 7), ("0.5,0.5,0", 2),
                                            ("1,0,0", 1)])
def test_scenes_for_every_split(ratios, needed):
    parsed = parse_ratios(ratios)
    assert scenes_for_every_split(parsed) == needed
    assert all(size > 0 for size, ratio in zip(split_sizes(needed, parsed), parsed) if ratio > 0)
    assert any(size == 0 for size, ratio in zip(split_sizes(needed - 1, parsed), parsed) if ratio > 0)


def test_cli_warns_about_empty_splits(tiny_dataset_copy):
    for scene in DatasetStore(tiny_dataset_copy).scene_ids()[2:]:
        shutil.rmtree(DatasetStore(tiny_dataset_copy).scene_dir(scene))
    result = CliRunner().invoke(main, ["split", "--data", str(tiny_dataset_copy)])
    assert result.exit_code == 0, result.output
    assert "(train 2 / val 0 / test 0 scenes" in result.output
    for name in ("val", "test"):
        assert (f"Warning: split '{name}' is empty (2 scene(s) at ratios 0.7,0.15,0.15); commands that read it "
                "(evaluate and benchmark read val and test) will fail: generate at least 5 scenes") in result.output
    result = CliRunner().invoke(main, ["split", "--data", str(tiny_dataset_copy), "--ratios", "0.5,0.5,0"])
    assert "Warning: split 'test' is empty" in result.output and "its ratio is 0" in result.output
    assert "split 'val'" not in result.output
