"""Faults around `generate` with a Blender-free stand-in worker: stopping, failing, racing runs,
clean-up of temporary files. Each test names the fault it guards against."""

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate import scene_job
from clevr_remv.generate.config import GenerateConfig, default_min_pixels, small_view_warning
from clevr_remv.generate.executors import local_threads
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import SupervisedWorker
from clevr_remv.generate.synthetic import write_synthetic_dataset
from clevr_remv.wording import plural

STAND_IN = [sys.executable, str(Path(__file__).with_name("stand_in_worker.py"))]
PROPERTIES = load_properties()


def config(**changes):
    return GenerateConfig(
        **{**dict(grid=3, width=48, height=32, samples=1, min_pixels=4, properties=PROPERTIES), **changes}
    )


def make(root, scenes, **options):
    return generate(
        root,
        scenes,
        options.pop("config", config()),
        command=options.pop("command", STAND_IN),
        progress=False,
        **options,
    )


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def other_run(tmp_path):
    """``start(scenes_dir)``: another run's lease, held by a process of its own until the test ends."""
    holders = []

    def start(scenes_dir):
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from clevr_remv.dataset.store import start_run;"
                "lease = start_run(sys.argv[1]); print('ok', flush=True); sys.stdin.readline()",
                str(scenes_dir),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "ok"
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- stopping


def test_ctrl_c_during_the_visibility_check_starts_no_new_worker_and_leaves_no_process(tmp_path, monkeypatch):
    """The old probe call had no stop check: after Ctrl+C a new worker was started, rendered a
    whole scene, and outlived generate()."""
    log = tmp_path / "jobs.log"
    monkeypatch.setenv("CLEVR_REMV_STANDIN_LOG", str(log))
    monkeypatch.setenv("CLEVR_REMV_STANDIN_VIEW_S", "0.5")

    def interrupt_during_the_first_probe():
        deadline = time.time() + 60
        while not (log.is_file() and "probe" in log.read_text()) and time.time() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl+C

    threading.Thread(target=interrupt_during_the_first_probe, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path / "data", 2)
    jobs = [line.split() for line in log.read_text().splitlines()]
    assert [op for _, op, _ in jobs] == ["probe"]  # no render, no second worker
    assert not any(alive(int(pid)) for pid, _, _ in jobs)
    assert not (tmp_path / "data").exists()  # a first run that made nothing leaves nothing


def test_a_closed_worker_refuses_new_jobs_instead_of_restarting(tmp_path):
    worker = SupervisedWorker(STAND_IN)
    worker.close()
    with pytest.raises(ClevrRemvError, match="scene 3: stopped"):
        worker.run({"op": "probe"}, "scene 3")
    assert worker.worker.process is None


@pytest.fixture
def blender(tmp_path):
    """A program to pass as --blender that starts the stand-in worker."""
    program = tmp_path / "blender"
    program.write_text(f"#!/bin/sh\nexec {shlex.quote(STAND_IN[0])} {shlex.quote(STAND_IN[1])}\n")
    program.chmod(0o755)
    return program


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_run_stopped_by_ctrl_c_or_sigterm_counts_the_scenes_it_finished(tmp_path, blender, signum):
    """The recount was skipped after Ctrl+C and SIGTERM: dataset.json kept counts of 0 and
    `validate` exited 1 on a folder of good scenes. The run is a real process in a process group
    of its own, signalled as a terminal's Ctrl+C (or a job scheduler) signals a foreground job."""
    out = tmp_path / "data"
    flags = ["--scenes", "50", "--grid", "3", "--width", "48", "--height", "32", "--min-pixels", "4"]
    run = subprocess.Popen(
        [sys.executable, "-m", "clevr_remv", "generate", "--out", str(out), *flags, "--blender", str(blender)],
        env=dict(os.environ, CLEVR_REMV_STANDIN_VIEW_S="0.05"),
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored, as in a background job
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (out / "scenes" / "000001").is_dir() and run.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(run.pid, signum)
        output = run.communicate(timeout=120)[0]
    finally:
        run.kill()
    scenes = DatasetStore(out).scene_ids()
    assert len(scenes) >= 2 and run.returncode != 0, output
    assert json.loads((out / "dataset.json").read_text())["counts"]["scenes"] == len(scenes), output
    result = CliRunner().invoke(main, ["validate", "--data", str(out)])
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- temporary files


def test_workers_leave_the_temporary_folder_as_they_found_it_also_after_a_crash(tmp_path, monkeypatch):
    """Each worker's files (and Blender's own temporary folder) go to a scratch folder of its own,
    removed when the worker is closed or restarted, however it ended."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    script = tmp_path.parent / f"{tmp_path.name}-crashing_worker.py"
    script.write_text(
        "import json, os, sys, tempfile\n"
        "print('@@clevr-remv ' + json.dumps({'event': 'ready'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    folder = tempfile.mkdtemp(prefix='blender_')\n"  # what Blender does in its TMPDIR
        "    open(os.path.join(folder, 'passes.exr'), 'wb').write(b'x' * 1000)\n"
        "    if not os.path.exists(sys.argv[1]):\n"
        "        open(sys.argv[1], 'w').close()\n"
        "        os._exit(9)\n"  # a crash: no clean-up of its own
        "    print('@@clevr-remv ' + json.dumps({'event': 'done'}), flush=True)\n"
    )
    worker = SupervisedWorker([sys.executable, str(script), str(tmp_path.parent / f"{tmp_path.name}-crashed")])
    try:
        assert worker.run({"op": "render"}, "scene 0")["event"] == "done"  # after one crash and a restart
    finally:
        worker.close()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_drivers_scratch_folder_is_removed_by_the_next_run(tmp_path, monkeypatch):
    from clevr_remv.generate.render import remove_stale_scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    driver = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, tempfile; tempfile.tempdir = sys.argv[1];"
            "from clevr_remv.generate.render import RenderWorker;"
            "RenderWorker(sys.argv[2:]).start(); print('started', flush=True); input()",
            str(tmp_path),
            *STAND_IN,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout.readline().strip() == "started"
    assert remove_stale_scratch(3600) == []  # its driver is alive
    driver.kill()
    driver.wait()
    assert len(remove_stale_scratch(3600)) == 1
    assert list(tmp_path.iterdir()) == []


def test_more_local_workers_than_cores_get_one_thread_each(monkeypatch):
    """Blender reads 0 threads as "all cores": 4 workers on 2 cores once got 0 each."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert local_threads(4) == 1
    assert local_threads(2) == 1
    assert local_threads(1) == 0  # one worker: Blender's own default (all cores)
    assert local_threads(4, worker_cpus=3) == 3


# ---------------------------------------------------------------- failing runs


def test_a_failed_first_run_leaves_no_dataset_so_the_corrected_command_runs(tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--out",
            str(out),
            "--scenes",
            "1",
            "--grid",
            "3",
            "--width",
            "48",
            "--height",
            "32",
            "--blender",
            "/bin/false",
        ],
    )
    assert result.exit_code == 2 and "rendering failed 3 times" in result.output
    assert not out.exists()
    assert make(out, 1)["rendered"] == 1  # another config than the failed run's: not refused


def test_a_failed_run_into_an_existing_dataset_keeps_it(tmp_path):
    make(tmp_path / "data", 1)
    before = (tmp_path / "data" / "dataset.json").read_bytes()
    with pytest.raises(ClevrRemvError, match="rendering failed 3 times"):
        make(tmp_path / "data", 2, command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    assert (tmp_path / "data" / "dataset.json").read_bytes() == before
    assert DatasetStore(tmp_path / "data").scene_ids() == [0]


def test_a_worker_that_is_not_a_program_is_a_clear_error(tmp_path):
    """--blender <a file that is not a program> ended in OSError: Exec format error."""
    fake = tmp_path / "blender"
    fake.write_text("not a program\n")
    fake.chmod(0o755)
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["generate", "--out", str(out), "--scenes", "1", "--blender", str(fake)])
    assert result.exit_code == 2, result.output
    assert (
        f"cannot start the render worker {fake}: Exec format error; --blender must name a Blender binary"
        in result.output
    )
    assert not out.exists()


def growing_scene_ids(found):
    """A DatasetStore.scene_ids that finds one more (made-up) scene at every look."""
    looks = []

    def scene_ids(self):
        looks.append(1)
        return found(self) + list(range(100, 100 + len(looks)))

    return scene_ids


def test_the_recount_leaves_changes_to_runs_still_at_work_and_exits_0(tmp_path, monkeypatch, other_run):
    """Other runs keep completing scenes while this one recounts: it used to give up after 20
    passes and exit 2. Here every look at the folder finds one more scene."""
    make(tmp_path / "data", 1)
    found = DatasetStore.scene_ids
    growing = growing_scene_ids(found)
    monkeypatch.setattr(DatasetStore, "scene_ids", growing)
    holder = other_run(tmp_path / "data" / "scenes")  # another run, at work
    summary = make(tmp_path / "data", 2)
    assert summary["rendered"] == 1
    holder.kill()
    holder.wait()
    monkeypatch.setattr(DatasetStore, "scene_ids", found)
    # Once all runs have ended, the last recount makes dataset.json agree with the folders.
    assert make(tmp_path / "data", 2)["counts"]["scenes"] == 2
    assert DatasetStore(tmp_path / "data").info()["counts"]["scenes"] == 2


def test_a_changing_folder_without_other_runs_only_warns(tmp_path, monkeypatch):
    make(tmp_path / "data", 1)
    found = DatasetStore.scene_ids
    growing = growing_scene_ids(found)
    monkeypatch.setattr(DatasetStore, "scene_ids", growing)
    with pytest.warns(UserWarning, match="kept changing while recounting"):
        assert make(tmp_path / "data", 2)["rendered"] == 1


def test_the_runs_own_error_is_reported_not_the_recounts(tmp_path, monkeypatch):
    """The recount sat in a `finally`: its error replaced the run's own."""
    make(tmp_path / "data", 1)

    def failing_recount(self, others_at_work=None):
        raise ClevrRemvError("the counts kept changing while recounting")

    monkeypatch.setattr(DatasetStore, "refresh_counts", failing_recount)
    with pytest.raises(ClevrRemvError, match="scene 1 \\(visibility check\\): rendering failed 3 times"):
        make(tmp_path / "data", 2, command=[sys.executable, "-c", "import sys; sys.exit(3)"])


def test_a_scene_whose_copy_lost_the_rename_is_not_counted_as_rendered(tmp_path, monkeypatch):
    """Another run finishes the scene while this one renders it: the first rename wins, and this
    run's summary no longer counts its discarded copy as rendered."""
    write_annotations = scene_job.write_annotations
    winner = tmp_path / "winner"
    write_synthetic_dataset(winner, scenes=1, grid=3, width=48, height=32)

    def finish_and_lose(scene_dir, *args):
        import shutil

        shutil.copytree(winner / "scenes" / "000000", Path(scene_dir).parent / "000000")  # the other run's
        return write_annotations(scene_dir, *args)

    monkeypatch.setattr(scene_job, "write_annotations", finish_and_lose)
    summary = make(tmp_path / "data", 1)
    assert summary["rendered"] == 0 and summary["skipped"] == 1 and summary["views"] == 0
    assert (tmp_path / "data" / "scenes" / "000000" / "scene.json").read_bytes() == (
        winner / "scenes" / "000000" / "scene.json"
    ).read_bytes()
    assert not list((tmp_path / "data" / "scenes").glob(".tmp-*"))


# ---------------------------------------------------------------- what a new user hits


def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "results.csv").write_text("a,b\n")
    with pytest.raises(
        ClevrRemvError,
        match="holds files that `clevr-remv generate` did not write "
        "\\(notes.txt, results.csv\\); choose a new or empty folder",
    ):
        make(out, 1)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.csv"]


def test_a_dataset_folder_and_an_empty_folder_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    assert make(tmp_path / "empty", 1)["rendered"] == 1
    (tmp_path / "empty" / "README.md").write_text("my dataset")  # beside a dataset: still a dataset
    assert make(tmp_path / "empty", 2)["rendered"] == 1


def test_the_default_min_pixels_follows_the_view_size():
    """At 96x64 the old default of 200 pixels could not be met (100 probe renders, then an error)."""
    assert default_min_pixels(480, 320) == 200
    assert default_min_pixels(240, 160) == 50
    assert default_min_pixels(96, 64) == 8
    assert default_min_pixels(48, 32) == 2
    assert GenerateConfig(width=96, height=64).to_dict()["min_pixels"] == 8


def test_the_summary_of_one_scene_is_in_the_singular(tmp_path, blender):
    """It read "1 scenes rendered (1 views)"."""
    flags = ["--scenes", "1", "--grid", "1", "--width", "48", "--height", "32", "--min-pixels", "4"]
    result = CliRunner().invoke(main, ["generate", "--out", str(tmp_path / "data"), *flags, "--blender", str(blender)])
    assert result.exit_code == 0, result.output
    assert "1 scene rendered (1 view), 0 already complete;" in result.output and ": 1 scene, " in result.output
    assert [plural(1, "entry", "entries"), plural(0, "scene"), plural(2, "view")] == ["1 entry", "0 scenes", "2 views"]


def test_a_small_view_warns_why(tmp_path):
    """32x24 generated silently, with referents of a pixel or two and a clean `validate`."""
    out = tmp_path / "data"
    write_synthetic_dataset(out, scenes=1, grid=3, width=32, height=24)
    flags = ["--scenes", "1", "--grid", "3", "--width", "32", "--height", "24", "--samples", "1", "--min-pixels", "0"]
    result = CliRunner().invoke(main, ["generate", "--out", str(out), *flags])
    assert result.exit_code == 0, result.output
    assert "Warning: views of 32x24 are small: CLEVR's smallest object covers about 4 pixels" in result.output
    assert "use 96x64 or more" in result.output
    assert small_view_warning(96, 64) is None and small_view_warning(480, 320) is None


def test_a_small_example_runs_as_written(tmp_path):
    summary = make(tmp_path / "data", 1, config=config(width=96, height=64, min_pixels=None))
    assert summary["rendered"] == 1
    assert DatasetStore(tmp_path / "data").info()["config"]["min_pixels"] == 8


def test_a_dataset_made_with_another_min_pixels_resumes_without_the_flag(tmp_path):
    """Without --min-pixels a resumed dataset keeps its own value (e.g. the old default of 200 at a
    size whose new default is smaller)."""
    make(tmp_path / "data", 1, config=config(width=96, height=64, min_pixels=4))
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--out",
            str(tmp_path / "data"),
            "--scenes",
            "1",
            "--grid",
            "3",
            "--width",
            "96",
            "--height",
            "64",
            "--samples",
            "1",
        ],
    )
    assert result.exit_code == 0 and "1 already complete" in result.output, result.output
    assert DatasetStore(tmp_path / "data").info()["config"]["min_pixels"] == 4


def test_resuming_a_finished_dataset_prints_no_nan(tmp_path):
    out = tmp_path / "data"
    write_synthetic_dataset(out, scenes=1, grid=3, width=48, height=32)
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--out",
            str(out),
            "--scenes",
            "1",
            "--grid",
            "3",
            "--width",
            "48",
            "--height",
            "32",
            "--samples",
            "1",
            "--min-pixels",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "0 scenes rendered (0 views), 1 already complete" in result.output and "nan" not in result.output
    assert json.loads((out / "dataset.json").read_text())["counts"]["scenes"] == 1
