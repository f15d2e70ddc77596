"""`clevr-remv export --format hci-lf`: the 4D Light Field Benchmark layout, its parameters.cfg,
PFM depth and disparity, and refusals."""

import configparser
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.generate.synthetic import write_synthetic_dataset

KEYS = {
    "intrinsics": ["image_resolution_x_px", "image_resolution_y_px", "focal_length_mm", "sensor_size_mm", "fstop"],
    "extrinsics": [
        "num_cams_x",
        "num_cams_y",
        "baseline_mm",
        "focus_distance_m",
        "center_cam_x_m",
        "center_cam_y_m",
        "center_cam_z_m",
        "center_cam_rx_rad",
        "center_cam_ry_rad",
        "center_cam_rz_rad",
    ],
    "meta": [
        "disp_min",
        "disp_max",
        "frustum_disp_min",
        "frustum_disp_max",
        "depth_map_scale",
        "scene",
        "category",
        "date",
        "version",
        "authors",
        "contact",
    ],
}


def _export(data, out, *flags):
    return CliRunner().invoke(main, ["export", "--data", str(data), "--out", str(out), "--format", "hci-lf", *flags])


def read_pfm(path):
    """A greyscale PFM as (header lines, float32 image top row first), parsed by the format's rules."""
    raw = path.read_bytes()
    lines = raw.split(b"\n", 3)
    kind, size, scale = (line.decode("ascii") for line in lines[:3])
    width, height = map(int, size.split())
    dtype = "<f4" if float(scale) < 0 else ">f4"
    data = np.frombuffer(lines[3], dtype).reshape(height, width)
    return (kind, width, height, float(scale)), data[::-1]


def _rotation(rx, ry, rz):
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return z @ y @ x


@pytest.fixture(scope="module")
def exported(tiny_depth_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("hci") / "out"
    result = _export(tiny_depth_dataset, out)
    assert result.exit_code == 0, result.output
    return DatasetStore(tiny_depth_dataset), out


def test_every_view_mask_and_expression_file_is_in_place(exported):
    store, out = exported
    for index in store.scene_ids():
        folder = out / "all" / f"clevr_remv_{index:06d}"
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted(
            [f"input_Cam{k:03d}.png" for k in range(9)]
            + ["gt_depth_lowres.pfm", "gt_disp_lowres.pfm", "masks", "parameters.cfg", "refexps.json"]
        )
        for u, v in store.views():
            k = (v - 1) * 3 + (u - 1)
            assert (folder / f"input_Cam{k:03d}.png").read_bytes() == store.rgb_path(index, u, v).read_bytes()
            assert (folder / "masks" / f"Cam{k:03d}.png").read_bytes() == store.index_path(index, u, v).read_bytes()
        assert json.loads((folder / "refexps.json").read_text()) == store.load_refexps(index)


def test_parameters_cfg_has_every_key_and_the_rig(exported):
    store, out = exported
    scene = store.load_scene(1)
    parser = configparser.ConfigParser()
    parser.read(out / "all" / "clevr_remv_000001" / "parameters.cfg")
    assert {section: list(parser[section]) for section in KEYS} == KEYS
    intrinsics, extrinsics, meta = (parser[section] for section in KEYS)
    assert (intrinsics.getint("image_resolution_x_px"), intrinsics.getint("image_resolution_y_px")) == (48, 32)
    assert intrinsics.getfloat("focal_length_mm") == scene["camera"]["lens"]
    assert extrinsics.getint("num_cams_x") == extrinsics.getint("num_cams_y") == 3
    assert extrinsics.getfloat("baseline_mm") == pytest.approx(scene["rig"]["baseline"] * 1000)
    assert extrinsics.getfloat("focus_distance_m") == pytest.approx(scene["rig"]["focus_distance"])
    centre = scene["views"][4]
    position = [extrinsics.getfloat(f"center_cam_{axis}_m") for axis in "xyz"]
    assert position == pytest.approx(centre["position"])
    angles = [extrinsics.getfloat(f"center_cam_r{axis}_rad") for axis in "xyz"]
    camera_to_world = np.asarray(centre["world_to_camera"])[:3, :3].T
    assert _rotation(*angles) == pytest.approx(camera_to_world, abs=1e-9)
    assert (meta["scene"], meta["category"]) == ("clevr_remv_000001", "all")
    assert meta.getfloat("disp_min") < meta.getfloat("disp_max")
    assert meta.getfloat("frustum_disp_min") <= meta.getfloat("disp_min")


def test_pfm_depth_and_disparity_follow_the_benchmark_formula(exported):
    store, out = exported
    folder = out / "all" / "clevr_remv_000000"
    parser = configparser.ConfigParser()
    parser.read(folder / "parameters.cfg")
    header, depth = read_pfm(folder / "gt_depth_lowres.pfm")
    assert header == ("Pf", 48, 32, -1.0)
    stored = store.read_depth(0, 2, 2)
    # Bottom row first in the file, so reading it back top row first gives the stored map
    # (0 = no value in the PNG becomes infinitely far).
    assert np.array_equal(depth, np.where(stored > 0, stored, np.inf))
    assert np.isfinite(depth).any() and np.isinf(depth).any()
    _, disp = read_pfm(folder / "gt_disp_lowres.pfm")
    intrinsics, extrinsics = parser["intrinsics"], parser["extrinsics"]
    f_px = intrinsics.getfloat("focal_length_mm") / intrinsics.getfloat("sensor_size_mm") * 48
    baseline = extrinsics.getfloat("baseline_mm") / 1000
    expected = baseline * f_px * (1 / depth - 1 / extrinsics.getfloat("focus_distance_m"))
    assert disp == pytest.approx(expected, rel=1e-5)
    assert (disp[np.isfinite(depth)] > 0).any()  # objects in front of the focus plane
    meta = parser["meta"]
    assert (meta.getfloat("disp_min"), meta.getfloat("disp_max")) == pytest.approx((disp.min(), disp.max()))


def test_parallel_rig_focuses_at_infinity(tmp_path):
    root = tmp_path / "parallel"
    write_synthetic_dataset(root, scenes=1, passes=("depth",))
    assert _export(root, tmp_path / "out").exit_code == 0
    folder = tmp_path / "out" / "all" / "clevr_remv_000000"
    parser = configparser.ConfigParser()
    parser.read(folder / "parameters.cfg")
    assert parser["extrinsics"].getfloat("focus_distance_m") == np.inf
    (_, depth), (_, disp) = read_pfm(folder / "gt_depth_lowres.pfm"), read_pfm(folder / "gt_disp_lowres.pfm")
    f_px = 35.0 / 32.0 * 48
    finite = np.isfinite(depth)
    assert disp[finite] == pytest.approx(100 / 1000 * f_px / depth[finite], rel=1e-5)
    assert np.all(disp[~finite] == 0)


def test_a_dataset_without_depth_is_refused_naming_the_flag(tiny_dataset, tmp_path):
    result = _export(tiny_dataset, tmp_path / "out")
    assert result.exit_code == 2
    assert "--format hci-lf" in result.output and "--passes depth" in result.output
    assert not (tmp_path / "out").exists()


def test_views_flag_is_refused(tiny_depth_dataset, tmp_path):
    result = _export(tiny_depth_dataset, tmp_path / "out", "--views", "corners")
    assert result.exit_code == 2 and "--views" in result.output
    assert not (tmp_path / "out").exists()


def test_a_missing_depth_map_stops_the_export_and_names_it(tiny_depth_dataset, tmp_path):
    root = shutil.copytree(tiny_depth_dataset, tmp_path / "dataset")
    missing = DatasetStore(root).depth_path(1, 3, 3)
    missing.unlink()
    result = _export(root, tmp_path / "out")
    assert result.exit_code == 2 and str(missing) in result.output
    assert not (tmp_path / "out").exists()
