import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from clevr_remv.dataset.leases import Lease
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import (
    DatasetStore,
    atomic_scene_dir,
    create_json_atomic,
    remove_stale_temporaries,
    write_json_atomic,
)
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


def test_a_second_finisher_discards_its_copy_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-a")
    first = atomic_scene_dir(tmp_path, 5)
    with first as folder:
        (folder / "scene.json").write_text("first")
        monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-b")
        second = atomic_scene_dir(tmp_path, 5)
        with second as other:  # a run on another host, finishing earlier
            (other / "scene.json").write_text("second")
    assert second.completed and not first.completed
    assert [p.name for p in tmp_path.iterdir()] == ["000005"]
    assert (tmp_path / "000005" / "scene.json").read_text() == "second"


def test_a_scene_is_flushed_to_disk_before_the_rename_that_completes_it(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def rename(source, target):
        renamed.append(len(synced))
        real_rename(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    with atomic_scene_dir(tmp_path, 2) as folder:
        (folder / "rgb").mkdir()
        (folder / "rgb" / "u1_v1.png").write_bytes(b"png")
        (folder / "scene.json").write_text("{}")
        written = [str(folder / "rgb" / "u1_v1.png"), str(folder / "rgb"), str(folder / "scene.json"), str(folder)]
    assert renamed and set(written) <= set(synced[: renamed[0]])  # every file and folder, before the rename
    assert str(tmp_path) in synced[renamed[0] :]  # and the folder that holds the rename, after it


def test_atomic_json_files_are_flushed_with_their_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    create_json_atomic(tmp_path / "b.json", {"x": 1})
    assert len([path for path in synced if "/.tmp-" in path]) == 2  # each file's data before its rename or link
    assert synced.count(str(tmp_path)) == 2  # each folder entry after it


# A run on its own: it writes scene INDEX into SCENES (argv), says "ready" once its temporary folder
# exists, finishes when told, and reports whether its copy made the scene.
HOLDER = textwrap.dedent("""
    import sys
    from clevr_remv.dataset.store import atomic_scene_dir
    writer = atomic_scene_dir(sys.argv[1], int(sys.argv[2]))
    with writer as folder:
        (folder / "scene.json").write_text("{}")
        print("ready", flush=True)
        sys.stdin.readline()
    print("completed" if writer.completed else "discarded", flush=True)
""")


def start_holder(scenes, index, prefix=(), env=None):
    holder = subprocess.Popen(
        [*prefix, sys.executable, "-c", HOLDER, str(scenes), str(index)],
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


def finish_holder(holder) -> str:
    out, _ = holder.communicate("go\n", timeout=60)
    return out.strip()


def test_a_live_run_with_the_same_host_and_pid_keeps_its_folder(tmp_path, monkeypatch):
    """Containers: both runs are PID 1 on hosts of one name. The cleaner here pretends to have the
    holder's pid (the old rules removed a folder of this host and this pid as a leftover)."""
    holder = start_holder(tmp_path, 3)
    monkeypatch.setattr(os, "getpid", lambda: holder.pid)
    assert remove_stale_temporaries(tmp_path, stale_after=3600) == []
    assert finish_holder(holder) == "completed"
    assert (tmp_path / "000003" / "scene.json").is_file()


@pytest.mark.skipif(
    subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode != 0
    if shutil.which("unshare")
    else True,
    reason="needs unshare (util-linux) with the right to make a pid namespace",
)
def test_two_pid_1_runs_in_separate_pid_namespaces_leave_each_other_alone(tmp_path):
    pid_1 = ["unshare", "--pid", "--fork", "--mount-proc"]
    holder = start_holder(tmp_path, 4, prefix=pid_1)
    cleaner = subprocess.run(
        [
            *pid_1,
            sys.executable,
            "-c",
            "import os, sys; assert os.getpid() == 1;"
            "from clevr_remv.dataset.store import remove_stale_temporaries as r;"
            "print(len(r(sys.argv[1], 3600)))",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert cleaner.returncode == 0 and cleaner.stdout.strip() == "0", cleaner.stderr
    assert finish_holder(holder) == "completed"


def test_leftovers_go_by_lease_lock_or_age_and_never_by_host_and_pid(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-a")
    live = start_holder(tmp_path, 1)
    dead = start_holder(tmp_path, 2)
    dead.kill()  # its lease stays, unlocked
    dead.wait()
    dead_pid = 2**22 + 7  # above Linux's largest possible pid: never a live process
    names = {
        "old_format_dead": f".tmp-000005-node-a-{dead_pid}",
        "old_format_mine": f".tmp-000006-node-a-{os.getpid()}",
        "no_lease": ".tmp-000007-0123456789abcdef",
    }
    for name in names.values():
        (tmp_path / name / "rgb").mkdir(parents=True)
    removed = sorted(p.name for p in remove_stale_temporaries(tmp_path, stale_after=3600))
    assert len(removed) == 2 and removed[0].startswith(".tmp-000002-") and removed[1].startswith(".tmp-run-")
    # Old-format names and folders without a lease go only when old, whatever host and pid they name.
    old = time.time() - 7200
    for name in names.values():
        os.utime(tmp_path / name, (old, old))
    # A folder whose views are still being written is not stale, however old the folder itself is.
    assert remove_stale_temporaries(tmp_path, stale_after=3600) == []
    for name in names.values():
        os.utime(tmp_path / name / "rgb", (old, old))
    assert sorted(p.name for p in remove_stale_temporaries(tmp_path, stale_after=3600)) == sorted(names.values())
    assert finish_holder(live) == "completed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000001"]


def test_another_machines_run_is_judged_by_its_heartbeat(tmp_path, monkeypatch):
    holder = start_holder(tmp_path, 1, env=dict(os.environ, CLEVR_REMV_HOSTNAME="node-b"))
    try:
        monkeypatch.setenv("CLEVR_REMV_HOSTNAME", "node-a")  # another machine: its lock tells nothing here
        lease = next(tmp_path.glob(".tmp-run-*"))
        assert remove_stale_temporaries(tmp_path, stale_after=3600) == []
        old = time.time() - 7200
        os.utime(lease, (old, old))  # the heartbeat stopped two hours ago
        assert sorted(p.name for p in remove_stale_temporaries(tmp_path, stale_after=3600)) == sorted(
            [lease.name, ".tmp-000001-" + lease.name.removeprefix(".tmp-run-")]
        )
    finally:
        holder.kill()
        holder.wait()


def test_a_lease_is_touched_while_held_and_gone_when_released(tmp_path):
    lease = Lease(tmp_path / ".tmp-run-0123456789abcdef", "0123456789abcdef", heartbeat_s=0.05)
    old = time.time() - 7200
    os.utime(lease.path, (old, old))
    deadline = time.time() + 10
    while lease.path.stat().st_mtime < old + 1 and time.time() < deadline:
        time.sleep(0.02)
    assert lease.path.stat().st_mtime > old + 1
    lease.release()
    assert not lease.path.exists()


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
    files = [
        store.dataset_json_path,
        store.splits_path,
        store.scene_json_path(0),
        store.refexps_path(0),
        store.rgb_path(0, 1, 1),
    ]
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o666 & ~umask}
