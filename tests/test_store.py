import json

import pytest

from clevr_remv.errors import ClevrRemvError
from clevr_remv.store import DatasetStore, atomic_scene_dir, write_json_atomic


def test_not_a_dataset(tmp_path):
    with pytest.raises(ClevrRemvError, match="not a CLEVR-REMV dataset"):
        DatasetStore(tmp_path)


def test_write_json_atomic_validates_before_touching_the_file(tmp_path):
    path = tmp_path / "splits.json"
    good = {"format_version": 1, "seed": 0, "ratios": [1.0], "splits": {"train": [0, 1]}}
    write_json_atomic(path, good, "splits")
    with pytest.raises(ClevrRemvError, match="field 'splits/train/0'"):
        write_json_atomic(path, dict(good, splits={"train": [-1]}), "splits")
    assert json.loads(path.read_text()) == good
    assert [p.name for p in tmp_path.iterdir()] == ["splits.json"]


def test_a_failed_scene_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_scene_dir(tmp_path, 5) as folder:
            (folder / "scene.json").write_text("{}")
            raise RuntimeError("render failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_scene_dir(tmp_path, 5) as folder:
        (folder / "scene.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["000005"]
