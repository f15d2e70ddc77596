"""`clevr-remv export`: round trips of the REFER, COCO and CLEVR-Ref+ layouts, and safe output."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from clevr_remv.cli import main
from clevr_remv.dataset.export.clevr_ref import decode_run_lengths, encode_run_lengths
from clevr_remv.dataset.outdir import MANIFEST, write_manifest
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset

CORNERS = [(1, 1), (3, 1), (1, 3), (3, 3)]


def _export(data, out, *flags):
    result = CliRunner().invoke(main, ["export", "--data", str(data), "--out", str(out), *flags])
    return result


def _expected_samples(store, scene_ids, views):
    """(scene, expression id, (u, v)) of every expression in every chosen view where it is valid."""
    return {
        (index, e["id"], (u, v))
        for index in scene_ids
        for e in store.load_refexps(index)["expressions"]
        for u, v in views
        if [u, v] in e["views"]
    }


class _Refer:
    """The load and getMask logic of REFER's refer.py, to read an export exactly as LAVT does."""

    def __init__(self, data_root, dataset, split_by):
        self.image_dir = data_root / "images/mscoco/images/train2014"
        with open(data_root / dataset / f"refs({split_by}).p", "rb") as stream:
            self.refs = pickle.load(stream)
        instances = json.loads((data_root / dataset / "instances.json").read_text())
        self.anns = {ann["id"]: ann for ann in instances["annotations"]}
        self.imgs = {img["id"]: img for img in instances["images"]}
        self.cats = {cat["id"]: cat["name"] for cat in instances["categories"]}
        self.ref_to_ann = {ref["ref_id"]: self.anns[ref["ann_id"]] for ref in self.refs}

    def get_mask(self, ref):
        ann = self.ref_to_ann[ref["ref_id"]]
        image = self.imgs[ref["image_id"]]
        if type(ann["segmentation"][0]) == list:  # polygons  # noqa: E721 (REFER's own test)
            rle = coco_mask.frPyObjects(ann["segmentation"], image["height"], image["width"])
        else:
            rle = ann["segmentation"]
        m = np.sum(coco_mask.decode(rle), axis=2).astype(np.uint8)
        return {"mask": m, "area": sum(coco_mask.area(rle))}


def test_refcoco_round_trip_through_refer_logic(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    out = tmp_path / "refer"
    result = _export(tiny_dataset, out, "--format", "refcoco", "--views", "corners")
    assert result.exit_code == 0, result.output
    assert f"--refer_data_root {out} --dataset refcoco --splitBy unc" in result.output
    refer = _Refer(out, "refcoco", "unc")
    splits = store.load_splits()["splits"]
    scene_split = {index: name for name, members in splits.items() for index in members}
    assert {ref["split"] for ref in refer.refs} == {"train", "val", "test"}
    assert len({ref["ref_id"] for ref in refer.refs}) == len(refer.refs)
    assert len(refer.imgs) == len(store.scene_ids()) * len(CORNERS)
    samples = set()
    for ref in refer.refs:
        image = refer.imgs[ref["image_id"]]
        assert (refer.image_dir / image["file_name"]).is_file()
        scene, (u, v) = image["scene"], tuple(image["view"])
        assert ref["split"] == scene_split[scene] and ref["file_name"] == image["file_name"]
        ann = refer.ref_to_ann[ref["ref_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] in refer.cats
        found = refer.get_mask(ref)
        expected = store.read_index(scene, u, v) == ann["object"]
        np.testing.assert_array_equal(found["mask"].astype(bool), expected)
        assert found["area"] == ann["area"] == expected.sum()
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
        by_id = {e["id"]: e for e in store.load_refexps(scene)["expressions"]}
        for sentence in ref["sentences"]:
            expression = by_id[sentence["expression_id"]]
            assert expression["referent"] == ann["object"]
            assert sentence["raw"] == expression["text"]
            assert sentence["sent"] == " ".join(sentence["tokens"]) == sentence["sent"].lower()
            samples.add((scene, expression["id"], (u, v)))
    assert samples == _expected_samples(store, store.scene_ids(), CORNERS)
    sent_ids = [s["sent_id"] for ref in refer.refs for s in ref["sentences"]]
    assert len(set(sent_ids)) == len(sent_ids)


def test_refcoco_one_split_and_name(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    out = tmp_path / "refer"
    result = _export(
        tiny_dataset, out, "--format", "refcoco", "--split", "val", "--name", "refcocog", "--split-by", "umd"
    )
    assert result.exit_code == 0, result.output
    with open(out / "refcocog" / "refs(umd).p", "rb") as stream:
        refs = pickle.load(stream)
    assert {ref["split"] for ref in refs} == {"val"}
    val = store.load_splits()["splits"]["val"]
    assert {ref["scene"] for ref in refs} == set(val)
    images = sorted(os.listdir(out / "images/mscoco/images/train2014"))
    assert len(images) == len(val)  # centre views only
    assert all(name.endswith("_u2_v2.png") for name in images)


def test_refcoco_needs_splits(tiny_dataset_copy, tmp_path):
    DatasetStore(tiny_dataset_copy).splits_path.unlink()
    result = _export(tiny_dataset_copy, tmp_path / "refer", "--format", "refcoco")
    assert result.exit_code == 2
    assert "no split file" in result.output and "clevr-remv split" in result.output


def test_coco_round_trip_with_pycocotools(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    out = tmp_path / "coco"
    result = _export(tiny_dataset, out, "--format", "coco", "--views", "all", "--split", "train")
    assert result.exit_code == 0, result.output
    coco = COCO(str(out / "annotations" / "instances_train.json"))
    train = store.load_splits()["splits"]["train"]
    assert len(coco.getImgIds()) == len(train) * 9
    visible = 0
    for image in coco.loadImgs(coco.getImgIds()):
        assert (out / "images" / "train" / image["file_name"]).is_file()
        index_mask = store.read_index(image["scene"], *image["view"])
        objects = store.load_scene(image["scene"])["objects"]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert sorted(ann["object"] for ann in anns) == sorted(set(np.unique(index_mask)) - {0})
        for ann in anns:
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), index_mask == ann["object"])
            assert coco.loadCats(ann["category_id"])[0]["name"] == objects[ann["object"] - 1]["shape"]
        visible += len(anns)
    assert visible == len(coco.getAnnIds()) > 0


def test_clevr_ref_round_trip(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    out = tmp_path / "clevr_ref"
    result = _export(tiny_dataset, out, "--format", "clevr-ref+", "--views", "corners")
    assert result.exit_code == 0, result.output
    samples = set()
    for split, members in store.load_splits()["splits"].items():
        scenes = json.loads((out / "scenes" / f"clevr_ref+_{split}_scenes.json").read_text())["scenes"]
        refexps = json.loads((out / "refexps" / f"clevr_ref+_{split}_refexps.json").read_text())["refexps"]
        assert [s["image_index"] for s in scenes] == list(range(len(members) * len(CORNERS)))
        for entry in scenes:
            assert (out / "images" / split / entry["image_filename"]).is_file()
        for refexp in refexps:
            scene_entry = scenes[refexp["image_index"]]
            (referent,) = refexp["program"][-1]["_output"]
            index, (u, v) = scene_entry["clevr_remv"]["scene"], scene_entry["clevr_remv"]["view"]
            mask = decode_run_lengths(scene_entry["obj_mask"][str(referent + 1)], 32, 48)
            np.testing.assert_array_equal(mask, store.read_index(index, u, v) == referent + 1)
            samples.add((index, refexp["clevr_remv"]["expression_id"], (u, v)))
    assert samples == _expected_samples(store, store.scene_ids(), CORNERS)


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((3, 4), bool),
        np.ones((3, 4), bool),
        np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 0, 1]], bool),
    ],
)
def test_run_lengths(mask):
    text = encode_run_lengths(mask)
    runs = [int(run) for run in text.split(",")]
    assert sum(runs) == mask.size and (runs[0] == 0) == bool(mask.flat[0])
    np.testing.assert_array_equal(decode_run_lengths(text, *mask.shape), mask)


def test_run_lengths_known_string():
    mask = np.array([[0, 1, 1], [1, 0, 0]], bool)
    assert encode_run_lengths(mask) == "1,3,2"


def test_refuses_a_folder_of_other_files_even_with_force(tiny_dataset, tmp_path):
    out = tmp_path / "coco"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for flags in ((), ("--force",)):
        result = _export(tiny_dataset, out, "--format", "coco", *flags)
        assert result.exit_code == 2 and "did not write (keep.txt)" in result.output
        assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["coco"]  # no temporary folders left behind


def test_force_replaces_an_earlier_export_and_nothing_else(tiny_dataset, tmp_path):
    out = tmp_path / "coco"
    assert _export(tiny_dataset, out, "--format", "coco").exit_code == 0
    assert sorted(os.listdir(out)) == [MANIFEST, "annotations", "images"]
    result = _export(tiny_dataset, out, "--format", "clevr-ref+")
    assert result.exit_code == 2 and "--force" in result.output
    result = _export(tiny_dataset, out, "--format", "clevr-ref+", "--force")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == [MANIFEST, "images", "refexps", "scenes"]
    assert sorted(os.listdir(tmp_path)) == ["coco"]
    # A file the user added to an export is never removed: the replacement is refused.
    (out / "images" / "notes.txt").write_text("mine")
    result = _export(tiny_dataset, out, "--format", "coco", "--force")
    assert result.exit_code == 2 and "images/notes.txt" in result.output
    assert (out / "images" / "notes.txt").read_text() == "mine" and (out / "refexps").is_dir()


def test_force_through_a_symlink_replaces_the_folder_it_points_to(tiny_dataset, tmp_path):
    """--out a symlink to an earlier export: IsADirectoryError, and an empty .tmp-replaced-* left."""
    real = tmp_path / "exports" / "v1"
    assert _export(tiny_dataset, real, "--format", "coco").exit_code == 0
    link = tmp_path / "latest"
    link.symlink_to(real)
    result = _export(tiny_dataset, link, "--format", "clevr-ref+", "--force")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == real
    assert sorted(os.listdir(real)) == [MANIFEST, "images", "refexps", "scenes"]
    assert os.listdir(tmp_path / "exports") == ["v1"] and sorted(os.listdir(tmp_path)) == ["exports", "latest"]


def test_a_killed_exports_temporary_folder_goes_with_the_next_run(tiny_dataset, tmp_path):
    """A SIGKILLed export left .tmp-export-* (full image copies) that no rerun removed or named;
    the staging folder of an export still at work stays."""
    out = tmp_path / "coco"

    def staging():
        run = subprocess.Popen(
            [sys.executable, "-c", STAGE_AND_WAIT, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert run.stdout.readline().strip() == "staged"
        return run

    killed, alive = staging(), staging()
    killed.kill()
    killed.wait()
    try:
        assert len(list(tmp_path.glob(".tmp-export-coco-*"))) == 4  # two folders, two leases
        (tmp_path / ".tmp-export-coco-ab_cd123").mkdir()  # an older version's, without a lease
        result = _export(tiny_dataset, out, "--format", "coco")
        assert result.exit_code == 0, result.output
        assert "ab_cd123: a temporary folder of a stopped run" in result.output
        assert sorted(os.listdir(tmp_path)) == sorted(
            [".tmp-export-coco-ab_cd123", "coco", *_staging_of(alive, tmp_path)]
        )
    finally:
        alive.kill()
        alive.wait()
    assert _export(tiny_dataset, out, "--format", "coco", "--force").exit_code == 0
    assert sorted(os.listdir(tmp_path)) == [".tmp-export-coco-ab_cd123", "coco"]


STAGE_AND_WAIT = """import sys
from clevr_remv.dataset.outdir import staged_output_dir
with staged_output_dir(sys.argv[1], "export") as folder:
    (folder / "images").mkdir()
    print("staged", flush=True)
    sys.stdin.readline()
"""


def _staging_of(run, folder):
    """The names of the staging folder and lease of the run (the process) ``run`` in ``folder``."""
    lease = next(path for path in folder.glob(".tmp-export-*.lease") if f'"pid": {run.pid}' in path.read_text())
    return [lease.name, lease.stem]


def test_a_folder_another_command_wrote_is_refused(tiny_dataset, tmp_path):
    out = tmp_path / "eval"
    write_manifest(out, "evaluate")
    (out / "results.json").write_text("{}")
    result = _export(tiny_dataset, out, "--format", "coco", "--force")
    assert result.exit_code == 2 and "`clevr-remv export` did not write" in result.output
    assert (out / "results.json").read_text() == "{}"


def _inside(dataset):
    """--out values that are the dataset, lie inside it or hold it (also through .. and symlinks)."""
    (dataset.parent / "link-to-scenes").symlink_to(dataset / "scenes")
    (dataset.parent / "link-to-root").symlink_to(dataset)
    return [
        dataset,
        dataset / "scenes",
        dataset / "scenes" / "000001",
        dataset / "scenes" / ".." / "scenes",
        dataset.parent / "elsewhere" / ".." / dataset.name / "scenes",
        dataset.parent / "link-to-scenes",
        dataset.parent / "link-to-root" / "scenes" / "000001",
        dataset.parent / "link-to-root" / "new",
        dataset.parent,
        dataset / "new-export",
    ]


def test_out_inside_onto_or_around_the_dataset_is_refused_and_nothing_is_lost(tiny_dataset_copy):
    before = sorted(p.relative_to(tiny_dataset_copy) for p in tiny_dataset_copy.rglob("*"))
    for out in _inside(tiny_dataset_copy):
        result = _export(tiny_dataset_copy, out, "--format", "coco", "--force")
        assert result.exit_code == 2, (out, result.output)
        assert "--data" in result.output and "choose a --out outside" in result.output
    assert sorted(p.relative_to(tiny_dataset_copy) for p in tiny_dataset_copy.rglob("*")) == before
    assert validate_dataset(tiny_dataset_copy) == []


def test_failed_export_leaves_nothing(tiny_dataset_copy, tmp_path):
    store = DatasetStore(tiny_dataset_copy)
    store.rgb_path(store.scene_ids()[-1], 2, 2).unlink()
    out = tmp_path / "coco"
    result = _export(tiny_dataset_copy, out, "--format", "coco")
    assert result.exit_code == 2 and "missing" in result.output and "clevr-remv validate" in result.output
    assert os.listdir(tmp_path) == ["dataset"]  # neither --out nor a temporary folder


def test_link_shares_image_files(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    out = tmp_path / "coco"
    assert _export(tiny_dataset, out, "--format", "coco", "--split", "test", "--link").exit_code == 0
    (index,) = store.load_splits()["splits"]["test"]
    exported = out / "images" / "test" / f"clevr_remv_{index:06d}_u2_v2.png"
    assert os.path.samefile(exported, store.rgb_path(index, 2, 2))


def test_unknown_split_is_refused(tiny_dataset, tmp_path):
    result = _export(tiny_dataset, tmp_path / "coco", "--format", "coco", "--split", "nope")
    assert result.exit_code == 2 and "no split named 'nope'" in result.output
    assert not (tmp_path / "coco").exists()


def test_bbox_and_area_match_a_hand_drawn_mask_in_coco_and_refer(tiny_dataset_copy, tmp_path):
    """Object 1 covers rows 3-7 x columns 10-13 of the centre view plus the lone pixel (row 12,
    column 30); nothing else is visible. By hand: x 10..30, y 3..12, so bbox [10, 3, 21, 10]
    (x, y, width, height in pixels, COCO's convention), area 5 * 4 + 1 = 21."""
    store = DatasetStore(tiny_dataset_copy)
    (scene,) = store.load_splits()["splits"]["test"]
    mask = np.zeros((32, 48), np.uint8)
    mask[3:8, 10:14] = 1
    mask[12, 30] = 1
    Image.fromarray(mask, mode="L").save(store.index_path(scene, *store.center))
    assert _export(tiny_dataset_copy, tmp_path / "coco", "--format", "coco", "--split", "test").exit_code == 0
    coco = json.loads((tmp_path / "coco" / "annotations" / "instances_test.json").read_text())
    refer_result = _export(tiny_dataset_copy, tmp_path / "refer", "--format", "refcoco", "--split", "test")
    assert refer_result.exit_code == 0, refer_result.output
    refer = json.loads((tmp_path / "refer" / "refcoco" / "instances.json").read_text())
    for document in (coco, refer):
        (annotation,) = document["annotations"]
        assert annotation["object"] == 1 and annotation["bbox"] == [10, 3, 21, 10] and annotation["area"] == 21
        segmentation = annotation["segmentation"]
        rle = segmentation[0] if isinstance(segmentation, list) else segmentation
        # pycocotools' own box of the exported RLE agrees (float x, y, w, h)
        assert coco_mask.toBbox({"size": rle["size"], "counts": rle["counts"].encode()}).tolist() == [10, 3, 21, 10]
