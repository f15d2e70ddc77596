"""Generalized datasets through the data tools: the gRefCOCO export (read back with a reader
written from gRefCOCO's published format), the REFER and CLEVR-Ref+ exports, ClevrRemvDataset
items, validate, stats, show and the viewer."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools import mask as mask_api

from clevr_remv.cli import main
from clevr_remv.dataset.expressions import referents_of, target_mask
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.show import contact_sheet
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.stats import dataset_stats, format_table
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset


def expressions_of(store, kind):
    """(scene, expression) pairs naming no object ("none"), one ("one") or several ("many")."""
    wanted = {"none": lambda n: n == 0, "one": lambda n: n == 1, "many": lambda n: n >= 2}[kind]
    return [
        (scene, e)
        for scene in store.scene_ids()
        for e in store.load_refexps(scene)["expressions"]
        if wanted(len(referents_of(e)))
    ]


# -- a gRefCOCO reader written from the published format description ---------------------------------
class GReferReader:
    """gRefCOCO as its ``grefer.py`` API describes it: ``<root>/<dataset>/grefs(<splitBy>).json``
    (a list of refs with ``ref_id``, ``image_id``, ``split``, ``ann_id`` (a list; ``[-1]`` for no
    target), ``category_id`` and ``sentences`` with ``sent_id``, ``raw``, ``tokens``),
    ``<root>/<dataset>/instances.json`` (COCO images, annotations, categories) and the images in
    ``<root>/images/train2014``. ``getMaskByRef`` answers an all-zero mask for ``ann_id == [-1]``."""

    def __init__(self, data_root, dataset="grefcoco", split_by="unc"):
        folder = Path(data_root) / dataset
        self.image_dir = Path(data_root) / "images" / "train2014"
        self.refs = json.loads((folder / f"grefs({split_by}).json").read_text())
        instances = json.loads((folder / "instances.json").read_text())
        self.anns = {-1: None, **{ann["id"]: ann for ann in instances["annotations"]}}
        self.imgs = {image["id"]: image for image in instances["images"]}
        self.cats = {category["id"]: category["name"] for category in instances["categories"]}
        self.ref_by_id = {ref["ref_id"]: ref for ref in self.refs}

    @staticmethod
    def as_list(value):
        return value if isinstance(value, list) else [value]

    def getRefIds(self, image_ids=(), split=()):  # noqa: N802 - grefer.py's names
        refs = [r for r in self.refs if not image_ids or r["image_id"] in self.as_list(image_ids)]
        return [r["ref_id"] for r in refs if not split or r["split"] in self.as_list(split)]

    def getAnnIds(self, ref_ids):  # noqa: N802
        return sorted({a for ref_id in self.as_list(ref_ids) for a in self.ref_by_id[ref_id]["ann_id"]})

    def loadRefs(self, ref_ids):  # noqa: N802
        return [self.ref_by_id[ref_id] for ref_id in self.as_list(ref_ids)]

    def loadAnns(self, ann_ids):  # noqa: N802
        return [self.anns[ann_id] for ann_id in self.as_list(ann_ids)]

    def getMask(self, ann):  # noqa: N802
        """The annotation's mask: its RLE list decoded and summed over the stack."""
        decoded = mask_api.decode(ann["segmentation"])
        return {"mask": decoded.sum(axis=2).astype(np.uint8), "area": int(sum(mask_api.area(ann["segmentation"])))}

    def getMaskByRef(self, ref, merge=True):  # noqa: N802
        if ref["ann_id"] == [-1]:
            image = self.imgs[ref["image_id"]]
            return {"mask": np.zeros((image["height"], image["width"]), np.uint8), "empty": True}
        masks = [self.getMask(ann)["mask"] for ann in self.loadAnns(ref["ann_id"]) if not ann["iscrowd"]]
        return {"mask": (sum(masks) > 0).astype(np.uint8), "empty": False}


@pytest.fixture(scope="module")
def grefcoco(tiny_generalized_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("grefcoco") / "export"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--data",
            str(tiny_generalized_dataset),
            "--format",
            "grefcoco",
            "--out",
            str(out),
            "--views",
            "corners",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "G_REFER(" in result.output
    return out


def test_grefcoco_export_reads_back_with_a_grefer_style_reader(grefcoco, tiny_generalized_dataset):
    store = DatasetStore(tiny_generalized_dataset)
    refer = GReferReader(grefcoco)
    assert set(refer.cats.values()) == set(store.info()["config"]["properties"]["shapes"])
    no_target = [r for r in refer.refs if r["ann_id"] == [-1]]
    multi = [r for r in refer.refs if len(r["ann_id"]) >= 2]
    assert no_target and multi
    for ref in refer.loadRefs(refer.getRefIds(split=["train", "val", "test"])):
        image = refer.imgs[ref["image_id"]]
        assert (refer.image_dir / image["file_name"]).is_file()
        scene, (u, v) = image["scene"], image["view"]
        index = store.read_index(scene, u, v)
        by_id = {e["id"]: e for e in store.load_refexps(scene)["expressions"]}
        mask = refer.getMaskByRef(ref, merge=True)
        assert mask["empty"] == (ref["ann_id"] == [-1]) == ref["no_target"]
        assert ref["category_id"] == (-1 if ref["no_target"] else [refer.anns[a]["category_id"] for a in ref["ann_id"]])
        for sentence in ref["sentences"]:
            expression = by_id[sentence["expression_id"]]
            assert sentence["raw"] == expression["text"] and sentence["tokens"]
            assert [u, v] in expression["views"]
            np.testing.assert_array_equal(mask["mask"].astype(bool), target_mask(index, expression))


def test_grefcoco_export_has_every_sample_once(grefcoco, tiny_generalized_dataset):
    store = DatasetStore(tiny_generalized_dataset)
    refer = GReferReader(grefcoco)
    exported = {
        (refer.imgs[r["image_id"]]["scene"], s["expression_id"], *refer.imgs[r["image_id"]]["view"])
        for r in refer.refs
        for s in r["sentences"]
    }
    corners = {(1, 1), (3, 1), (1, 3), (3, 3)}
    expected = {
        (scene, e["id"], u, v)
        for split in ("train", "val", "test")
        for scene in split_scene_ids(store, split)
        for e in store.load_refexps(scene)["expressions"]
        for u, v in e["views"]
        if (u, v) in corners
    }
    assert exported == expected
    assert len({s["sent_id"] for r in refer.refs for s in r["sentences"]}) == len(expected)


def test_grefcoco_detectron2_masks_are_plain_rles(tiny_generalized_dataset, tmp_path):
    out = tmp_path / "d2"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--data",
            str(tiny_generalized_dataset),
            "--format",
            "grefcoco",
            "--out",
            str(out),
            "--mask-format",
            "detectron2",
            "--split",
            "test",
        ],
    )
    assert result.exit_code == 0, result.output
    annotation = json.loads((out / "grefcoco" / "instances.json").read_text())["annotations"][0]
    assert isinstance(annotation["segmentation"], dict)
    assert mask_api.decode(annotation["segmentation"]).sum() == annotation["area"]


def test_refcoco_export_leaves_out_what_refer_cannot_hold(tiny_generalized_dataset, tmp_path):
    result = CliRunner().invoke(
        main,
        ["export", "--data", str(tiny_generalized_dataset), "--format", "refcoco", "--out", str(tmp_path / "refcoco")],
    )
    assert result.exit_code == 0, result.output
    assert "skipped_sentences" in result.output


def test_clevr_ref_export_lists_every_referent(tiny_generalized_dataset, tmp_path):
    out = tmp_path / "clevr"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--data",
            str(tiny_generalized_dataset),
            "--format",
            "clevr-ref+",
            "--out",
            str(out),
            "--split",
            "train",
        ],
    )
    assert result.exit_code == 0, result.output
    refexps = json.loads((out / "refexps" / "clevr_ref+_train_refexps.json").read_text())["refexps"]
    store = DatasetStore(tiny_generalized_dataset)
    outputs = {len(r["program"][-1]["_output"]) for r in refexps}
    assert 0 in outputs and max(outputs) >= 2
    for refexp in refexps:
        scene, expression_id = refexp["clevr_remv"]["scene"], refexp["clevr_remv"]["expression_id"]
        expression = next(e for e in store.load_refexps(scene)["expressions"] if e["id"] == expression_id)
        assert refexp["program"][-1]["_output"] == [k - 1 for k in referents_of(expression)]


# -- ClevrRemvDataset ----------------------------------------------------------------------------------
def test_dataset_items_carry_the_union_of_referents(tiny_generalized_dataset):
    dataset = ClevrRemvDataset(tiny_generalized_dataset, split="train", views="all")
    store = DatasetStore(tiny_generalized_dataset)
    kinds = set()
    for position in range(len(dataset)):
        item = dataset[position]
        index = store.read_index(item["scene"], *item["view"])
        expected = np.isin(index, item["objects"])
        assert np.array_equal(item["mask"].numpy(), expected)
        assert item["object"] == (item["objects"][0] if len(item["objects"]) == 1 else 0)
        kinds.add(min(len(item["objects"]), 2))
        if not item["objects"]:
            assert not item["mask"].any()
    assert kinds == {0, 1, 2}


# -- validate ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda e: e.pop("referents"), "1 of 10 expressions have no 'referents'"),
        (lambda e: e.update(referents=[2, 1]), "not sorted and distinct"),
        (lambda e: e.update(referent=1, referents=[2]), "referent 1 but referents [2]"),
        (lambda e: (e.update(referents=[1]), e.pop("referent", None)), "names one object but has no 'referent'"),
        (lambda e: e.update(referents=[1, 99]), "referents [1, 99] but the scene has"),
    ],
)
def test_validate_finds_generalized_mistakes(tiny_generalized_dataset, tmp_path, corrupt, message):
    import shutil

    root = shutil.copytree(tiny_generalized_dataset, tmp_path / "dataset")
    store = DatasetStore(root)
    document = store.load_refexps(0)
    corrupt(next(e for e in document["expressions"] if len(e["referents"]) == 1))
    store.refexps_path(0).write_text(json.dumps(document))
    messages = [p.message for p in validate_dataset(root, quick=True) if p.severity == "error"]
    assert any(message in text for text in messages), messages


def test_validate_checks_every_referent_is_visible(tiny_generalized_dataset, tmp_path):
    import shutil

    root = shutil.copytree(tiny_generalized_dataset, tmp_path / "dataset")
    store = DatasetStore(root)
    scene, expression = expressions_of(store, "many")[0]
    second = expression["referents"][1]
    u, v = expression["views"][0]
    document = json.loads(store.scene_json_path(scene).read_text())
    position = next(i for i, view in enumerate(document["views"]) if (view["u"], view["v"]) == (u, v))
    document["objects"][second - 1]["views"][position]["pixels"] = 0
    store.scene_json_path(scene).write_text(json.dumps(document))
    messages = " ".join(p.message for p in validate_dataset(root, quick=True))
    assert f"expression {expression['id']}: referent {second} is not visible in listed views ({u}, {v})" in messages


# -- stats, show and the viewer ---------------------------------------------------------------------
def test_stats_count_expressions_by_targets(tiny_generalized_dataset):
    stats = dataset_stats(tiny_generalized_dataset)
    store = DatasetStore(tiny_generalized_dataset)
    for name, split in stats["splits"].items():
        expected = {}
        for scene in split_scene_ids(store, name):
            for expression in store.load_refexps(scene)["expressions"]:
                key = str(len(referents_of(expression)))
                expected[key] = expected.get(key, 0) + 1
        assert split["targets_per_expression_histogram"] == dict(sorted(expected.items()))
        assert sum(split["targets_per_expression_histogram"].values()) == split["pairs"]
    table = format_table(stats)
    assert "no-target %" in table and "multi-target %" in table


def test_stats_of_single_referent_data_show_no_mix(tiny_dataset):
    stats = dataset_stats(tiny_dataset)
    assert all(set(s["targets_per_expression_histogram"]) <= {"1"} for s in stats["splits"].values())
    assert "no-target %" not in format_table(stats)


def sheet_text(figure) -> str:
    return " ".join(text.get_text() for text in figure.texts) + " " + figure._suptitle.get_text()


def test_show_outlines_every_referent_or_says_no_target(tiny_generalized_dataset):
    store = DatasetStore(tiny_generalized_dataset)
    scene, expression = expressions_of(store, "none")[0]
    assert "no target" in sheet_text(contact_sheet(tiny_generalized_dataset, scene, expression["id"]))
    scene, expression = expressions_of(store, "many")[0]
    figure = contact_sheet(tiny_generalized_dataset, scene, expression["id"])
    text = sheet_text(figure)
    assert f"referents: objects {expression['referents'][0]} (" in text
    assert all(f"{k} (" in text for k in expression["referents"])
    outlined = sum(len(axis.collections) for axis in figure.axes)
    assert outlined >= len(expression["views"])


def test_viewer_outlines_several_objects_and_none(tiny_generalized_dataset):
    from starlette.testclient import TestClient

    from clevr_remv.view.catalog import Catalog
    from clevr_remv.view.layers import outline
    from clevr_remv.view.server import create_app

    client = TestClient(create_app(Catalog(tiny_generalized_dataset)), base_url="http://localhost:8765")
    store = DatasetStore(tiny_generalized_dataset)
    index = store.read_index(0, 2, 2)
    objects = sorted(set(np.unique(index).tolist()) - {0})[:2]
    response = client.get("/api/scenes/0/views/2/2/outline.png", params=[("object", k) for k in objects])
    layer = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.array_equal(layer[..., 3] > 0, outline(np.isin(index, objects)))
    empty = np.asarray(Image.open(io.BytesIO(client.get("/api/scenes/0/views/2/2/outline.png").content)))
    assert not empty[..., 3].any()
    detail = client.get("/api/scenes/0").json()
    assert all("referents" in e for e in detail["expressions"])


def test_retrieval_captions_leave_out_no_target_expressions(tiny_generalized_dataset):
    from clevr_remv.retrieval.remv import load_remv_split

    split = load_remv_split(tiny_generalized_dataset, "train", image_size=32)
    store = DatasetStore(tiny_generalized_dataset)
    texts = [e["text"] for scene in split_scene_ids(store, "train") for e in store.load_refexps(scene)["expressions"]]
    absent = [
        text
        for scene, e in expressions_of(store, "none")
        if scene in split_scene_ids(store, "train")
        for text in [e["text"]]
    ]
    assert absent and not set(absent) & set(split.captions)
    assert len(split.captions) == len(texts) - len(absent)
