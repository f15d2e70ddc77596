"""Faults of the real render worker (tiny bpy renders, 48x32): a pass file that a view's render did
not write, stopping mid-scene, and the temporary folder left as it was found."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import RenderWorker, WorkerFailure, worker_command, worker_script
from clevr_remv.generate.scene import scene_spec

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the render extra (bpy)")

TINY = GenerateConfig(grid=3, width=48, height=32, samples=1, denoise=False, min_pixels=4, properties=load_properties())

# Renders two views with the worker's own render(); before the second, the compositor is pointed at
# another folder, as if it failed to write its pass file there (a full disk).
LOST_PASS_FILE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import render_scene as rs
    job = json.load(open(sys.argv[2]))
    real = rs.PhaseClock.render
    def render(self, scene, camera, view):
        if view["name"] != job["spec"]["views"][0]["name"]:
            for node in scene.compositing_node_group.nodes:
                if node.bl_idname == "CompositorNodeOutputFile":
                    node.directory = sys.argv[4]
        return real(self, scene, camera, view)
    rs.PhaseClock.render = render
    try:
        rs.render(job, "cpu", sys.argv[3])
    except RuntimeError as error:
        print("ERROR", error)
""")


def test_a_view_whose_render_wrote_no_pass_file_fails_instead_of_using_the_last_views(tmp_path):
    spec = scene_spec(TINY, 1)
    spec = dict(spec, views=spec["views"][3:5])
    for folder in ("work", "elsewhere", "out"):
        (tmp_path / folder).mkdir()
    job = {"op": "render", "spec": spec, "properties": load_properties(), "out": str(tmp_path / "out"), "passes": []}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "script.py").write_text(LOST_PASS_FILE)
    done = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "script.py"),
            str(Path(worker_script()).parent),
            str(tmp_path / "job.json"),
            str(tmp_path / "work"),
            str(tmp_path / "elsewhere"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    second = spec["views"][1]["name"]
    assert f"ERROR view {second}: Blender wrote no passes.exr" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "out" / "index" / f"{second}.npy").exists()


def test_sigterm_stops_the_worker_after_its_current_view_and_its_files_go(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    worker = RenderWorker(worker_command())
    views = []

    def on_view(event):
        views.append(event["name"])
        if len(views) == 1:
            os.kill(worker.process.pid, signal.SIGTERM)

    job = {
        "op": "render",
        "spec": scene_spec(TINY, 0),
        "properties": load_properties(),
        "out": str(tmp_path / "out"),
        "passes": [],
    }
    with pytest.raises(WorkerFailure, match=r"exited \(code 0\)"):
        worker.request(job, on_view)
    worker.stop()
    assert len(views) <= 2  # of 9: it stopped after the view it was rendering
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_run_leaves_the_temporary_folder_as_it_found_it(tmp_path, monkeypatch):
    """Closed workers were SIGKILLed: their pass files and Blender's temporary folder stayed in $TMPDIR."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    generate(tmp_path / "data", 1, TINY, workers=1, command=worker_command(), progress=False)
    assert list(scratch.iterdir()) == []
