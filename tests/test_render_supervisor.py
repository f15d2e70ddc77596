"""Supervision of render workers, with a stand-in worker script (no Blender needed)."""

import sys
import textwrap

import pytest

from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.render import SupervisedWorker

FAKE_WORKER = textwrap.dedent("""
    import json, os, sys, time
    mode, marker = sys.argv[1], sys.argv[2]
    def emit(**event):
        print("@@clevr-remv " + json.dumps(event), flush=True)
    print("a log line from the renderer", flush=True)
    emit(event="ready")
    for line in sys.stdin:
        first_time = not os.path.exists(marker)
        open(marker, "a").write("x")
        emit(event="view", name="u1_v1", seconds=0.1)
        if mode == "crash" or (mode == "crash_once" and first_time):
            os._exit(3)
        if mode == "hang_once" and first_time:
            time.sleep(60)
        if mode == "error":
            emit(event="error", message="RuntimeError: no OptiX or CUDA device found")
            continue
        emit(event="done")
""")


@pytest.fixture
def make_worker(tmp_path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    workers = []

    def make(mode, **options):
        worker = SupervisedWorker([sys.executable, str(script), mode, str(tmp_path / "marker")], **options)
        workers.append(worker)
        return worker

    yield make, tmp_path / "marker"
    for worker in workers:
        worker.close()


def test_a_crashed_worker_is_restarted_and_the_job_retried(make_worker):
    make, marker = make_worker
    worker = make("crash_once")
    views, retries = [], []
    result = worker.run({"op": "render"}, "scene 4", views.append, lambda: retries.append(1))
    assert result == {"event": "done"}
    assert len(views) == 2 and retries == [1]
    assert marker.read_text() == "xx"


def test_a_hung_worker_is_killed_after_the_timeout(make_worker):
    make, marker = make_worker
    worker = make("hang_once", view_timeout=1.0)
    assert worker.run({"op": "render"}, "scene 4")["event"] == "done"
    assert marker.read_text() == "xx"


def test_repeated_crashes_give_an_error_naming_the_scene(make_worker):
    make, marker = make_worker
    worker = make("crash", retries=2)
    with pytest.raises(ClevrRemvError, match=r"scene 7: rendering failed 3 times.*exited \(code 3\)"):
        worker.run({"op": "render"}, "scene 7")
    assert marker.read_text() == "xxx"


def test_an_error_in_the_worker_is_reported_not_retried(make_worker):
    make, marker = make_worker
    worker = make("error")
    with pytest.raises(ClevrRemvError, match="no OptiX or CUDA"):
        worker.run({"op": "render"}, "scene 1")
    assert marker.read_text() == "x"
