"""ClevrRemvDataset: items against the files, valid views only, ordering, pickling, workers, errors."""

import json
import pickle

import numpy as np
import pytest
import torch
from builders import break_png
from PIL import Image
from torch.utils.data import DataLoader

from clevr_remv import ClevrRemvDataset
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.errors import ClevrRemvError


def expressions_of(root, split):
    store = DatasetStore(root)
    return [
        (scene, expression)
        for scene in store.load_splits()["splits"][split]
        for expression in json.loads(store.refexps_path(scene).read_text())["expressions"]
    ]


def test_center_items_match_the_png_files(tiny_dataset):
    dataset = ClevrRemvDataset(tiny_dataset, split="train")
    expected = expressions_of(tiny_dataset, "train")
    assert len(dataset) == len(expected) > 0
    store = DatasetStore(tiny_dataset)
    for item, (scene, expression) in zip(dataset, expected, strict=True):
        assert item["view"] == (2, 2) and item["scene"] == scene
        assert item["expression_id"] == expression["id"] and item["text"] == expression["text"]
        assert item["object"] == expression["referent"]
        rgb = np.asarray(Image.open(store.rgb_path(scene, 2, 2)))
        index = np.asarray(Image.open(store.index_path(scene, 2, 2)))
        assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 32, 48)
        assert torch.equal(item["image"], torch.from_numpy(rgb.transpose(2, 0, 1) / np.float32(255)))
        assert item["mask"].dtype == torch.bool and item["mask"].shape == (32, 48)
        assert torch.equal(item["mask"], torch.from_numpy(index == expression["referent"]))
        assert item["mask"].any()


def test_only_views_listed_as_valid_become_samples(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    scene = store.load_splits()["splits"]["test"][0]
    refexps = store.load_refexps(scene)
    refexps["expressions"][0]["views"] = [[2, 2], [1, 1]]
    refexps["expressions"][1]["views"] = [[2, 1]]
    write_json_atomic(store.refexps_path(scene), refexps, "refexps")
    listed = [{tuple(view) for view in expression["views"]} for expression in refexps["expressions"]]

    def expected(views):
        return [
            (e, view) for e, valid in enumerate(listed) for view in sorted(valid & set(views), key=lambda uv: uv[::-1])
        ]

    corner_views = [(1, 1), (3, 1), (1, 3), (3, 3)]
    all_views = [(u, v) for v in (1, 2, 3) for u in (1, 2, 3)]
    for preset, views in (("all", all_views), ("corners", corner_views), ("center", [(2, 2)])):
        dataset = ClevrRemvDataset(tiny_dataset_copy, split="test", views=preset)
        assert [
            (dataset.describe(i)["expression_id"], dataset.describe(i)["view"]) for i in range(len(dataset))
        ] == expected(views)
    every = ClevrRemvDataset(tiny_dataset_copy, split="test", views="all")
    assert [every[i]["view"] for i in range(3)] == [(1, 1), (2, 2), (2, 1)]


def test_order_is_scene_then_expression_then_v_major_view(tiny_dataset):
    dataset = ClevrRemvDataset(tiny_dataset, split="train", views=[(3, 1), (1, 3), (1, 1), (3, 1)])
    assert dataset.views == [(1, 1), (3, 1), (1, 3)]
    keys = [(dataset[i]["scene"], dataset[i]["expression_id"], dataset[i]["view"][::-1]) for i in range(len(dataset))]
    assert keys == sorted(keys) and len(keys) == 3 * len(expressions_of(tiny_dataset, "train"))
    assert dataset[-1]["view"] == (1, 3)
    item = dataset[4]
    assert dataset.describe(4) == {key: item[key] for key in ("text", "scene", "expression_id", "object", "view")}


def test_transform_receives_and_returns_the_sample(tiny_dataset):
    def crop(sample):
        sample["image"], sample["mask"] = sample["image"][:, :16, :16], sample["mask"][:16, :16]
        return sample

    item = ClevrRemvDataset(tiny_dataset, split="val", transform=crop)[0]
    assert item["image"].shape == (3, 16, 16) and item["mask"].shape == (16, 16)
    assert item["text"]


def test_pickles_small_and_loads_with_two_workers(tiny_dataset):
    dataset = ClevrRemvDataset(tiny_dataset, split="train", views="all")
    payload = pickle.dumps(dataset)
    assert len(payload) < 20_000
    clone = pickle.loads(payload)
    assert len(clone) == len(dataset) and clone[5]["text"] == dataset[5]["text"]
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    batches = list(loader)
    assert sum(len(batch["text"]) for batch in batches) == len(dataset)
    assert batches[0]["image"].shape == (4, 3, 32, 48) and batches[0]["mask"].dtype == torch.bool
    masks = torch.cat([batch["mask"] for batch in batches])
    assert torch.equal(masks, torch.stack([dataset[i]["mask"] for i in range(len(dataset))]))


def test_clear_errors(tiny_dataset, tiny_dataset_copy, tmp_path):
    with pytest.raises(ClevrRemvError, match="not a CLEVR-REMV dataset"):
        ClevrRemvDataset(tmp_path, split="train")
    with pytest.raises(ClevrRemvError, match="views \\(--views\\): \\(4, 1\\) does not exist"):
        ClevrRemvDataset(tiny_dataset, views=[(4, 1)])
    with pytest.raises(ClevrRemvError, match="not a view set"):
        ClevrRemvDataset(tiny_dataset, views="middle")
    with pytest.raises(ClevrRemvError, match="no split named"):
        ClevrRemvDataset(tiny_dataset, split="training")
    DatasetStore(tiny_dataset_copy).splits_path.unlink()
    with pytest.raises(ClevrRemvError, match="no split file"):
        ClevrRemvDataset(tiny_dataset_copy)
    with pytest.raises(IndexError):
        ClevrRemvDataset(tiny_dataset, split="val")[10_000]


def test_expression_without_views_is_reported(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    scene = store.load_splits()["splits"]["val"][0]
    refexps = store.load_refexps(scene)
    del refexps["expressions"][0]["views"]
    store.refexps_path(scene).write_text(json.dumps(refexps))  # bypasses the schema on purpose
    with pytest.raises(ClevrRemvError, match="malformed expression .*clevr-remv validate"):
        ClevrRemvDataset(tiny_dataset_copy, split="val")


def test_an_unreadable_image_is_a_clear_error_also_from_a_worker(tiny_dataset_copy):
    dataset = ClevrRemvDataset(tiny_dataset_copy, split="val")
    sample = dataset.describe(0)
    broken = DatasetStore(tiny_dataset_copy).rgb_path(sample["scene"], *sample["view"])
    break_png(broken, "truncate")
    expected = f"{broken}: cannot be read as an image (image file is truncated); delete scene folder"
    with pytest.raises(ClevrRemvError) as direct:
        dataset[0]
    with pytest.raises(ClevrRemvError) as from_worker:
        next(iter(DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=lambda batch: batch)))
    for error in (direct, from_worker):
        assert str(error.value).startswith(expected) and "Traceback" not in str(error.value)
