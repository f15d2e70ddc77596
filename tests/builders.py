"""Plain helpers and constants shared by several test files (fixtures live in conftest.py)."""

from clevr_remv.generate.layout import relationships
from clevr_remv.generate.properties import load_properties

# A LAVT small enough for a CPU test: 4 stages, one or two blocks each.
TINY_LAVT = {
    "embed_dim": 16,
    "depths": [1, 1, 2, 1],
    "heads": [1, 2, 2, 4],
    "window": 4,
    "decoder_dim": 16,
    "drop_path": 0.1,
}

PROPERTIES = load_properties()
# Camera looks along +y: right = +x, behind = +y.
DIRECTIONS = {
    "left": [-1.0, 0.0, 0.0],
    "right": [1.0, 0.0, 0.0],
    "front": [0.0, -1.0, 0.0],
    "behind": [0.0, 1.0, 0.0],
    "above": [0.0, 0.0, 1.0],
    "below": [0.0, 0.0, -1.0],
}


def obj(shape, color, x, y, size="large", material="rubber", occlusion=0.0, pixels=None, occlusions=None):
    """A hand-built object; ``pixels`` per view of a 3x3 rig (default 100 everywhere); ``occlusion``
    in the centre view (0 elsewhere) unless ``occlusions`` gives all nine."""
    return {
        "shape": shape,
        "size": size,
        "material": material,
        "color": color,
        "3d_coords": [x, y, 0.7],
        "occlusions": occlusions or [occlusion if i == 4 else 0.0 for i in range(9)],
        "pixels": pixels or [100] * 9,
    }


def make_scene(objects, index=0) -> dict:
    """A 3x3-view scene with only what the expression code reads."""
    views = [{"u": u, "v": v} for v in (1, 2, 3) for u in (1, 2, 3)]
    built = [
        {key: o[key] for key in ("shape", "size", "material", "color", "3d_coords")}
        | {
            "views": [
                {"pixels": p, "occlusion": occlusion} for p, occlusion in zip(o["pixels"], o["occlusions"], strict=True)
            ]
        }
        for o in objects
    ]
    return {
        "index": index,
        "objects": built,
        "views": views,
        "rig": {"center": [2, 2]},
        "directions": DIRECTIONS,
        "relationships": relationships(built, DIRECTIONS),
    }


def shifted_predictions(root, path, scenes=None):
    """Write JSON Lines predictions for every valid (expression, view) of ``scenes`` (default: all):
    the ground-truth mask moved right by |u - centre u| pixels, so IoU falls away from the centre.
    Returns ``path``."""
    import json

    import numpy as np

    from clevr_remv.dataset.store import DatasetStore
    from clevr_remv.res.evaluate import prediction_record

    store = DatasetStore(root)
    lines = []
    for scene in store.scene_ids() if scenes is None else scenes:
        for expression in store.load_refexps(scene)["expressions"]:
            for u, v in expression["views"]:
                mask = np.roll(store.read_index(scene, u, v) == expression["referent"], abs(u - store.center[0]), 1)
                lines.append(json.dumps(prediction_record(scene, expression["id"], (u, v), mask)) + "\n")
    path.write_text("".join(lines))
    return path


def break_png(path, how: str = "truncate") -> None:
    """Damage the PNG at ``path`` in place: ``truncate`` cuts it in half (the header still reads,
    decoding the pixels fails), ``text`` makes it a text file (not an image at all)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(40, len(data) // 2)] if how == "truncate" else b"not an image\n")
