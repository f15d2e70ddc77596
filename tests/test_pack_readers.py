"""Readers of a packed folder: ClevrRemvDataset (same items as the folder form), ClevrRemvStream
(every item once per epoch over ranks and workers), and the real consumers webdataset and
Hugging Face datasets (offline)."""

import io
import json
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from clevr_remv.dataset.packed.manifest import read_manifest
from clevr_remv.dataset.packed.pack import pack_dataset
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.stream import ClevrRemvStream
from clevr_remv.errors import ClevrRemvError


@pytest.fixture(scope="module")
def packed(tiny_dataset, tmp_path_factory):
    """Every view in shards of about one scene each, and the centre view in one shard per split."""
    out = tmp_path_factory.mktemp("packed") / "packed"
    pack_dataset(tiny_dataset, out, views="all", shard_size="60kB")
    pack_dataset(tiny_dataset, out, views="center")
    return out


def same_items(first, second):
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if torch.is_tensor(a[key]):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("views", ["center", "corners", "all", [(3, 1), (1, 2)]])
@pytest.mark.parametrize("split", ["train", "test"])
def test_packed_folder_gives_the_same_items_as_the_dataset_folder(tiny_dataset, packed, split, views):
    folder = ClevrRemvDataset(tiny_dataset, split=split, views=views)
    shards = ClevrRemvDataset(packed, split=split, views=views)
    assert shards.store.subset == ("center" if views == "center" else "all")
    same_items([folder[i] for i in range(len(folder))], [shards[i] for i in range(len(shards))])


def test_generalized_expressions_give_the_same_items_from_shards(tiny_generalized_dataset, tmp_path):
    out = tmp_path / "packed"
    pack_dataset(tiny_generalized_dataset, out, views="corners")
    folder = ClevrRemvDataset(tiny_generalized_dataset, split="train", views="corners")
    shards = ClevrRemvDataset(out, split="train", views="corners")
    items = [shards[i] for i in range(len(shards))]
    assert {len(item["objects"]) for item in items} >= {0, 1}
    same_items([folder[i] for i in range(len(folder))], items)


def test_depth_is_read_from_shards_too(tiny_depth_dataset, tmp_path):
    data = shutil.copytree(tiny_depth_dataset, tmp_path / "depth")
    write_splits(data, "0.5,0.5,0", seed=0)
    out = tmp_path / "packed"
    pack_dataset(data, out, split="train", views="corners")
    assert read_manifest(out)["subsets"]["corners"]["fields"][2:5] == [
        "u1_v1.rgb.png",
        "u1_v1.index.png",
        "u1_v1.depth.png",
    ]
    folder = ClevrRemvDataset(data, split="train", views="corners", passes=("depth",))
    shards = ClevrRemvDataset(out, split="train", views="corners", passes=("depth",))
    same_items([folder[i] for i in range(len(folder))], [shards[i] for i in range(len(shards))])


def test_views_that_no_subset_holds_are_refused_with_the_pack_command(tiny_dataset, tmp_path):
    out = tmp_path / "packed"
    pack_dataset(tiny_dataset, out, split="train", views="center")
    with pytest.raises(
        ClevrRemvError,
        match=r"no packed subset holds split 'train' with views u1_v1,u3_v3 .*"
        r"clevr-remv pack --data .* --split train --views u1_v1,u3_v3",
    ):
        ClevrRemvDataset(out, split="train", views=[(1, 1), (3, 3)])
    with pytest.raises(ClevrRemvError, match="no packed subset holds split 'val'"):
        ClevrRemvDataset(out, split="val", views="center")


def test_a_truncated_shard_names_the_member_when_read(packed, tmp_path):
    copy = shutil.copytree(packed, tmp_path / "packed")
    dataset = ClevrRemvDataset(copy, split="test", views="center")
    shard = copy / read_manifest(copy)["subsets"]["center"]["shards"][-1]["name"]
    shard.write_bytes(shard.read_bytes()[:3000])
    with pytest.raises(ClevrRemvError, match=rf"{shard}:000001\.u2_v2\.rgb\.png: the shard ends inside this member"):
        dataset[0]


def test_the_packed_dataset_pickles_small_and_reads_in_workers(packed):
    dataset = ClevrRemvDataset(packed, split="train", views="all")
    assert len(pickle.dumps(dataset)) < 20_000
    loaded = [item for batch in DataLoader(dataset, batch_size=7, num_workers=2, collate_fn=list) for item in batch]
    same_items([dataset[i] for i in range(len(dataset))], loaded)


def keys(items) -> list:
    return [(item["scene"], item["expression_id"], item["view"]) for item in items]


def run_epoch(packed, epoch, world_size, workers, **options) -> dict:
    """rank -> the items (keys) it read in ``epoch``."""
    read = {}
    for rank in range(world_size):
        stream = ClevrRemvStream(packed, split="train", views="all", rank=rank, world_size=world_size, **options)
        stream.set_epoch(epoch)
        batches = DataLoader(stream, batch_size=4, num_workers=workers, collate_fn=list)
        read[rank] = keys(item for batch in batches for item in batch)
        assert len(read[rank]) == len(stream)
    return read


@pytest.mark.parametrize("world_size, workers", [(1, 0), (2, 2), (3, 1), (4, 2)])
def test_stream_reads_every_item_exactly_once_per_epoch(packed, world_size, workers):
    everything = keys(ClevrRemvDataset(packed, split="train", views="all")[i] for i in range(216))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = run_epoch(packed, 0, world_size, workers)
    together = [key for rank in read.values() for key in rank]
    assert sorted(together) == sorted(everything) and len(together) == len(set(together)) == 216
    sizes = [len(items) for items in read.values()]
    assert max(sizes) - min(sizes) <= 1


def test_stream_reshuffles_every_epoch_from_its_seed(packed):
    first, again, second = (run_epoch(packed, epoch, 2, 0, seed=seed) for epoch, seed in ((0, 7), (0, 7), (1, 7)))
    assert first == again
    assert first != second and sorted(first[0] + first[1]) == sorted(second[0] + second[1])
    assert run_epoch(packed, 0, 2, 0, seed=8) != first
    plain = run_epoch(packed, 3, 1, 0, shuffle=False)[0]
    dataset = ClevrRemvDataset(packed, split="train", views="all")
    assert plain == keys(dataset[i] for i in range(len(dataset)))


def test_even_ranks_take_the_same_number_of_items(packed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 shards for 5 ranks
        read = run_epoch(packed, 0, 5, 0, even_ranks=True)  # 216 items: 43 each, 1 left out
    assert [len(items) for items in read.values()] == [43] * 5
    together = [key for items in read.values() for key in items]
    assert len(set(together)) == len(together) == 215


def test_stream_warns_when_shards_are_fewer_than_ranks_times_workers(packed, monkeypatch):
    stream = ClevrRemvStream(packed, split="train", views="all")
    assert stream.shards == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(stream)  # 3 shards, 1 reader
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    stream = ClevrRemvStream(packed, split="train", views="all")
    assert (stream.rank, stream.world_size) == (0, 4)
    with pytest.warns(UserWarning, match="3 shards for 4 ranks x 1 DataLoader worker:.*at least 4"):
        next(iter(stream))
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ClevrRemvError, match="rank 4 of world size 4"):
        ClevrRemvStream(packed, split="train", views="all")


def test_webdataset_reads_the_shards(tiny_dataset, packed):
    webdataset = pytest.importorskip("webdataset")
    store = DatasetStore(tiny_dataset)
    manifest = read_manifest(packed)
    urls = [str(packed / shard["name"]) for shard in manifest["subsets"]["all"]["shards"] if shard["split"] == "train"]
    samples = list(webdataset.WebDataset(urls, shardshuffle=False))
    assert [sample["__key__"] for sample in samples] == ["000002", "000003", "000004"]
    for sample in samples:
        scene = int(sample["__key__"])
        assert sample["refexps.json"] == store.refexps_path(scene).read_bytes()
        assert sample["u1_v3.index.png"] == store.index_path(scene, 1, 3).read_bytes()
    decoded = next(iter(webdataset.WebDataset(urls[:1], shardshuffle=False).decode("rgb8")))
    assert np.array_equal(decoded["u2_v2.rgb.png"], store.read_rgb(2, 2, 2))
    assert decoded["refexps.json"] == json.loads(store.refexps_path(2).read_text())


def test_hugging_face_datasets_reads_the_folder_and_the_shards(tiny_dataset, packed, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    store = DatasetStore(tiny_dataset)
    cache = str(tmp_path / "hf")
    centre = datasets.load_dataset(str(packed), "center", split="val", cache_dir=cache)
    assert centre.num_rows == 2 and [row["__key__"] for row in centre] == ["000000", "000005"]
    row = centre[1]
    assert row["refexps.json"] == json.loads(store.refexps_path(5).read_text())
    assert np.array_equal(np.asarray(row["u2_v2.rgb.png"].convert("RGB")), store.read_rgb(5, 2, 2))
    assert np.array_equal(np.asarray(row["u2_v2.index.png"]), store.read_index(5, 2, 2))
    default = datasets.load_dataset(str(packed), split="test", cache_dir=cache)
    assert default.column_names[:4] == ["scene.json", "refexps.json", "u2_v2.rgb.png", "u2_v2.index.png"]
    shards = [
        str(packed / shard["name"])
        for shard in read_manifest(packed)["subsets"]["all"]["shards"]
        if shard["split"] == "train"
    ]
    train = datasets.load_dataset("webdataset", data_files={"train": shards}, split="train", cache_dir=cache)
    assert train.num_rows == 3 and len([name for name in train.column_names if name.endswith(".png")]) == 18
    image = train[0]["u3_v1.rgb.png"]
    assert np.array_equal(
        np.asarray(image.convert("RGB")),
        np.asarray(Image.open(io.BytesIO(store.rgb_path(2, 3, 1).read_bytes())).convert("RGB")),
    )
