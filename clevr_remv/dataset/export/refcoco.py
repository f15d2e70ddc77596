"""Export to the REFER layout read by LAVT, CRIS and most RES code through refer.py, unmodified.

::

    <out>/<name>/refs(<split_by>).p     pickled list of refs (one per view and referent)
    <out>/<name>/instances.json         COCO images, annotations (every visible object), categories
    <out>/<image folder>/<file_name>    where REFER looks for images of dataset <name>

Segmentations are exact masks stored as a one-element list of COCO RLEs: REFER's ``getMask``
decodes a list of RLEs with pycocotools and sums them. A REFER ref names one object, so the
no-target and multi-target expressions of a generalized dataset are left out (and counted as
``skipped_sentences``); ``--format grefcoco`` exports them.
"""

import pickle
import re

from clevr_remv.dataset.export.common import categories, export_image, iter_views, object_annotations, write_json
from clevr_remv.dataset.expressions import referents_of
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.vocab import tokenize
from clevr_remv.errors import ClevrRemvError

# REFER derives its image folder from the dataset name.
IMAGE_FOLDERS = {
    "refcoco": "images/mscoco/images/train2014",
    "refcoco+": "images/mscoco/images/train2014",
    "refcocog": "images/mscoco/images/train2014",
    "refclef": "images/saiapr_tc-12",
}


def export_refcoco(
    store: DatasetStore,
    out,
    split_scenes: dict,
    views: list,
    name: str = "refcoco",
    split_by: str = "unc",
    link: bool = False,
    progress: bool = True,
) -> dict:
    """Write the REFER layout (``refs(<split_by>).p`` and ``instances.json``) of LAVT, CRIS and co.

    Args:
        store: the dataset.
        out: the folder to write (new or empty; `clevr-remv export` stages it and renames it).
        split_scenes: split name -> scene indices, as
            [`select_scenes`][clevr_remv.dataset.export.common.select_scenes] gives them.
        views: the (u, v) views that become images.
        name: the REFER dataset name, which decides the folder and where images go.
        split_by: REFER's splitBy, the ``<split_by>`` of the refs file name.
        link: hard-link images instead of copying them (copies across file systems).
        progress: show a progress bar.

    Returns:
        Counts of images, annotations, refs and sentences.
    """
    if name not in IMAGE_FOLDERS:
        raise ClevrRemvError(f"--name: {name!r} is not a REFER dataset name ({', '.join(IMAGE_FOLDERS)})")
    if not re.fullmatch(r"[A-Za-z0-9_+-]+", split_by):
        raise ClevrRemvError(f"--split-by: {split_by!r} must be a plain word such as unc, google or umd")
    image_dir = out / IMAGE_FOLDERS[name]
    image_dir.mkdir(parents=True)
    category_list = categories(store)
    category_ids = {category["name"]: category["id"] for category in category_list}
    views_per_scene = store.grid**2
    images, annotations, refs = [], [], []
    sentences, skipped = 0, 0
    for split, scene_ids in split_scenes.items():
        for view in iter_views(store, scene_ids, views, desc=f"export refcoco {split}", progress=progress):
            images.append(export_image(view, image_dir, views_per_scene, link))
            image = images[-1]["id"]
            view_annotations = object_annotations(view, image, category_ids, rle_in_list=True)
            annotations += view_annotations
            by_object = {annotation["object"]: annotation for annotation in view_annotations}
            single = [e for e in view.expressions if len(referents_of(e)) == 1]
            skipped += len(view.expressions) - len(single)
            for referent in sorted({e["referent"] for e in single}):
                group = [e for e in single if e["referent"] == referent]
                ref_sentences = [_sentence(e, sentences + i) for i, e in enumerate(group)]
                sentences += len(ref_sentences)
                refs.append(
                    {
                        "ref_id": len(refs),
                        "ann_id": by_object[referent]["id"],
                        "image_id": image,
                        "split": split,
                        "category_id": by_object[referent]["category_id"],
                        "file_name": images[-1]["file_name"],
                        "sent_ids": [s["sent_id"] for s in ref_sentences],
                        "sentences": ref_sentences,
                        "scene": view.scene_index,
                        "view": [view.u, view.v],
                    }
                )
    data_dir = out / name
    write_json(data_dir / "instances.json", {"images": images, "annotations": annotations, "categories": category_list})
    with open(data_dir / f"refs({split_by}).p", "wb") as stream:
        pickle.dump(refs, stream, protocol=2)
    counts = {"images": len(images), "annotations": len(annotations), "refs": len(refs), "sentences": sentences}
    return {**counts, "skipped_sentences": skipped} if skipped else counts


def _sentence(expression: dict, sent_id: int) -> dict:
    tokens = tokenize(expression["text"])
    return {
        "tokens": tokens,
        "raw": expression["text"],
        "sent": " ".join(tokens),
        "sent_id": sent_id,
        "expression_id": expression["id"],
    }
