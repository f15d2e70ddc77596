"""Export to COCO instance segmentation: one image per view, every visible object as an RLE mask.

::

    <out>/annotations/instances_<split>.json
    <out>/images/<split>/<file_name>

Splits come from splits.json; without it everything is split "all".
"""

from clevr_remv.dataset.export.common import categories, export_image, iter_views, object_annotations, write_json
from clevr_remv.dataset.store import DatasetStore


def export_coco(
    store: DatasetStore, out, split_scenes: dict, views: list, link: bool = False, progress: bool = True
) -> dict:
    """Write COCO instance segmentation files, one image per view.

    Args:
        store: the dataset.
        out: the folder to write (new or empty; `clevr-remv export` stages it and renames it).
        split_scenes: split name -> scene indices, as
            [`select_scenes`][clevr_remv.dataset.export.common.select_scenes] gives them.
        views: the (u, v) views that become images.
        link: hard-link images instead of copying them (copies across file systems).
        progress: show a progress bar.

    Returns:
        Counts of images and annotations.
    """
    category_list = categories(store)
    category_ids = {category["name"]: category["id"] for category in category_list}
    views_per_scene = store.grid**2
    totals = {"images": 0, "annotations": 0}
    for split, scene_ids in split_scenes.items():
        image_dir = out / "images" / split
        image_dir.mkdir(parents=True)
        images, annotations = [], []
        for view in iter_views(store, scene_ids, views, desc=f"export coco {split}", progress=progress):
            images.append(export_image(view, image_dir, views_per_scene, link))
            image = images[-1]["id"]
            annotations += object_annotations(view, image, category_ids, rle_in_list=False)
        write_json(
            out / "annotations" / f"instances_{split}.json",
            {
                "info": {"description": f"CLEVR-REMV {split} split, exported by clevr-remv"},
                "licenses": [],
                "images": images,
                "annotations": annotations,
                "categories": category_list,
            },
        )
        totals["images"] += len(images)
        totals["annotations"] += len(annotations)
    return totals
