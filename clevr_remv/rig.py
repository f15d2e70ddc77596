"""Light-field camera array geometry: positions, extrinsics and intrinsics of every view.

The grid's cameras share the central camera's orientation and lens and lie on its image plane,
``baseline`` world units apart. View (u, v) is 1-based: u grows to the right, v grows downwards,
so a point's pixel x shifts by -(u - uc) * d and its pixel y by -(v - vc) * d (d = disparity),
matching LF(x, y, u, v) = LF(x + (uc - u) d, y + (vc - v) d, uc, vc).

``parallel`` rigs keep every principal point at the image centre. ``convergent`` rigs shift the
principal point (Blender's lens shift) so that the plane through the look-at point, parallel to
the image plane, has zero disparity.
"""
import numpy as np

from clevr_remv.errors import ClevrRemvError
from clevr_remv.layout import look_at_rotation

RIG_TYPES = ("parallel", "convergent")
VIEW_SETS = ("center", "corners", "all")


def view_name(u: int, v: int) -> str:
    """The file stem of view (u, v), e.g. ``u1_v9``."""
    return f"u{u}_v{v}"


def grid_center(grid: int) -> tuple:
    """The (u, v) of the central view of an odd ``grid``."""
    return ((grid + 1) // 2, (grid + 1) // 2)


def select_views(views, grid: int) -> list:
    """The (u, v) requested by ``views`` ("center", "corners" (the four corner views), "all",
    or a list of (u, v)), checked against the grid, in v-major order without duplicates."""
    if isinstance(views, str):
        presets = {"center": [grid_center(grid)],
                   "corners": [(1, 1), (grid, 1), (1, grid), (grid, grid)],
                   "all": [(u, v) for v in range(1, grid + 1) for u in range(1, grid + 1)]}
        if views not in presets:
            raise ClevrRemvError(f"views (--views): {views!r} is not a view set; use one of "
                                 f"{', '.join(VIEW_SETS)} or a list of (u, v) pairs")
        chosen = presets[views]
    else:
        chosen = []
        for view in views:
            if (len(view) != 2 or not all(isinstance(c, (int, np.integer)) for c in view)
                    or not all(1 <= c <= grid for c in view)):
                raise ClevrRemvError(f"views (--views): {tuple(view)!r} does not exist; u and v are integers "
                                     f"from 1 to {grid} in this {grid}x{grid} dataset")
            chosen.append((int(view[0]), int(view[1])))
        if not chosen:
            raise ClevrRemvError("views (--views): the list is empty; pass at least one (u, v)")
    return sorted(set(chosen), key=lambda uv: (uv[1], uv[0]))


def focal_pixels(lens_mm: float, sensor_mm: float, width: int, height: int) -> float:
    """Focal length in pixels for Blender's AUTO sensor fit (the sensor spans the longer side)."""
    return lens_mm / sensor_mm * max(width, height)


def build_views(camera: dict, grid: int, baseline: float, rig: str, width: int, height: int) -> tuple:
    """Return (views, rig_info): one dict per view (u, v, name, position, world_to_camera,
    intrinsics, lens shift), ordered v-major, and the rig's description for scene.json."""
    location = np.asarray(camera["location"], float)
    rotation = look_at_rotation(location, camera["look_at"])
    right, up = rotation[:, 0], rotation[:, 1]
    focal = focal_pixels(camera["lens"], camera["sensor_width"], width, height)
    focus_distance = float(np.dot(np.asarray(camera["look_at"], float) - location, -rotation[:, 2]))
    uc, vc = grid_center(grid)
    views = []
    for v in range(1, grid + 1):
        for u in range(1, grid + 1):
            position = location + (u - uc) * baseline * right + (vc - v) * baseline * up
            cx, cy = width / 2.0, height / 2.0
            if rig == "convergent":
                cx += (u - uc) * focal * baseline / focus_distance
                cy += (v - vc) * focal * baseline / focus_distance
            world_to_camera = np.eye(4)
            world_to_camera[:3, :3] = rotation.T
            world_to_camera[:3, 3] = -rotation.T @ position
            views.append({
                "u": u, "v": v, "name": view_name(u, v),
                "position": position.tolist(),
                "world_to_camera": world_to_camera.tolist(),
                "intrinsics": {"fx": focal, "fy": focal, "cx": cx, "cy": cy},
                # Blender lens shift, in units of the longer image side.
                "shift": [(width / 2.0 - cx) / max(width, height), (cy - height / 2.0) / max(width, height)],
            })
    rig_info = {"type": rig, "grid": grid, "baseline": baseline, "center": [uc, vc],
                "focus_distance": focus_distance}
    return views, rig_info


def project(points, view: dict) -> np.ndarray:
    """Project world points (N, 3) into a view: (N, 3) of pixel x, pixel y (from the top-left
    corner, pixel centres at +0.5) and depth along the optical axis."""
    points = np.atleast_2d(np.asarray(points, float))
    world_to_camera = np.asarray(view["world_to_camera"])
    camera = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    depth = -camera[:, 2]
    k = view["intrinsics"]
    x = k["fx"] * camera[:, 0] / depth + k["cx"]
    y = k["cy"] - k["fy"] * camera[:, 1] / depth
    return np.stack([x, y, depth], axis=1)
