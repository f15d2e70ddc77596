"""The render worker's read-out on tiny real renders (2 views, 48x32): the same pixels, masks and
depth as Blender's own PNG writer and the old write-with-the-render route, and repeatable runs."""

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import RenderWorker, worker_command, worker_script
from clevr_remv.generate.scene import scene_spec

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the render extra (bpy)")

# Renders one view twice in one Blender session: the old way (the PNG written by the render call)
# and the worker's way (render, then the BMP read-out and the worker's own PNG encoder).
OLD_AND_NEW = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import render_scene as rs
    spec, properties, out = json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), sys.argv[4]
    scene, camera, pass_exr = rs.build_scene(spec, properties, "cpu", out, depth=True)
    view = spec["views"][0]
    rs.place_camera(camera, view)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = out + "/old.png"
    rs.bpy.ops.render.render(write_still=True)
    old_index, old_depth = rs.read_passes(pass_exr)
    scene.render.image_settings.file_format = "BMP"
    with rs.PhaseClock() as clock:
        phases = clock.render(scene, camera, view)
    rgb = rs.read_rgb(scene, out + "/new.bmp")
    open(out + "/new.png", "wb").write(rs.encode_png(rgb))
    index, depth = rs.read_passes(pass_exr)
    np.savez(out + "/arrays.npz", rgb=rgb, index=index, depth=depth, old_index=old_index, old_depth=old_depth)
    print(json.dumps(phases))
""")


def tiny_spec(denoise: bool) -> dict:
    config = GenerateConfig(grid=3, width=48, height=32, samples=2, denoise=denoise, properties=load_properties())
    spec = scene_spec(config, 1)
    return dict(spec, views=spec["views"][3:5])


def test_the_read_out_matches_blenders_png_and_the_old_pass_route(tmp_path):
    spec = tiny_spec(denoise=False)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "properties.json").write_text(json.dumps(load_properties()))
    (tmp_path / "script.py").write_text(OLD_AND_NEW)
    done = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "script.py"),
            str(Path(worker_script()).parent),
            str(tmp_path / "spec.json"),
            str(tmp_path / "properties.json"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(phases) == {"sync", "trace", "composite"} and all(seconds >= 0 for seconds in phases.values())
    arrays = np.load(tmp_path / "arrays.npz")
    old_rgb = np.asarray(Image.open(tmp_path / "old.png").convert("RGB"))
    assert arrays["rgb"].shape == (32, 48, 3) and arrays["rgb"].std() > 0
    assert np.array_equal(arrays["rgb"], old_rgb)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "new.png")), old_rgb)
    assert arrays["index"].max() >= 1 and np.array_equal(arrays["index"], arrays["old_index"])
    assert np.array_equal(arrays["depth"], arrays["old_depth"])


def render_twice(spec: dict, folder) -> list:
    """Render ``spec`` in two fresh worker processes; return each run's {file name: bytes}."""
    runs = []
    for run in range(2):
        worker = RenderWorker(worker_command())
        try:
            out = folder / str(run)
            events = []
            done = worker.request(
                {"op": "render", "spec": spec, "properties": load_properties(), "out": str(out), "passes": ["depth"]},
                events.append,
            )
        finally:
            worker.stop()
        assert [event["name"] for event in events] == [view["name"] for view in spec["views"]]
        assert all(set(event["phases"]) >= {"sync", "trace", "composite", "rgb_out"} for event in events)
        assert done["write_seconds"] > 0
        runs.append({str(path.relative_to(out)): path for path in sorted(out.rglob("*")) if path.is_file()})
    assert runs[0].keys() == runs[1].keys() and len(runs[0]) == 3 * len(spec["views"])
    return runs


def test_without_the_denoiser_two_runs_write_the_same_bytes(tmp_path):
    first, second = render_twice(tiny_spec(denoise=False), tmp_path)
    assert all(first[name].read_bytes() == second[name].read_bytes() for name in first)


def test_with_the_denoiser_two_runs_differ_by_at_most_one_grey_level_in_few_pixels(tmp_path):
    first, second = render_twice(tiny_spec(denoise=True), tmp_path)
    for name in first:
        if name.startswith("rgb/"):
            a, b = (np.asarray(Image.open(runs[name]), np.int16) for runs in (first, second))
            assert np.abs(a - b).max() <= 1
            assert np.count_nonzero((a != b).any(axis=2)) <= 0.01 * a.shape[0] * a.shape[1]
        else:  # masks and depth never depend on the denoiser
            assert np.array_equal(np.load(first[name]), np.load(second[name]))
