"""End-to-end generate runs with tiny renders (3x3 views, 48x32 pixels, 2 samples)."""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from clevr_remv.dataset.rle import visible_box
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import worker_command

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the render extra (bpy)")

TINY = ["--grid", "3", "--width", "48", "--height", "32", "--samples", "2", "--min-pixels", "4"]


def tiny_config(**changes):
    options = dict(grid=3, width=48, height=32, samples=2, min_pixels=4, properties=load_properties())
    return GenerateConfig(**{**options, **changes})


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "clevr_remv", "generate", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Scenes 0-2 generated in one uninterrupted single-worker run."""
    root = tmp_path_factory.mktemp("reference")
    generate(root, 3, tiny_config(), command=worker_command(), progress=False)
    return DatasetStore(root)


def scene_files(store, index):
    folder = store.scene_dir(index)
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_masks_cover_every_visible_object_and_match_the_stored_visibility(reference):
    assert reference.scene_ids() == [0, 1, 2]
    for index in reference.scene_ids():
        scene = reference.load_scene(index)
        assert len(scene_files(reference, index)) == 2 + 2 * 9
        for i, view in enumerate(scene["views"]):
            assert reference.read_rgb(index, view["u"], view["v"]).shape == (32, 48, 3)
            mask = reference.read_index(index, view["u"], view["v"])
            assert mask.shape == (32, 48) and mask.max() <= len(scene["objects"])
            for k, obj in enumerate(scene["objects"], start=1):
                entry = obj["views"][i]
                assert entry["pixels"] == int((mask == k).sum())
                assert entry["bbox"] == visible_box(mask == k)
        centre = scene["views"].index(next(v for v in scene["views"] if v["name"] == "u2_v2"))
        assert all(obj["views"][centre]["pixels"] >= 4 for obj in scene["objects"])


def assert_projection_matches_render(store):
    """Blender's cameras and the stored rig agree: a well-visible object's projected centre
    lies inside the box of its pixels in the index pass."""
    checked = 0
    for index in store.scene_ids():
        for obj in store.load_scene(index)["objects"]:
            for entry in obj["views"]:
                if entry["pixels"] >= 20 and entry["occlusion"] == 0:
                    x, y, _ = entry["pixel_coords"]
                    bx, by, bw, bh = entry["bbox"]
                    assert bx - 1 <= x <= bx + bw + 1 and by - 1 <= y <= by + bh + 1
                    checked += 1
    assert checked > 0


def test_parallel_rig_projection_matches_blender(reference):
    assert_projection_matches_render(reference)


def test_convergent_rig_projection_matches_blender(tmp_path):
    config = tiny_config(rig="convergent", baseline=0.6)
    generate(tmp_path, 1, config, start=1, command=worker_command(), progress=False)
    assert_projection_matches_render(DatasetStore(tmp_path))


def test_scenes_do_not_depend_on_start_or_workers(reference, tmp_path):
    generate(tmp_path, 2, tiny_config(), start=1, workers=2, command=worker_command(), progress=False)
    other = DatasetStore(tmp_path)
    assert other.scene_ids() == [1, 2]
    for index in (1, 2):
        assert other.load_scene(index) == reference.load_scene(index)
        assert other.load_refexps(index) == reference.load_refexps(index)
        for view in reference.load_scene(index)["views"]:
            assert np.array_equal(
                other.read_index(index, view["u"], view["v"]), reference.read_index(index, view["u"], view["v"])
            )


def test_the_ray_executor_renders_the_same_scene(reference, tmp_path):
    pytest.importorskip("ray")
    generate(tmp_path, 1, tiny_config(), start=2, command=worker_command(), progress=False, executor="ray", workers=1)
    other = DatasetStore(tmp_path)
    assert scene_files(other, 2).keys() == scene_files(reference, 2).keys()
    for name in ("scene.json", "refexps.json"):
        assert (other.scene_dir(2) / name).read_bytes() == (reference.scene_dir(2) / name).read_bytes()


def test_a_killed_run_resumes_to_the_same_files(reference, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "clevr_remv", "generate", "--out", str(tmp_path), "--scenes", "3", *TINY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (tmp_path / "scenes" / "000000").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    store = DatasetStore(tmp_path)
    for index in store.scene_ids():  # whatever is there is complete
        assert len(scene_files(store, index)) == 2 + 2 * 9
    assert store.scene_ids() != [0, 1, 2]

    result = run_cli("--out", str(tmp_path), "--scenes", "3", *TINY)
    assert result.returncode == 0, result.stderr
    assert not list((tmp_path / "scenes").glob(".tmp-*"))
    for index in (0, 1, 2):
        assert scene_files(store, index).keys() == scene_files(reference, index).keys()
        assert store.load_scene(index) == reference.load_scene(index)
        assert store.load_refexps(index) == reference.load_refexps(index)
    info = store.info()
    assert info["counts"]["scenes"] == 3
    assert info["counts"]["expressions"] == sum(len(store.load_refexps(i)["expressions"]) for i in range(3))

    again = run_cli("--out", str(tmp_path), "--scenes", "3", *TINY)
    assert again.returncode == 0 and "0 scenes rendered" in again.stdout and "3 already complete" in again.stdout


def test_a_different_config_is_refused_and_nothing_changes(reference):
    before = {index: scene_files(reference, index) for index in reference.scene_ids()}
    info = reference.dataset_json_path.read_bytes()
    with pytest.raises(ClevrRemvError, match="different config.*samples: existing 2, requested 3"):
        generate(reference.root, 4, tiny_config(samples=3), command=worker_command(), progress=False)
    result = run_cli("--out", str(reference.root), "--scenes", "4", *TINY[:-2], "--min-pixels", "5")
    assert result.returncode == 2 and "min_pixels" in result.stderr
    assert reference.dataset_json_path.read_bytes() == info
    assert {index: scene_files(reference, index) for index in reference.scene_ids()} == before
