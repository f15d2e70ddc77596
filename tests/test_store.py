import json

import pytest

from clevr_remv.dataset.store import DatasetStore, atomic_scene_dir, write_json_atomic
from clevr_remv.errors import ClevrRemvError


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


def test_only_temporaries_of_finished_runs_are_removed(tmp_path):
    import os
    import subprocess

    from clevr_remv.generate.pipeline import _remove_stale_temporaries

    running = subprocess.Popen(["sleep", "30"])
    try:
        dead_pid = 2 ** 22 + 7  # above Linux's largest possible pid: never a live process
        (tmp_path / f".tmp-000001-{dead_pid}").mkdir()
        (tmp_path / f".tmp-000002-{running.pid}").mkdir()
        (tmp_path / f".tmp-000003-{os.getpid()}").mkdir()
        _remove_stale_temporaries(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".tmp-000002-{running.pid}"]
    finally:
        running.kill()
        running.wait()
