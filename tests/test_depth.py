"""The depth pass in the dataset format: encoding, the stored config (resume, refexps, old
datasets), ClevrRemvDataset(passes=("depth",)) and validate."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from clevr_remv import ClevrRemvDataset
from clevr_remv.cli import main
from clevr_remv.dataset.depth import DEPTH_SCALE, decode_depth, encode_depth
from clevr_remv.dataset.splits import write_splits
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.dataset.validate import validate_dataset
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.writer import open_dataset
from clevr_remv.geometry import project
from clevr_remv.refexp import refexp_settings


@pytest.fixture
def depth_copy(tiny_depth_dataset, tmp_path):
    """A writable copy of ``tiny_depth_dataset`` with splits.json (one scene in train, one in val)."""
    root = shutil.copytree(tiny_depth_dataset, tmp_path / "dataset")
    write_splits(root, "0.5,0.5,0", seed=0)
    return root


def test_depth_counts_round_trip_and_out_of_range_means_no_value():
    depth = np.array([[0.0008, 11.2345, 52.4], [np.inf, 1e10, -1.0]])
    counts = encode_depth(depth)
    assert counts.dtype == np.uint16
    assert counts.tolist() == [[1, 14043, 65500], [0, 0, 0]]
    assert np.abs(decode_depth(counts, DEPTH_SCALE)[0] - depth[0]).max() <= DEPTH_SCALE / 2
    assert 65535 * DEPTH_SCALE > 34.6  # the farthest ground point of the default rig fits
    assert encode_depth(np.array([53.0])).tolist() == [0]


def test_passes_are_part_of_the_stored_config():
    config = GenerateConfig(passes=["depth", "depth"])
    assert config.passes == ("depth",) and config.to_dict()["passes"] == ["depth"]
    assert GenerateConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ClevrRemvError, match="--passes: 'foo' is not a pass; choose from depth"):
        GenerateConfig(passes=("foo",))


def test_a_dataset_made_before_passes_reads_as_rgb_and_index(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    info = json.loads(store.dataset_json_path.read_text())
    del info["config"]["passes"]
    store.dataset_json_path.write_text(json.dumps(info))
    before = store.dataset_json_path.read_bytes()
    store = DatasetStore(tiny_dataset_copy)
    assert store.passes == ()
    config = GenerateConfig.from_dict(info["config"])
    assert open_dataset(tiny_dataset_copy, config, refexp_settings(0, 8)).passes == ()
    with pytest.raises(ClevrRemvError, match=r"passes: existing \[\], requested \['depth'\]"):
        open_dataset(
            tiny_dataset_copy, GenerateConfig.from_dict(dict(info["config"], passes=["depth"])), refexp_settings(0, 8)
        )
    assert store.dataset_json_path.read_bytes() == before


def test_resume_and_refexps_keep_the_depth_pass(depth_copy):
    store = DatasetStore(depth_copy)
    config = GenerateConfig.from_dict(store.info()["config"])
    assert config.passes == ("depth",)
    with pytest.raises(ClevrRemvError, match=r"passes: existing \['depth'\], requested \[\]"):
        open_dataset(
            depth_copy, GenerateConfig.from_dict(dict(store.info()["config"], passes=[])), refexp_settings(0, 8)
        )
    result = CliRunner().invoke(main, ["refexps", "--data", str(depth_copy), "--per-scene", "3"])
    assert result.exit_code == 0, result.output
    info = DatasetStore(depth_copy).info()
    assert info["config"]["passes"] == ["depth"] and info["depth_scale"] == DEPTH_SCALE
    assert open_dataset(depth_copy, config, refexp_settings(0, 3)).passes == ("depth",)


def test_items_carry_depth_in_world_units(depth_copy):
    store = DatasetStore(depth_copy)
    dataset = ClevrRemvDataset(depth_copy, split="train", views="all", passes=("depth",))
    item = dataset[len(dataset) - 1]
    scene = store.load_scene(item["scene"])
    view = next(v for v in scene["views"] if (v["u"], v["v"]) == item["view"])
    assert item["depth"].dtype == torch.float32 and item["depth"].shape == item["mask"].shape
    # the stand-in draws each object at its centre's depth; the background has no value (0)
    expected = project([scene["objects"][item["object"] - 1]["3d_coords"]], view)[0, 2]
    assert item["depth"][item["mask"]].numpy() == pytest.approx(expected, abs=DEPTH_SCALE)
    assert (item["depth"][torch.from_numpy(store.read_index(item["scene"], *item["view"]) == 0)] == 0).all()
    assert "depth" not in ClevrRemvDataset(depth_copy, split="train")[0]


def test_depth_items_are_refused_without_depth(tiny_dataset):
    with pytest.raises(ClevrRemvError, match=r"passes=\('depth',\): .* no depth maps .*--passes depth"):
        ClevrRemvDataset(tiny_dataset, split="train", passes=("depth",))
    with pytest.raises(ClevrRemvError, match="'normals' is not a pass"):
        ClevrRemvDataset(tiny_dataset, split="train", passes=("normals",))


def test_validate_checks_depth_maps(depth_copy):
    store = DatasetStore(depth_copy)
    assert validate_dataset(depth_copy) == []
    missing, eight_bit = store.depth_path(0, 1, 1), store.depth_path(1, 2, 2)
    missing.unlink()
    Image.new("L", (48, 32)).save(eight_bit)
    problems = {p.path: p.message for p in validate_dataset(depth_copy, quick=True)}
    assert set(problems) == {str(missing), str(eight_bit)}
    assert problems[str(missing)].startswith("missing") and "mode L, expected I;16" in problems[str(eight_bit)]
