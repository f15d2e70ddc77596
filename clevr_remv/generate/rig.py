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

from clevr_remv.geometry import grid_center, look_at_rotation, view_name

RIG_TYPES = ("parallel", "convergent")


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
            views.append(
                {
                    "u": u,
                    "v": v,
                    "name": view_name(u, v),
                    "position": position.tolist(),
                    "world_to_camera": world_to_camera.tolist(),
                    "intrinsics": {"fx": focal, "fy": focal, "cx": cx, "cy": cy},
                    # Blender lens shift, in units of the longer image side.
                    "shift": [(width / 2.0 - cx) / max(width, height), (cy - height / 2.0) / max(width, height)],
                }
            )
    rig_info = {"type": rig, "grid": grid, "baseline": baseline, "center": [uc, vc], "focus_distance": focus_distance}
    return views, rig_info
