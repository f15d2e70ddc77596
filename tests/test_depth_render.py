"""Depth from a tiny real render (--passes depth, 3x3 views, 192x128, 1 sample) ties the rig's
geometry together: warping masks with depth, and disparity against the masks' motion."""

import importlib.util

import numpy as np
import pytest

from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.pipeline import generate
from clevr_remv.generate.properties import load_properties
from clevr_remv.generate.render import worker_command
from clevr_remv.geometry import disparity, project, unproject

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the render extra (bpy)")

WIDTH, HEIGHT = 192, 128
CORNERS = [(1, 1), (3, 1), (1, 3), (3, 3)]
NEIGHBOURS = [(1, 2), (3, 2), (2, 1), (2, 3)]


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """rig -> DatasetStore of scene 0 rendered with the depth pass (one render per rig)."""
    stores = {}
    for rig in ("parallel", "convergent"):
        root = tmp_path_factory.mktemp(rig)
        config = GenerateConfig(
            grid=3,
            width=WIDTH,
            height=HEIGHT,
            samples=1,
            denoise=False,
            baseline=0.15,
            rig=rig,
            min_pixels=20,
            passes=("depth",),
            properties=load_properties(),
        )
        generate(root, 1, config, command=worker_command(), progress=False)
        stores[rig] = DatasetStore(root)
    return stores


def _views(scene):
    return {(view["u"], view["v"]): view for view in scene["views"]}


@pytest.mark.parametrize("rig", ["parallel", "convergent"])
def test_depth_warps_the_centre_mask_onto_each_corner(renders, rig):
    store = renders[rig]
    views = _views(store.load_scene(0))
    centre_ids, centre_depth = store.read_index(0, 2, 2), store.read_depth(0, 2, 2)
    ys, xs = np.nonzero(centre_ids > 0)
    points = unproject(xs + 0.5, ys + 0.5, centre_depth[ys, xs], views[2, 2])
    same = visible = 0
    for u, v in CORNERS:
        pixels = project(points, views[u, v])
        x, y = np.floor(pixels[:, 0]).astype(int), np.floor(pixels[:, 1]).astype(int)
        inside = np.flatnonzero((x >= 0) & (x < WIDTH) & (y >= 0) & (y < HEIGHT))
        corner_depth = store.read_depth(0, u, v)[y[inside], x[inside]]
        shown = inside[np.abs(corner_depth - pixels[inside, 2]) < 0.02 * pixels[inside, 2]]
        assert len(shown) > 0.5 * len(inside)  # a wrong warp cannot pass by hiding every pixel
        same += np.count_nonzero(store.read_index(0, u, v)[y[shown], x[shown]] == centre_ids[ys[shown], xs[shown]])
        visible += len(shown)
    assert same / visible >= 0.99


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _touches_border(mask):
    return mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()


@pytest.mark.parametrize("rig", ["parallel", "convergent"])
def test_mask_centroids_move_by_the_disparity(renders, rig):
    store = renders[rig]
    scene = store.load_scene(0)
    centre_depth = store.read_depth(0, 2, 2)
    checked = 0
    for k, obj in enumerate(scene["objects"], start=1):
        masks = {uv: store.read_index(0, *uv) == k for uv in [(2, 2)] + NEIGHBOURS}
        if obj["views"][4]["occlusion"] > 0 or any(_touches_border(mask) or mask.sum() < 20 for mask in masks.values()):
            continue
        x, y = _centroid(masks[2, 2])
        d = float(disparity(centre_depth[int(y), int(x)], scene, (2, 2)))
        for u, v in NEIGHBOURS:  # a point at (x, y) in the centre is at (x + (uc-u) d, y + (vc-v) d)
            expected = np.array([x + (2 - u) * d, y + (2 - v) * d])
            assert _centroid(masks[u, v]) == pytest.approx(expected, abs=0.5)
        checked += 1
    assert checked >= 2


def test_the_render_validates_and_stores_its_depth_scale(renders):
    store = renders["convergent"]
    assert validate_dataset(store.root) == []
    assert store.passes == ("depth",) and store.info()["depth_scale"] == pytest.approx(0.0008)
    depth = store.read_depth(0, 1, 1)
    assert depth.dtype == np.float32 and depth.shape == (HEIGHT, WIDTH)
    # every object's visible surface lies within its radius in front of its centre
    view = _views(store.load_scene(0))[1, 1]
    ids = store.read_index(0, 1, 1)
    for k, obj in enumerate(store.load_scene(0)["objects"], start=1):
        if (ids == k).any():
            centre_depth = project([obj["3d_coords"]], view)[0, 2]
            nearest = depth[ids == k].min()
            assert centre_depth - 1.5 * obj["radius"] < nearest < centre_depth
