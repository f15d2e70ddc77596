"""What every export shares: choosing scenes and views, walking them, ids, and safe output."""

import contextlib
import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from clevr_remv.dataset.expressions import referents_of
from clevr_remv.dataset.rle import mask_to_rle, visible_box
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import view_name

# Object indices are < 256 (uint8 masks), so this packs (image, object) into one annotation id.
_OBJECTS_PER_IMAGE = 256


def select_scenes(store: DatasetStore, split=None, require_splits: bool = False) -> dict:
    """The scenes to export, by split.

    Args:
        store: the dataset.
        split: one split of splits.json to keep; None for every split.
        require_splits: refuse a dataset without splits.json (else its scenes go to split "all").

    Returns:
        Split name -> sorted scene indices.
    """
    scene_ids = store.scene_ids()
    if not scene_ids:
        raise ClevrRemvError(
            f"--data {store.root}: the dataset has no complete scenes; run `clevr-remv generate` first"
        )
    if split is None and not require_splits and not store.splits_path.is_file():
        return {"all": scene_ids}
    names = [split] if split is not None else list(store.load_splits()["splits"])
    return {name: sorted(split_scene_ids(store, name)) for name in names}


def view_file_name(scene_index: int, u: int, v: int) -> str:
    """The exported image file name of view (u, v) of a scene."""
    return f"clevr_remv_{scene_index:06d}_{view_name(u, v)}.png"


def image_id(scene_index: int, position: int, views_per_scene: int) -> int:
    """A stable COCO image id of view ``position`` (index into scene["views"]) of a scene."""
    return scene_index * views_per_scene + position + 1


def annotation_id(image: int, k: int) -> int:
    """A stable COCO annotation id of object ``k`` (1-based) in image ``image``."""
    return image * _OBJECTS_PER_IMAGE + k


def categories(store: DatasetStore) -> list:
    """COCO categories: one per shape name of the dataset's properties, ids from 1."""
    shapes = store.info()["config"]["properties"]["shapes"]
    return [{"id": i, "name": name, "supercategory": "shape"} for i, name in enumerate(shapes, start=1)]


@dataclasses.dataclass
class ExportView:
    """One (scene, view) to export, with the expressions valid in it whose referents all show in it
    (a no-target expression: valid in it)."""

    scene_index: int
    scene: dict
    u: int
    v: int
    position: int
    index_mask: np.ndarray
    rgb_path: Path
    expressions: list

    def object_mask(self, k: int) -> np.ndarray:
        """Boolean mask of object ``k`` (1-based) in this view."""
        return self.index_mask == k


def iter_views(store: DatasetStore, scene_ids: list, views: list, desc: str, progress: bool = True):
    """Yield an `ExportView` for every selected view of every scene (progress per scene).

    JSON files are parsed without the schema check, which would dominate the run time
    (`clevr-remv validate` does it); unreadable files still raise ClevrRemvError.
    """
    for index in tqdm(scene_ids, desc=desc, unit="scene", disable=not progress):
        scene = store.load_scene(index, check=False)
        expressions = store.load_refexps(index, check=False)["expressions"]
        positions = {(view["u"], view["v"]): i for i, view in enumerate(scene["views"])}
        for u, v in views:
            index_mask = _read_index(store, index, u, v)
            visible = set(np.unique(index_mask).tolist())
            valid = [e for e in expressions if [u, v] in e["views"] and all(k in visible for k in referents_of(e))]
            yield ExportView(index, scene, u, v, positions[(u, v)], index_mask, store.rgb_path(index, u, v), valid)


def _validate_hint(store: DatasetStore) -> str:
    return f"run `clevr-remv validate --data {store.root}` to list every problem"


def require_files(store: DatasetStore, paths) -> None:
    """Raise ClevrRemvError naming the first of ``paths`` (files of ``store``) that is missing."""
    for path in paths:
        if not path.is_file():
            raise ClevrRemvError(f"{path}: missing; {_validate_hint(store)}")


def _read_index(store: DatasetStore, index: int, u: int, v: int) -> np.ndarray:
    """The view's index mask, after checking that both of its images exist."""
    hint = _validate_hint(store)
    require_files(store, (store.rgb_path(index, u, v), store.index_path(index, u, v)))
    try:
        # Column-major, so that per-object masks reach pycocotools' RLE encoder without a copy.
        return np.asfortranarray(store.read_index(index, u, v))
    except OSError as error:
        raise ClevrRemvError(f"{store.index_path(index, u, v)}: cannot be read ({error}); {hint}") from error


def object_annotations(view: ExportView, image: int, category_ids: dict, rle_in_list: bool) -> list:
    """COCO annotations of every visible object of a view (exact RLE masks).

    ``rle_in_list`` wraps each RLE in a one-element list, the form REFER's ``getMask`` decodes.
    """
    annotations = []
    for k, obj in enumerate(view.scene["objects"], start=1):
        mask = view.object_mask(k)
        area = int(mask.sum())
        if area == 0:
            continue
        rle = mask_to_rle(mask)
        annotations.append(
            {
                "id": annotation_id(image, k),
                "image_id": image,
                "category_id": category_ids[obj["shape"]],
                "segmentation": [rle] if rle_in_list else rle,
                "area": area,
                "bbox": visible_box(mask),
                "iscrowd": 0,
                "attributes": {key: obj[key] for key in ("size", "color", "material", "shape")},
                "object": k,
            }
        )
    return annotations


def export_image(view: ExportView, image_dir: Path, views_per_scene: int, link: bool) -> dict:
    """Place a view's RGB image in ``image_dir`` and return its COCO ``images`` entry."""
    file_name = view_file_name(view.scene_index, view.u, view.v)
    place_image(view.rgb_path, image_dir / file_name, link)
    height, width = view.index_mask.shape
    return {
        "id": image_id(view.scene_index, view.position, views_per_scene),
        "file_name": file_name,
        "width": width,
        "height": height,
        "scene": view.scene_index,
        "view": [view.u, view.v],
    }


def place_image(source: Path, target: Path, link: bool) -> None:
    """Copy ``source`` to ``target`` (or hard-link it when ``link``, copying across file systems)."""
    if link:
        with contextlib.suppress(OSError):
            os.link(source, target)
            return
    shutil.copyfile(source, target)


def write_json(path: Path, document) -> None:
    """Write compact JSON (the whole export is made atomic by
    `clevr_remv.dataset.outdir.staged_output_dir`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as stream:
        json.dump(document, stream, separators=(",", ":"))
