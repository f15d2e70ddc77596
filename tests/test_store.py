import json
import os
import stat

import pytest

from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore, atomic_scene_dir, create_json_atomic, write_json_atomic
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.synthetic import write_synthetic_dataset
from clevr_remv.res.models.training import save_checkpoint


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


def test_a_second_finisher_discards_its_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-a")
    with atomic_scene_dir(tmp_path, 5) as first:
        (first / "scene.json").write_text("first")
        monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-b")
        with atomic_scene_dir(tmp_path, 5) as second:  # a run on another host, finishing earlier
            (second / "scene.json").write_text("second")
    assert [p.name for p in tmp_path.iterdir()] == ["000005"]
    assert (tmp_path / "000005" / "scene.json").read_text() == "second"


def test_only_leftovers_of_this_hosts_dead_runs_or_stale_ones_are_removed(tmp_path, monkeypatch):
    import os
    import subprocess
    import time

    from clevr_remv.dataset.store import remove_stale_temporaries

    monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-a")
    running = subprocess.Popen(["sleep", "30"])
    try:
        dead_pid = 2 ** 22 + 7  # above Linux's largest possible pid: never a live process
        names = {"dead": f".tmp-000001-node-a-{dead_pid}", "running": f".tmp-000002-node-a-{running.pid}",
                 "mine": f".tmp-000003-node-a-{os.getpid()}", "other_host": f".tmp-000004-node-b-{dead_pid}",
                 "other_host_old": f".tmp-000005-node-b-{dead_pid}", "old_format": f".tmp-000006-{dead_pid}"}
        for name in names.values():
            (tmp_path / name / "rgb").mkdir(parents=True)
        old = time.time() - 7200
        os.utime(tmp_path / names["other_host_old"] / "rgb", (old, old))
        os.utime(tmp_path / names["other_host_old"], (old, old))
        removed = remove_stale_temporaries(tmp_path, stale_after=3600)
        assert sorted(p.name for p in removed) == sorted(names[k] for k in ("dead", "mine", "other_host_old"))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            names[k] for k in ("running", "other_host", "old_format"))
        # A folder whose views are still being written is not stale, however old the folder itself is.
        os.utime(tmp_path / names["other_host"], (old, old))
        assert remove_stale_temporaries(tmp_path, stale_after=3600) == []
    finally:
        running.kill()
        running.wait()


def test_exactly_one_writer_creates_a_file(tmp_path):
    from clevr_remv.dataset.store import create_json_atomic

    document = {"format_version": 1, "seed": 0, "ratios": [1.0], "splits": {"train": [0]}}
    assert create_json_atomic(tmp_path / "splits.json", document, "splits")
    assert not create_json_atomic(tmp_path / "splits.json", dict(document, seed=1), "splits")
    assert json.loads((tmp_path / "splits.json").read_text())["seed"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["splits.json"]


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    """Run a test under umask 022 and under 077, restoring the old umask afterwards."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_atomic_files_follow_the_umask(tmp_path, umask):
    expected = 0o666 & ~umask
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    create_json_atomic(tmp_path / "b.json", {"x": 1})
    save_checkpoint(tmp_path / "c.pt", {"epoch": 1})
    with open(tmp_path / "plain.txt", "w"):
        pass
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    assert modes == {"a.json": expected, "b.json": expected, "c.pt": expected, "plain.txt": expected}


def test_a_written_dataset_follows_the_umask(tmp_path, umask):
    write_synthetic_dataset(tmp_path / "data", scenes=1, grid=3, width=48, height=32, seed=0)
    write_splits(tmp_path / "data", "1,0,0")
    store = DatasetStore(tmp_path / "data")
    files = [store.dataset_json_path, store.splits_path, store.scene_json_path(0), store.refexps_path(0),
             store.rgb_path(0, 1, 1)]
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o666 & ~umask}
