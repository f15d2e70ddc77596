"""Export to gRefCOCO's layout (GRES: Liu, Ding & Jiang, CVPR 2023), which generalized RES code
reads through ``grefer.py`` (``G_REFER(data_root, "grefcoco", splitBy)``), unmodified.

::

    <out>/grefcoco/grefs(<split_by>).json   list of refs: one per (view, set of targets)
    <out>/grefcoco/instances.json           COCO images, annotations (every visible object), categories
    <out>/images/train2014/<file_name>      where G_REFER looks for the images

A ref lists its targets in ``ann_id`` (annotation ids, always a list) and ``category_id`` (their
categories); a ref with no target has ``ann_id`` [-1], ``category_id`` -1 and ``no_target`` true,
as in gRefCOCO, where ``getMaskByRef`` answers an all-zero mask for ``ann_id == [-1]``. Its
``sentences`` are the expressions naming exactly those targets in that view (``raw``, ``sent``,
``tokens``, ``sent_id``, and our ``expression_id``). Works for single-referent datasets too
(every ref then has one target).

``mask_format``: ``grefer`` stores each segmentation as a one-element list of COCO RLEs, what
``G_REFER.getMask`` decodes (it sums the decoded stack); ``detectron2`` stores the RLE itself,
what detectron2-based loaders such as ReLA's ``load_grefcoco_json`` read (they take a list as
polygons).
"""

import re

from clevr_remv.dataset.export.common import categories, export_image, iter_views, object_annotations, write_json
from clevr_remv.dataset.expressions import referents_of
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.vocab import tokenize
from clevr_remv.errors import ClevrRemvError

DATASET_NAME = "grefcoco"
IMAGE_FOLDER = "images/train2014"  # G_REFER: data_root/images/train2014
NO_TARGET = -1
MASK_FORMATS = ("grefer", "detectron2")


def export_grefcoco(
    store: DatasetStore,
    out,
    split_scenes: dict,
    views: list,
    split_by: str = "unc",
    mask_format: str = "grefer",
    link: bool = False,
    progress: bool = True,
) -> dict:
    """Write gRefCOCO's layout (``grefs(<split_by>).json`` and ``instances.json``) of generalized RES code.

    Args:
        store: the dataset.
        out: the folder to write (new or empty; `clevr-remv export` stages it and renames it).
        split_scenes: split name -> scene indices, as
            [`select_scenes`][clevr_remv.dataset.export.common.select_scenes] gives them.
        views: the (u, v) views that become images.
        split_by: REFER's splitBy, the ``<split_by>`` of the grefs file name.
        mask_format: "grefer" (a one-element list of RLEs, as grefer.py's getMask reads) or
            "detectron2" (the RLE itself, as detectron2 loaders such as ReLA's read).
        link: hard-link images instead of copying them (copies across file systems).
        progress: show a progress bar.

    Returns:
        Counts of images, annotations, refs, no-target refs and sentences.
    """
    if not re.fullmatch(r"[A-Za-z0-9_+-]+", split_by):
        raise ClevrRemvError(f"--split-by: {split_by!r} must be a plain word such as unc")
    if mask_format not in MASK_FORMATS:
        raise ClevrRemvError(f"--mask-format: {mask_format!r} is not one of {', '.join(MASK_FORMATS)}")
    image_dir = out / IMAGE_FOLDER
    image_dir.mkdir(parents=True)
    category_list = categories(store)
    category_ids = {category["name"]: category["id"] for category in category_list}
    views_per_scene = store.grid**2
    images, annotations, refs = [], [], []
    sentences = 0
    for split, scene_ids in split_scenes.items():
        for view in iter_views(store, scene_ids, views, desc=f"export grefcoco {split}", progress=progress):
            images.append(export_image(view, image_dir, views_per_scene, link))
            image = images[-1]
            view_annotations = object_annotations(view, image["id"], category_ids, rle_in_list=mask_format == "grefer")
            annotations += view_annotations
            by_object = {annotation["object"]: annotation for annotation in view_annotations}
            groups = {}
            for expression in view.expressions:
                groups.setdefault(tuple(referents_of(expression)), []).append(expression)
            for targets in sorted(groups):
                ref_sentences = [_sentence(e, sentences + i) for i, e in enumerate(groups[targets])]
                sentences += len(ref_sentences)
                refs.append(_ref(len(refs), [by_object[k] for k in targets], image, split, ref_sentences, view))
    data_dir = out / DATASET_NAME
    write_json(data_dir / "instances.json", {"images": images, "annotations": annotations, "categories": category_list})
    write_json(data_dir / f"grefs({split_by}).json", refs)
    return {
        "images": len(images),
        "annotations": len(annotations),
        "refs": len(refs),
        "no_target_refs": sum(ref["no_target"] for ref in refs),
        "sentences": sentences,
    }


def _ref(ref_id: int, targets: list, image: dict, split: str, sentences: list, view) -> dict:
    """One gRefCOCO ref: the annotations of ``targets`` (none: no target) with its sentences."""
    return {
        "ref_id": ref_id,
        "image_id": image["id"],
        "split": split,
        "file_name": image["file_name"],
        "ann_id": [a["id"] for a in targets] or [NO_TARGET],
        "category_id": [a["category_id"] for a in targets] or NO_TARGET,
        "no_target": not targets,
        "sent_ids": [s["sent_id"] for s in sentences],
        "sentences": sentences,
        "scene": view.scene_index,
        "view": [view.u, view.v],
    }


def _sentence(expression: dict, sent_id: int) -> dict:
    tokens = tokenize(expression["text"])
    return {
        "tokens": tokens,
        "raw": expression["text"],
        "sent": " ".join(tokens),
        "sent_id": sent_id,
        "expression_id": expression["id"],
    }
