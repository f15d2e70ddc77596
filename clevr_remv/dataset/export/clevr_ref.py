"""Export to CLEVR-Ref+'s files, so IEP-Ref-style code reads CLEVR-REMV views as CLEVR-Ref+ images.

::

    <out>/images/<split>/CLEVR_<split>_<NNNNNN>.png
    <out>/scenes/clevr_ref+_<split>_scenes.json     {"info", "scenes": [one per (scene, view)]}
    <out>/refexps/clevr_ref+_<split>_refexps.json   {"info", "refexps": [one per (expression, view)]}

Each exported image is one (scene, view), numbered 0..N-1 within its split as in CLEVR.
Masks are CLEVR-Ref+ run-length strings in ``scene["obj_mask"]`` keyed by the 1-based object
index; the referents are the ``_output`` (0-based object list) of the program's last node (none or
several for a generalized dataset's no-target and multi-target expressions).
"""

import numpy as np

from clevr_remv.dataset.export.common import iter_views, place_image, write_json
from clevr_remv.dataset.expressions import referents_of
from clevr_remv.dataset.store import DatasetStore


def encode_run_lengths(mask: np.ndarray) -> str:
    """CLEVR-Ref+ mask string: comma-separated run lengths over the row-major pixels,
    alternating background / object and starting with background (the first run may be 0)."""
    flat = np.asarray(mask, bool).ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]]))
    if flat.size and flat[0]:
        runs = np.concatenate([[0], runs])
    return ",".join(str(int(run)) for run in runs)


def decode_run_lengths(text: str, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of a CLEVR-Ref+ run-length string."""
    runs = np.array([int(run) for run in text.split(",")])
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    if flat.size != height * width:
        raise ValueError(f"run lengths cover {flat.size} pixels, expected {height * width}")
    return flat.reshape(height, width)


def image_file_name(split: str, image_index: int) -> str:
    """CLEVR's file name of image ``image_index`` of ``split``."""
    return f"CLEVR_{split}_{image_index:06d}.png"


def export_clevr_ref(
    store: DatasetStore, out, split_scenes: dict, views: list, link: bool = False, progress: bool = True
) -> dict:
    """Write CLEVR-Ref+ scenes and refexps JSON files (IEP-Ref-style code).

    Args:
        store: the dataset.
        out: the folder to write (new or empty; `clevr-remv export` stages it and renames it).
        split_scenes: split name -> scene indices, as
            [`select_scenes`][clevr_remv.dataset.export.common.select_scenes] gives them.
        views: the (u, v) views that become images.
        link: hard-link images instead of copying them (copies across file systems).
        progress: show a progress bar.

    Returns:
        Counts of images and referring expressions.
    """
    totals = {"images": 0, "refexps": 0}
    info = {"dataset": "CLEVR-REMV", "exported_by": "clevr-remv", "format": "CLEVR-Ref+"}
    for split, scene_ids in split_scenes.items():
        image_dir = out / "images" / split
        image_dir.mkdir(parents=True)
        scenes, refexps = [], []
        for view in iter_views(store, scene_ids, views, desc=f"export clevr-ref+ {split}", progress=progress):
            file_name = image_file_name(split, len(scenes))
            place_image(view.rgb_path, image_dir / file_name, link)
            scenes.append(_scene_entry(view, split, len(scenes), file_name))
            for expression in view.expressions:
                refexps.append(_refexp_entry(view, expression, split, scenes[-1], len(refexps)))
        write_json(out / "scenes" / f"clevr_ref+_{split}_scenes.json", {"info": info, "scenes": scenes})
        write_json(out / "refexps" / f"clevr_ref+_{split}_refexps.json", {"info": info, "refexps": refexps})
        totals["images"] += len(scenes)
        totals["refexps"] += len(refexps)
    return totals


def _scene_entry(view, split: str, image_index: int, file_name: str) -> dict:
    scene = view.scene
    objects = [
        {
            "shape": obj["shape"],
            "size": obj["size"],
            "material": obj["material"],
            "color": obj["color"],
            "3d_coords": obj["3d_coords"],
            "rotation": obj["rotation"],
            "pixel_coords": obj["views"][view.position]["pixel_coords"],
        }
        for obj in scene["objects"]
    ]
    return {
        "split": split,
        "image_index": image_index,
        "image_filename": file_name,
        "objects": objects,
        "relationships": scene["relationships"],
        "directions": scene["directions"],
        "obj_mask": {str(k): encode_run_lengths(view.object_mask(k)) for k in range(1, len(objects) + 1)},
        "clevr_remv": {"scene": view.scene_index, "view": [view.u, view.v]},
    }


def _refexp_entry(view, expression: dict, split: str, scene_entry: dict, refexp_index: int) -> dict:
    program = []
    for node in expression["program"]:
        side_inputs = list(node.get("side_inputs", []))
        program.append(
            {
                "type": node["type"],
                "function": node["type"],
                "inputs": list(node["inputs"]),
                "side_inputs": side_inputs,
                "value_inputs": side_inputs,
            }
        )
    program[-1]["_output"] = [k - 1 for k in referents_of(expression)]
    return {
        "split": split,
        "image_index": scene_entry["image_index"],
        "image_filename": scene_entry["image_filename"],
        "refexp_index": refexp_index,
        "refexp": expression["text"],
        "program": program,
        "template_filename": expression["family"]["template"],
        "refexp_family_index": expression["family"]["index"],
        "clevr_remv": {"scene": view.scene_index, "view": [view.u, view.v], "expression_id": expression["id"]},
    }
