"""Export to the layout of the 4D Light Field Benchmark (Honauer et al., ACCV 2016; "HCI"), which
most light-field depth and view-synthesis code loads: one folder per scene.

::

    <out>/<split>/clevr_remv_<NNNNNN>/input_Cam000.png ...   every view, camera k = (v-1)*grid + (u-1)
                                      parameters.cfg          intrinsics, extrinsics, meta
                                      gt_depth_lowres.pfm     centre view z-depth (metres), float32
                                      gt_disp_lowres.pfm      centre view disparity (pixels), float32
                                      masks/Cam000.png ...    our index masks (extras the benchmark ignores)
                                      refexps.json            our referring expressions (extra)

One world unit is taken as one metre. The benchmark's disparity is
d = baseline * f_px * (1 / Z - 1 / Z_focus), f_px = focal_length_mm / sensor_size_mm * max(width, height),
positive in front of the focus plane: `clevr_remv.geometry.disparity`. The parallel rig focuses
at infinity and writes ``focus_distance_m = inf``. Pixels without depth (sky) are infinitely far:
depth inf, disparity of a point at infinity. The renders are pinhole images: ``fstop = inf``.
"""

import configparser
import datetime

import numpy as np
from tqdm import tqdm

from clevr_remv.dataset.export.common import place_image, require_files
from clevr_remv.dataset.pfm import write_pfm
from clevr_remv.dataset.store import DatasetStore, scene_folder_name
from clevr_remv.geometry import disparity

DEPTH_FILE = "gt_depth_lowres.pfm"
DISPARITY_FILE = "gt_disp_lowres.pfm"
AUTHORS = "clevr-remv (CLEVR-REMV generator)"


def scene_name(index: int) -> str:
    """The benchmark's name (folder) of scene ``index``, e.g. ``clevr_remv_000042``."""
    return f"clevr_remv_{scene_folder_name(index)}"


def camera_index(u: int, v: int, grid: int) -> int:
    """The benchmark's camera number of view (u, v): row by row from the top-left camera."""
    return (v - 1) * grid + (u - 1)


def blender_euler(rotation: np.ndarray) -> tuple:
    """Blender's XYZ Euler angles (radians) of a camera-to-world rotation, R = Rz @ Ry @ Rx."""
    rx = np.arctan2(rotation[2, 1], rotation[2, 2])
    ry = -np.arcsin(np.clip(rotation[2, 0], -1.0, 1.0))
    rz = np.arctan2(rotation[1, 0], rotation[0, 0])
    return float(rx), float(ry), float(rz)


def export_hci_lf(store: DatasetStore, out, split_scenes: dict, link: bool = False, progress: bool = True) -> dict:
    """Write every view of the scenes in the 4D Light Field Benchmark's layout, with depth and disparity.

    Args:
        store: the dataset, made with ``generate --passes depth``.
        out: the folder to write (new or empty; `clevr-remv export` stages it and renames it).
        split_scenes: split name -> scene indices, as
            [`select_scenes`][clevr_remv.dataset.export.common.select_scenes] gives them.
        link: hard-link images instead of copying them (copies across file systems).
        progress: show a progress bar.

    Returns:
        Counts of scenes and images.
    """
    totals = {"scenes": 0, "images": 0}
    for split, scene_ids in split_scenes.items():
        for index in tqdm(scene_ids, desc=f"export hci-lf {split}", unit="scene", disable=not progress):
            folder = out / split / scene_name(index)
            totals["images"] += _export_scene(store, index, folder, split, link)
            totals["scenes"] += 1
    return totals


def _export_scene(store: DatasetStore, index: int, folder, split: str, link: bool) -> int:
    grid, (uc, vc) = store.grid, store.center
    views = store.views()
    require_files(
        store,
        [
            path
            for u, v in views
            for path in (store.rgb_path(index, u, v), store.index_path(index, u, v), store.depth_path(index, u, v))
        ]
        + [store.refexps_path(index)],
    )
    scene = store.load_scene(index, check=False)
    (folder / "masks").mkdir(parents=True)
    for u, v in views:
        number = camera_index(u, v, grid)
        place_image(store.rgb_path(index, u, v), folder / f"input_Cam{number:03d}.png", link)
        place_image(store.index_path(index, u, v), folder / "masks" / f"Cam{number:03d}.png", link)
    place_image(store.refexps_path(index), folder / "refexps.json", link=False)
    depths = {(u, v): depth_or_infinity(store.read_depth(index, u, v)) for u, v in views}
    centre_disparity = disparity(depths[uc, vc], scene, (uc, vc))
    write_pfm(folder / DEPTH_FILE, depths[uc, vc])
    write_pfm(folder / DISPARITY_FILE, centre_disparity)
    nearest = min(float(depth.min()) for depth in depths.values())
    farthest = max(float(depth.max()) for depth in depths.values())
    frustum = disparity([farthest, nearest], scene, (uc, vc))
    with open(folder / "parameters.cfg", "w") as stream:
        _parameters(store, scene, index, split, centre_disparity, frustum).write(stream)
    return len(views)


def depth_or_infinity(depth: np.ndarray) -> np.ndarray:
    """A stored depth map (`DatasetStore.read_depth`) with its no-value pixels (0: sky) set
    to infinity: the depth the benchmark's files hold."""
    return np.where(depth > 0, depth, np.float32(np.inf)).astype(np.float32)


def _parameters(
    store: DatasetStore, scene: dict, index: int, split: str, centre_disparity: np.ndarray, frustum: np.ndarray
) -> configparser.ConfigParser:
    """The benchmark's parameters.cfg of one scene (one world unit = one metre)."""
    info = store.info()
    rig, camera = scene["rig"], scene["camera"]
    centre = scene["views"][camera_index(*store.center, store.grid)]
    world_to_camera = np.asarray(centre["world_to_camera"])
    rx, ry, rz = blender_euler(world_to_camera[:3, :3].T)
    x, y, z = centre["position"]
    focus = rig["focus_distance"] if rig["type"] == "convergent" else float("inf")
    parser = configparser.ConfigParser()
    parser["intrinsics"] = {
        "image_resolution_x_px": scene["width"],
        "image_resolution_y_px": scene["height"],
        "focal_length_mm": camera["lens"],
        "sensor_size_mm": camera["sensor_width"],
        "fstop": "inf",
    }
    parser["extrinsics"] = {
        "num_cams_x": rig["grid"],
        "num_cams_y": rig["grid"],
        "baseline_mm": rig["baseline"] * 1000.0,
        "focus_distance_m": focus,
        "center_cam_x_m": x,
        "center_cam_y_m": y,
        "center_cam_z_m": z,
        "center_cam_rx_rad": rx,
        "center_cam_ry_rad": ry,
        "center_cam_rz_rad": rz,
    }
    parser["meta"] = {
        "disp_min": float(np.nanmin(centre_disparity)),
        "disp_max": float(np.nanmax(centre_disparity)),
        "frustum_disp_min": float(frustum[0]),
        "frustum_disp_max": float(frustum[1]),
        "depth_map_scale": 1.0,
        "scene": scene_name(index),
        "category": split,
        "date": datetime.date.today().isoformat(),
        "version": info["generator_version"],
        "authors": AUTHORS,
        "contact": "see the clevr-remv README",
    }
    return parser
