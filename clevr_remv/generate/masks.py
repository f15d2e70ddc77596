"""From a view's object-index mask to per-object visibility, boxes and occlusion."""

import numpy as np

from clevr_remv.dataset.rle import visible_box
from clevr_remv.geometry import project

_EXTENT_ANGLES = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)


def extent_points(obj: dict, shape_kind: str) -> np.ndarray:
    """Points on a vertical cylinder that bounds the object (cubes: their circumscribed circle)."""
    x, y, half = obj["3d_coords"]
    footprint = obj["radius"] * (np.sqrt(2.0) if shape_kind == "cube" else 1.0)
    ring = np.stack([x + footprint * np.cos(_EXTENT_ANGLES), y + footprint * np.sin(_EXTENT_ANGLES)], axis=1)
    bottom = np.column_stack([ring, np.zeros(len(ring))])
    top = np.column_stack([ring, np.full(len(ring), 2.0 * half)])
    return np.concatenate([bottom, top])


def projected_box(obj: dict, shape_kind: str, view: dict, width: int, height: int) -> tuple:
    """The object's full (unoccluded) box in a view, clipped to the frame: (x0, y0, x1, y1)."""
    pixels = project(extent_points(obj, shape_kind), view)
    x0, y0 = np.floor(pixels[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(pixels[:, :2].max(axis=0)).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def object_views(index_image: np.ndarray, objects: list, shape_kinds: list, view: dict) -> list:
    """Per object, its entry for one view: projected centre, visible pixels, box, occlusion.

    Occlusion is the fraction of the object's projected box covered by pixels of objects whose
    centre is nearer to the camera (CLEVR-Ref+'s criterion).
    """
    height, width = index_image.shape
    centres = project([obj["3d_coords"] for obj in objects], view)
    counts = np.bincount(index_image.ravel(), minlength=len(objects) + 1)
    entries = []
    for k, (obj, kind) in enumerate(zip(objects, shape_kinds, strict=False), start=1):
        mask = index_image == k
        x0, y0, x1, y1 = projected_box(obj, kind, view, width, height)
        occlusion = 0.0
        if x1 > x0 and y1 > y0:
            nearer = [j + 1 for j in range(len(objects)) if centres[j, 2] < centres[k - 1, 2]]
            window = index_image[y0:y1, x0:x1]
            occlusion = float(np.isin(window, nearer).mean()) if nearer else 0.0
        entries.append(
            {
                "pixel_coords": [float(c) for c in centres[k - 1]],
                "pixels": int(counts[k]),
                "bbox": visible_box(mask),
                "occlusion": round(occlusion, 4),
            }
        )
    return entries
