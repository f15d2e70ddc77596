"""CLEVR scene layout in pure Python: objects, camera and light jitter, directions, relationships.

Every random draw comes from ``numpy.random.default_rng([seed, index, attempt])``, so a scene
depends on (seed, scene index, layout attempt) alone.
"""

import math

import numpy as np

from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import look_at_rotation
from clevr_remv.wording import plural

# CLEVR's base scene (before jitter).
CAMERA_LOCATION = (7.48, -6.51, 5.34)
CAMERA_LENS_MM = 35.0
CAMERA_SENSOR_MM = 32.0
CAMERA_JITTER = 0.5
LIGHTS = (
    # name, base location, strength (W), colour temperature role
    ("key", (6.45, -2.91, 4.26), 100.0),
    ("fill", (-4.67, -4.01, 3.01), 30.0),
    ("back", (-1.17, 2.65, 5.82), 50.0),
)
LIGHT_JITTER = 1.0

# CLEVR's placement rules.
PLACEMENT_EXTENT = 3.0
MIN_DIST = 0.25
MARGIN = 0.4
MAX_RETRIES = 50
MAX_RESTARTS = 1000
RELATION_EPS = 0.2
GROUND_DIRECTIONS = ("left", "right", "front", "behind")


def scene_rng(seed: int, index: int, attempt: int = 0) -> np.random.Generator:
    """The random generator of one layout attempt of one scene."""
    return np.random.default_rng([seed, index, attempt])


def ground_directions(camera_location) -> dict:
    """CLEVR's directions: the camera's axes projected on the ground plane (plus above/below)."""
    rotation = look_at_rotation(camera_location)
    right = rotation[:, 0].copy()
    behind = -rotation[:, 2].copy()
    right[2] = behind[2] = 0.0
    right /= np.linalg.norm(right)
    behind /= np.linalg.norm(behind)
    return {
        "left": (-right).tolist(),
        "right": right.tolist(),
        "front": (-behind).tolist(),
        "behind": behind.tolist(),
        "above": [0.0, 0.0, 1.0],
        "below": [0.0, 0.0, -1.0],
    }


def relationships(objects: list, directions: dict, eps: float = RELATION_EPS) -> dict:
    """CLEVR relationships: ``result[r][i]`` lists the 0-based j such that object j is r of object i."""
    coords = np.array([obj["3d_coords"] for obj in objects], float)
    result = {}
    for name in GROUND_DIRECTIONS:
        along = coords @ np.asarray(directions[name])
        result[name] = [
            [j for j in range(len(objects)) if j != i and along[j] - along[i] > eps] for i in range(len(objects))
        ]
    return result


def _half_extent(shape_kind: str, size: float) -> float:
    """CLEVR scales cubes by size / sqrt(2) so that their corners stay within ``size``."""
    return size / math.sqrt(2) if shape_kind == "cube" else size


def _fits(x, y, radius, placed, directions) -> bool:
    for other_x, other_y, other_radius in placed:
        dx, dy = x - other_x, y - other_y
        if math.hypot(dx, dy) - radius - other_radius < MIN_DIST:
            return False
        for name in GROUND_DIRECTIONS:
            along = dx * directions[name][0] + dy * directions[name][1]
            if 0 < along < MARGIN:
                return False
    return True


def _place_objects(rng, count, properties, directions):
    """One try at placing ``count`` objects; None when an object found no place in MAX_RETRIES."""
    sizes = sorted(properties["sizes"].items())
    colors = sorted(properties["colors"])
    materials = sorted(properties["materials"])
    shapes = sorted(properties["shapes"])
    placed, objects = [], []
    for _ in range(count):
        size_name, size = sizes[rng.integers(len(sizes))]
        shape = shapes[rng.integers(len(shapes))]
        radius = _half_extent(properties["shapes"][shape], size)
        for _ in range(MAX_RETRIES):
            x, y = rng.uniform(-PLACEMENT_EXTENT, PLACEMENT_EXTENT, size=2)
            if _fits(x, y, radius, placed, directions):
                break
        else:
            return None
        placed.append((x, y, radius))
        objects.append(
            {
                "shape": shape,
                "size": size_name,
                "material": materials[rng.integers(len(materials))],
                "color": colors[rng.integers(len(colors))],
                "3d_coords": [float(x), float(y), float(radius)],
                "rotation": float(rng.uniform(0.0, 360.0)),
                "radius": float(radius),
            }
        )
    return objects


def sample_layout(
    seed: int, index: int, attempt: int, properties: dict, min_objects: int = 3, max_objects: int = 10
) -> dict:
    """Sample one CLEVR layout: camera and lights with jitter, objects, directions, relationships.

    The result holds everything the renderer needs; ``attempt`` numbers re-samples of the same scene.
    """
    rng = scene_rng(seed, index, attempt)
    camera_jitter = rng.uniform(-CAMERA_JITTER, CAMERA_JITTER, size=3)
    camera_location = np.add(CAMERA_LOCATION, camera_jitter)
    lights = []
    for name, base, energy in LIGHTS:
        jitter = rng.uniform(-LIGHT_JITTER, LIGHT_JITTER, size=3)
        lights.append(
            {"name": name, "location": np.add(base, jitter).tolist(), "energy": energy, "jitter": jitter.tolist()}
        )
    directions = ground_directions(camera_location)
    count = int(rng.integers(min_objects, max_objects + 1))
    for _ in range(MAX_RESTARTS):  # CLEVR restarts the whole scene when one object finds no place
        objects = _place_objects(rng, count, properties, directions)
        if objects is not None:
            break
    else:
        raise ClevrRemvError(
            f"scene {index}: could not place {plural(count, 'object')} in {MAX_RESTARTS} tries; "
            "use smaller sizes in --properties or a lower --max-objects"
        )
    return {
        "index": index,
        "seed": seed,
        "layout_attempt": attempt,
        "objects": objects,
        "camera": {
            "location": camera_location.tolist(),
            "look_at": [0.0, 0.0, 0.0],
            "lens": CAMERA_LENS_MM,
            "sensor_width": CAMERA_SENSOR_MM,
            "jitter": camera_jitter.tolist(),
        },
        "lights": lights,
        "directions": directions,
        "relationships": relationships(objects, directions),
    }
