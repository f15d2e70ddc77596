"""Camera-grid geometry shared by every layer: view names, the central view, view sets,
look-at rotations, the projection of world points into a stored view and back, and disparity."""

import numpy as np

from clevr_remv.errors import ClevrRemvError

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
        presets = {
            "center": [grid_center(grid)],
            "corners": [(1, 1), (grid, 1), (1, grid), (grid, grid)],
            "all": [(u, v) for v in range(1, grid + 1) for u in range(1, grid + 1)],
        }
        if views not in presets:
            raise ClevrRemvError(
                f"views (--views): {views!r} is not a view set; use one of "
                f"{', '.join(VIEW_SETS)} or a list of (u, v) pairs"
            )
        chosen = presets[views]
    else:
        chosen = []
        for view in views:
            if (
                len(view) != 2
                or not all(isinstance(c, (int, np.integer)) for c in view)
                or not all(1 <= c <= grid for c in view)
            ):
                raise ClevrRemvError(
                    f"views (--views): {tuple(view)!r} does not exist; u and v are integers "
                    f"from 1 to {grid} in this {grid}x{grid} dataset"
                )
            chosen.append((int(view[0]), int(view[1])))
        if not chosen:
            raise ClevrRemvError("views (--views): the list is empty; pass at least one (u, v)")
    return sorted(set(chosen), key=lambda uv: (uv[1], uv[0]))


def look_at_rotation(location, target=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Camera-to-world rotation (columns: right, up, backward) of a camera at ``location``
    looking at ``target`` with the world z axis up, Blender style (the camera looks down -z)."""
    forward = np.asarray(target, float) - np.asarray(location, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)


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


def unproject(x, y, depth, view: dict) -> np.ndarray:
    """World points (N, 3) seen at pixel positions ``x``, ``y`` (as `project` gives them)
    with z-depth ``depth`` along the optical axis in a view: the inverse of `project`."""
    k = view["intrinsics"]
    depth = np.ravel(np.asarray(depth, float))
    camera = np.stack(
        [(np.ravel(x) - k["cx"]) / k["fx"] * depth, (k["cy"] - np.ravel(y)) / k["fy"] * depth, -depth], axis=1
    )
    world_to_camera = np.asarray(view["world_to_camera"])
    return (camera - world_to_camera[:3, 3]) @ world_to_camera[:3, :3]


def disparity(depth, scene: dict, view) -> np.ndarray:
    """Disparity in pixels per view step of points at z-depth ``depth`` (world units, an array
    or a number; 0 = no value gives NaN, inf gives the value at infinity) seen in ``view``, the
    (u, v) of a view of ``scene`` (a scene.json document).

    A point at (x, y) in the centre view (uc, vc) lies at (x + (uc - u) d, y + (vc - v) d) in view
    (u, v) (the README's light-field relation). Parallel rig: d = f_px * baseline / z; convergent
    rig: d = f_px * baseline * (1 / z - 1 / z_focus), zero on the focus plane and positive in front
    of it (the 4D Light Field Benchmark's convention).
    """
    rig = scene["rig"]
    ((u, v),) = select_views([tuple(view)], rig["grid"])
    focal = scene["views"][(v - 1) * rig["grid"] + (u - 1)]["intrinsics"]["fx"]
    depth = np.asarray(depth, float)
    inverse = np.divide(1.0, depth, out=np.full(depth.shape, np.nan), where=depth > 0)
    if rig["type"] == "convergent":
        inverse -= 1.0 / rig["focus_distance"]
    return focal * rig["baseline"] * inverse
