import numpy as np
import pytest

from clevr_remv import geometry
from clevr_remv.generate import layout, rig
from clevr_remv.generate.properties import load_properties

CAMERA = layout.sample_layout(1, 2, 0, load_properties())["camera"]
WIDTH, HEIGHT, BASELINE = 480, 320, 0.2


def views_by_uv(kind="parallel", grid=9):
    views, info = rig.build_views(CAMERA, grid, BASELINE, kind, WIDTH, HEIGHT)
    return {(v["u"], v["v"]): v for v in views}, info


def test_views_are_named_and_ordered_v_major():
    views, info = rig.build_views(CAMERA, 3, BASELINE, "parallel", WIDTH, HEIGHT)
    assert [v["name"] for v in views[:4]] == ["u1_v1", "u2_v1", "u3_v1", "u1_v2"]
    assert info["center"] == [2, 2]


def test_centre_camera_is_the_clevr_camera():
    views, _ = views_by_uv()
    centre = views[(5, 5)]
    assert np.allclose(centre["position"], CAMERA["location"])
    # The look-at point projects to the image centre.
    x, y, depth = geometry.project([CAMERA["look_at"]], centre)[0]
    assert (x, y) == pytest.approx((WIDTH / 2, HEIGHT / 2))
    assert depth == pytest.approx(np.linalg.norm(CAMERA["location"]))
    assert centre["intrinsics"]["fx"] == pytest.approx(35 / 32 * WIDTH)


def test_cameras_lie_on_the_image_plane_baseline_apart():
    views, _ = views_by_uv()
    axis = -np.asarray(views[(5, 5)]["world_to_camera"])[2, :3]  # viewing direction
    for (u, v), view in views.items():
        offset = np.subtract(view["position"], CAMERA["location"])
        assert abs(offset @ axis) < 1e-9
        assert np.linalg.norm(offset) == pytest.approx(BASELINE * np.hypot(u - 5, v - 5))
        rotation = np.asarray(view["world_to_camera"])[:3, :3]
        assert np.allclose(rotation, np.asarray(views[(5, 5)]["world_to_camera"])[:3, :3])


def test_disparity_grows_linearly_with_u_and_v():
    views, _ = views_by_uv()
    point = [0.7, -1.2, 0.35]
    x_c, y_c, depth = geometry.project([point], views[(5, 5)])[0]
    step = views[(5, 5)]["intrinsics"]["fx"] * BASELINE / depth
    for (u, v), view in views.items():
        x, y, _ = geometry.project([point], view)[0]
        # LF(x, y, u, v) = LF(x + (uc - u) d, y + (vc - v) d, uc, vc)
        assert x == pytest.approx(x_c + (5 - u) * step, abs=1e-6)
        assert y == pytest.approx(y_c + (5 - v) * step, abs=1e-6)


def test_intrinsics_match_the_projection():
    views, _ = views_by_uv("convergent")
    point = np.array([1.0, 2.0, 0.5, 1.0])
    for view in (views[(1, 1)], views[(9, 3)]):
        k = view["intrinsics"]
        camera = np.asarray(view["world_to_camera"]) @ point
        # OpenCV-style K on the camera frame flipped to y down, z forward.
        x = k["fx"] * camera[0] / -camera[2] + k["cx"]
        y = k["fy"] * -camera[1] / -camera[2] + k["cy"]
        assert geometry.project([point[:3]], view)[0, :2] == pytest.approx([x, y])


def test_convergent_rig_has_zero_disparity_on_the_focus_plane():
    views, info = views_by_uv("convergent")
    focus_point = CAMERA["look_at"]
    near_point = np.add(CAMERA["location"], np.subtract(CAMERA["look_at"], CAMERA["location"]) * 0.5)
    centre = geometry.project([focus_point, near_point], views[(5, 5)])
    corner = geometry.project([focus_point, near_point], views[(1, 1)])
    assert corner[0, :2] == pytest.approx(centre[0, :2], abs=1e-6)
    assert abs(corner[1, 0] - centre[1, 0]) > 10
    assert info["focus_distance"] == pytest.approx(np.linalg.norm(CAMERA["location"]))


def test_lens_sets_every_camera_and_old_configs_read_as_clevrs_35mm():
    from clevr_remv.generate.config import GenerateConfig
    from clevr_remv.generate.scene import scene_spec

    properties = load_properties()
    wide = scene_spec(GenerateConfig(grid=3, width=480, height=320, lens=25.0, properties=properties), 4)
    default = scene_spec(GenerateConfig(grid=3, width=480, height=320, properties=properties), 4)
    assert wide["camera"]["lens"] == 25.0 and default["camera"]["lens"] == 35.0
    # f_px = lens / sensor (32 mm) * the longer side, in every view.
    assert {view["intrinsics"]["fx"] for view in wide["views"]} == {25.0 / 32.0 * 480}
    assert wide["objects"] == default["objects"]  # the lens changes the cameras, not the layout
    stored = GenerateConfig().to_dict()
    del stored["lens"]
    assert GenerateConfig.from_dict(stored).lens == 35.0
    with pytest.raises(Exception, match="--lens"):
        GenerateConfig(lens=0)
